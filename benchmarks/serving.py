"""Online scoring over HTTP: our service beside MLflow's own scoring server, same champion.

Both servers are started here on 127.0.0.1 from a copy of the data home's MLflow store (so the
benchmark's traffic never lands in the real prediction log), checked to give the same
probabilities, then loaded with wrk (Debian's) in three scenarios: one booking on one
connection (latency), one booking on 50 connections (throughput) and 1,000-booking batches
(rows/s). Every figure is the median of --repeats wrk runs of --seconds each; wrk counts any
non-2xx answer or socket error, and those are printed too. wrk's percentiles are corrected for
coordinated omission (a stall of S ms also counts the requests a steady client would have sent
meanwhile), so one 200 ms pause in a 10 s run moves p99 far more than p50. The 1-minute load
average before each scenario's runs is reported beside its figures: wrk and whatever else runs
here share the same 2 cores with the server. So is the CPU each request cost the server (all
its processes, from /proc) and wrk, which others' load barely changes, and from it the
"2-core ceiling": what two cores doing nothing but this server and wrk could reach at most.

    .venv/bin/python benchmarks/serving.py [--home data] [--repeats 3] [--seconds 10]

Needs a champion in the home (`make run`).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import orjson
import pandas as pd
from _common import REPO_ROOT, cpu_snapshot, median, others_cpu_line
from rich.console import Console
from rich.table import Table

from booking_platform.config import MODEL_NAME, Settings, load_settings
from booking_platform.core import registry, warehouse
from booking_platform.core.source import FEATURE_SOURCE_COLUMNS

BIN = REPO_ROOT / ".venv" / "bin"
CORES = 2  # the machine's, shared by wrk and the server
BATCH = 1000
TARGETS = {  # the targets for our service on this 2-core machine
    "p50_ms": 2.0,
    "p99_ms": 10.0,
    "single_rps": 1000.0,
    "batch_rows_per_s": 100_000.0,
}
LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local file = io.open("{body}", "rb")
wrk.body = file:read("*a")
file:close()
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{{"requests": %d, "seconds": %f, "p50_us": %d, "p99_us": %d, "errors": %d}}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(99),
    e.status + e.connect + e.read + e.write + e.timeout))
end
"""
console = Console(width=200)


@dataclass(frozen=True)
class Scenario:
    name: str
    connections: int
    threads: int
    bookings: int


SCENARIOS = (
    Scenario("1 booking, 1 connection", 1, 1, 1),
    Scenario("1 booking, 50 connections", 50, 2, 1),
    Scenario(f"{BATCH:,} bookings per request, 4 connections", 4, 2, BATCH),
)


def _request_rows(settings: Settings) -> list[dict]:
    """Open bookings from the warehouse, back in the source schema, as a client sends them."""
    with warehouse.connect(settings.warehouse_path, read_only=True) as connection:
        cleaned = connection.execute(
            "SELECT * FROM cleaned_bookings WHERE arrival_date >= ? ORDER BY booking_id LIMIT ?",
            [settings.as_of, BATCH],
        ).df()
    rows = []
    for record in cleaned.to_dict("records"):
        row = {"booking_id": int(record["booking_id"])}
        for column, kind in FEATURE_SOURCE_COLUMNS.items():
            value = record[column]
            if pd.isna(value):
                row[column] = None
            elif kind == "str":
                row[column] = str(value)
            else:
                row[column] = int(value) if kind == "int" else float(value)
        rows.append(row)
    return rows


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen
    predict_path: str

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start(
    name: str, command: list[str], env: dict[str, str], ready: str, path: str, log_dir: Path
) -> Server:
    port = _free_port()
    command = [part.replace("{port}", str(port)) for part in command]
    output = log_dir / f"{name.replace(' ', '_').replace(',', '')}.log"
    with output.open("w") as log:
        process = subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(name, f"http://127.0.0.1:{port}", process, path)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}")
        try:
            if httpx.get(server.url + ready, timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    server.stop()
    tail = "\n".join(output.read_text(errors="replace").splitlines()[-20:])
    raise RuntimeError(f"{name} was not ready within 300 s; end of its output:\n{tail}")


def start_ours(home: Path, workers: int, log_dir: Path) -> Server:
    return _start(
        f"ours, {workers} worker{'s' * (workers > 1)}",
        [str(BIN / "booking-platform"), "serve", "--port", "{port}", "--workers", str(workers)],
        {"BOOKING_PLATFORM_HOME": str(home), "BOOKING_SERVE_MAX_BATCH": str(BATCH)},
        "/health",
        "/predict",
        log_dir,
    )


def start_mlflow(tracking_uri: str, workers: int, log_dir: Path) -> Server:
    return _start(
        f"MLflow, {workers} worker{'s' * (workers > 1)}",
        [
            str(BIN / "mlflow"),
            "models",
            "serve",
            "-m",
            f"models:/{MODEL_NAME}@{registry.CHAMPION}",
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            "{port}",
            "-w",
            str(workers),
        ],
        # it execs `uvicorn` by name: the venv's must be on PATH
        {"MLFLOW_TRACKING_URI": tracking_uri, "PATH": f"{BIN}:{os.environ['PATH']}"},
        "/ping",
        "/invocations",
        log_dir,
    )


def _body(server: Server, rows: list[dict]) -> bytes:
    if server.predict_path == "/invocations":
        return orjson.dumps({"dataframe_records": rows})
    return orjson.dumps(rows if len(rows) > 1 else rows[0])


def _probabilities(server: Server, rows: list[dict]) -> np.ndarray:
    response = httpx.post(
        server.url + server.predict_path,
        content=_body(server, rows),
        headers={"content-type": "application/json"},
        timeout=120,
    )
    response.raise_for_status()
    answer = response.json()
    if server.predict_path == "/invocations":
        return np.array([p["cancel_probability"] for p in answer["predictions"]])
    return np.array([p["cancel_probability"] for p in answer])


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its live descendants (uvicorn's workers), from /proc."""
    total, pending, tick = 0.0, [pid], os.sysconf("SC_CLK_TCK")
    while pending:
        process = Path(f"/proc/{pending.pop()}")
        try:
            # fields after the ")" closing the name: state is the 3rd, utime and stime the 14th/15th
            fields = (process / "stat").read_text().rsplit(")", 1)[1].split()
            children = [(task / "children").read_text() for task in (process / "task").iterdir()]
        except FileNotFoundError:  # exited meanwhile
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
        pending += [int(child) for text in children for child in text.split()]
    return total


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk's, once it has been waited for
    return usage.ru_utime + usage.ru_stime


def _wrk(server: Server, scenario: Scenario, body: Path, seconds: int, scratch: Path) -> dict:
    script = scratch / f"{body.stem}.lua"
    script.write_text(LUA.format(body=body))
    command = [
        "wrk",
        f"-t{scenario.threads}",
        f"-c{scenario.connections}",
        f"-d{seconds}s",
        "--timeout",
        "30s",
        "-s",
        str(script),
        server.url + server.predict_path,
    ]
    server_before, wrk_before = _cpu_seconds(server.process.pid), _children_cpu_seconds()
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    server_cpu = _cpu_seconds(server.process.pid) - server_before
    wrk_cpu = _children_cpu_seconds() - wrk_before
    result = json.loads(output.strip().splitlines()[-1])
    result["rps"] = result["requests"] / result["seconds"]
    # CPU per request does not depend on how much of the machine others take: with it, what two
    # free cores could do at most (server and wrk on them, nothing else) is arithmetic
    result["server_cpu_ms"] = server_cpu * 1000 / max(result["requests"], 1)
    result["wrk_cpu_ms"] = wrk_cpu * 1000 / max(result["requests"], 1)
    return result


def measure(
    server: Server, rows: list[dict], repeats: int, seconds: int, scratch: Path
) -> dict[str, dict[str, float]]:
    results = {}
    for scenario in SCENARIOS:
        body = scratch / f"{server.predict_path.strip('/')}-{scenario.bookings}.json"
        body.write_bytes(_body(server, rows[: scenario.bookings]))
        _wrk(server, scenario, body, 2, scratch)  # warm-up
        load = os.getloadavg()[0]
        runs = [_wrk(server, scenario, body, seconds, scratch) for _ in range(repeats)]
        results[scenario.name] = {
            "load_1min": load,
            "p50_ms": median([r["p50_us"] / 1000 for r in runs]),
            "p99_ms": median([r["p99_us"] / 1000 for r in runs]),
            "rps": median([r["rps"] for r in runs]),
            "rows_per_s": median([r["rps"] * scenario.bookings for r in runs]),
            "errors": sum(r["errors"] for r in runs),
            "server_cpu_ms": median([r["server_cpu_ms"] for r in runs]),
            "wrk_cpu_ms": median([r["wrk_cpu_ms"] for r in runs]),
            "two_core_ceiling": median(
                [CORES * 1000 / (r["server_cpu_ms"] + r["wrk_cpu_ms"]) for r in runs]
            )
            * scenario.bookings,
            "requests": sum(r["requests"] for r in runs),
        }
        console.print(f"  {server.name:18} {scenario.name:40} {results[scenario.name]}")
    return results


def comparison(results: dict[str, dict[str, dict[str, float]]]) -> list[list[str]]:
    """Header and rows of the side-by-side table; ratio = our best / MLflow's best (for a
    latency, MLflow's / ours), so above 1 means ours is better."""
    names = list(results)
    ours = [n for n in names if n.startswith("ours")]
    theirs = [n for n in names if n.startswith("MLflow")]
    lines = [["scenario", "metric", *names, "ours / MLflow", "target (ours)"]]
    rows = [
        (SCENARIOS[0].name, "p50 ms", "p50_ms", min, f"<= {TARGETS['p50_ms']:g}"),
        (SCENARIOS[0].name, "p99 ms", "p99_ms", min, f"<= {TARGETS['p99_ms']:g}"),
        (SCENARIOS[0].name, "req/s", "rps", max, ""),
        (SCENARIOS[1].name, "req/s", "rps", max, f">= {TARGETS['single_rps']:,.0f}"),
        (SCENARIOS[1].name, "p50 ms", "p50_ms", min, ""),
        (SCENARIOS[1].name, "p99 ms", "p99_ms", min, ""),
        (SCENARIOS[1].name, "errors", "errors", None, "0"),
        (SCENARIOS[2].name, "rows/s", "rows_per_s", max, f">= {TARGETS['batch_rows_per_s']:,.0f}"),
        (SCENARIOS[2].name, "p50 ms", "p50_ms", min, ""),
        *(
            row
            for scenario in SCENARIOS
            for row in (
                (scenario.name, "server CPU ms/req", "server_cpu_ms", min, ""),
                (scenario.name, "wrk CPU ms/req", "wrk_cpu_ms", None, ""),
                (scenario.name, "2-core ceiling", "two_core_ceiling", max, ""),
                (scenario.name, "load before", "load_1min", None, ""),
            )
        ),
    ]
    for scenario, label, key, best, target in rows:
        values = [results[n][scenario][key] for n in names]
        ratio = ""
        if best is not None and theirs:
            mine = best(results[n][scenario][key] for n in ours)
            other = best(results[n][scenario][key] for n in theirs)
            ratio = f"{(other / mine if key.endswith('_ms') else mine / other):.1f}x"
        cells = [f"{v:,.0f}" if v >= 100 or key == "errors" else f"{v:.2f}" for v in values]
        unit = "rows/s" if scenario == SCENARIOS[2].name else "req/s"
        label = f"{label} ({unit})" if key == "two_core_ceiling" else label
        lines.append([scenario, label, *cells, ratio, target])
    return lines


def _table(lines: list[list[str]], repeats: int, seconds: int) -> Table:
    table = Table(
        title=f"Online scoring, same champion: medians of {repeats} wrk runs of {seconds} s",
        caption="errors = non-2xx answers and socket errors over all runs",
    )
    for column in lines[0]:
        table.add_column(column, justify="right")
    for line in lines[1:]:
        table.add_row(*line)
    return table


def _markdown(lines: list[list[str]]) -> str:
    rows = ["| " + " | ".join(line) + " |" for line in lines]
    return "\n".join([rows[0], "|" + "---|" * len(lines[0]), *rows[1:]])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, default=None, help="data home with a champion")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", default="1,2", help="worker counts to measure, e.g. 1,2")
    parser.add_argument("--skip-mlflow", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    env = {**os.environ} | ({"BOOKING_PLATFORM_HOME": str(args.home)} if args.home else {})
    settings = load_settings(env)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install -y wrk")
    registry.use_store(settings.mlflow_tracking_uri, settings.mlflow_artifact_root)
    champion = registry.load_alias_version(MODEL_NAME)
    if champion is None:
        raise SystemExit(f"no champion in {settings.home}: run `make run` first")
    rows = _request_rows(settings)
    console.print(f"champion v{champion} from {settings.home}; load {os.getloadavg()}")
    results: dict[str, dict[str, dict[str, float]]] = {}
    start, before = time.perf_counter(), cpu_snapshot()
    with tempfile.TemporaryDirectory(prefix="serving-bench-") as scratch_name:
        scratch = Path(scratch_name)
        # a copy of the registry: artifacts stay where they are (absolute locations), and
        # our service's prediction log goes to this scratch home, not the real one
        home = scratch / "home"
        shutil.copytree(settings.home / "mlflow", home / "mlflow", ignore=_artifacts)
        copied = Settings(home=home, source=settings.source, as_of=settings.as_of)
        reference: np.ndarray | None = None
        configurations = [(start_ours, home, w) for w in map(int, args.workers.split(","))]
        if not args.skip_mlflow:
            configurations += [
                (start_mlflow, copied.mlflow_tracking_uri, w)
                for w in map(int, args.workers.split(","))
            ]
        for start_server, where, workers in configurations:
            server = start_server(where, workers, scratch)
            try:
                probabilities = _probabilities(server, rows)
                if reference is None:
                    reference = probabilities
                # the same champion behind both: the same answers, or the comparison is void
                np.testing.assert_allclose(probabilities, reference, rtol=0, atol=1e-9)
                results[server.name] = measure(server, rows, args.repeats, args.seconds, scratch)
            finally:
                server.stop()
    lines = comparison(results)
    console.print(_table(lines, args.repeats, args.seconds))
    console.print(_markdown(lines), markup=False, soft_wrap=True)
    share, text = others_cpu_line(before, time.perf_counter() - start)
    console.print(text + "; wrk shares the same 2 cores with the servers")
    if args.json:
        args.json.write_text(json.dumps({"others_cpu_cores": share, "results": results}, indent=2))
    return 0


def _artifacts(directory: str, names: list[str]) -> list[str]:
    return ["artifacts"] if Path(directory).name == "mlflow" else []


if __name__ == "__main__":
    raise SystemExit(main())
