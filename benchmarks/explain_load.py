"""Can `?explain=true` starve the service? One-booking requests timed while clients ask for
explanations of large batches, on one worker.

A server (`booking-platform serve --workers 1`) is started on 127.0.0.1 from a copy of the home's
MLflow store. A probe posts one booking at a time, without explanation, first alone (baseline)
and then while --attackers clients each keep posting --batch bookings with `?explain=true`. The
table gives the probe's median and worst latency in both phases, the attackers' answers by
status, and the CPU the server spent. `--code DIR` runs the service from another checkout of the
package (e.g. an export of main's commit) with this environment, for a before/after on one
machine; the 1-minute load average is printed beside each phase.

    BOOKING_PLATFORM_HOME=/tmp/home flock /tmp/bench.lock .venv/bin/python \
        benchmarks/explain_load.py [--code /tmp/main-export] [--attackers 8] [--batch 1000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
from _common import REPO_ROOT
from rich.console import Console
from rich.table import Table

from booking_platform.config import Settings, load_settings
from booking_platform.core import warehouse
from booking_platform.core.source import FEATURE_SOURCE_COLUMNS

console = Console(width=160)


def _requests(settings: Settings, rows: int) -> list[dict]:
    """Open bookings of the home's last scoring run, as a client would send them."""
    with warehouse.connect(settings.warehouse_path, read_only=True) as connection:
        cleaned = warehouse.read_table(connection, "cleaned_bookings")
    cleaned = cleaned[cleaned["as_of"] == cleaned["as_of"].max()].head(rows)
    bookings = []
    for row in cleaned.to_dict("records"):
        booking: dict[str, object] = {"booking_id": int(row["booking_id"])}
        for column, kind in FEATURE_SOURCE_COLUMNS.items():
            value = row[column]
            if value is None or (isinstance(value, float) and np.isnan(value)):
                booking[column] = None
            elif kind == "str":
                booking[column] = str(value)
            else:
                booking[column] = int(value) if kind == "int" else float(value)
        bookings.append(booking)
    return bookings


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _server_cpu_seconds(pid: int) -> float:
    """User + system CPU of the server's process group (supervisor and worker), from /proc."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[2]) == pid:  # process group
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _start(home: Path, code: Path | None) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {**os.environ, "BOOKING_PLATFORM_HOME": str(home)}
    if code is not None:
        env["PYTHONPATH"] = str(code)  # ahead of the editable install of this checkout
    process = subprocess.Popen(
        [sys.executable, "-m", "booking_platform.cli", "serve", "--port", str(port)]
        + ["--workers", "1", "--max-batch", "1000"],
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    os.killpg(process.pid, signal.SIGTERM)
    raise RuntimeError("the server did not become ready")


def _probe(url: str, booking: dict, seconds: float) -> list[float]:
    latencies = []
    with httpx.Client(base_url=url, timeout=120) as client:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.perf_counter()
            assert client.post("/predict", json=booking).status_code == 200
            latencies.append(time.perf_counter() - started)
            time.sleep(0.05)
    return latencies


def _attack(url: str, batch: list[dict], stop: threading.Event, statuses: Counter) -> None:
    with httpx.Client(base_url=url, timeout=600) as client:
        while not stop.is_set():
            statuses[client.post("/predict?explain=true", json=batch).status_code] += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--code", type=Path, default=None, help="run the service from here")
    parser.add_argument("--attackers", type=int, default=8)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    settings = load_settings()  # BOOKING_PLATFORM_HOME: a home with a champion (`make run`)
    bookings = _requests(settings, args.batch)
    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch) / "home"
        shutil.copytree(settings.home / "mlflow", home / "mlflow")  # the prediction log stays
        compiled = Settings(home, "", settings.as_of).compiled_models_path
        if settings.compiled_models_path.is_dir():  # minutes of LLVM on a busy machine
            shutil.copytree(settings.compiled_models_path, compiled)
        process, url = _start(home, args.code)
        try:
            rows = []
            load = os.getloadavg()[0]
            alone = _probe(url, bookings[0], args.seconds / 2)
            rows.append(("alone", load, alone, Counter(), None))
            stop, statuses = threading.Event(), Counter()
            attackers = [
                threading.Thread(target=_attack, args=(url, bookings, stop, statuses))
                for _ in range(args.attackers)
            ]
            load, cpu = os.getloadavg()[0], _server_cpu_seconds(process.pid)
            for attacker in attackers:
                attacker.start()
            attacked = _probe(url, bookings[0], args.seconds)
            stop.set()
            cpu = _server_cpu_seconds(process.pid) - cpu
            for attacker in attackers:
                attacker.join()
            rows.append((f"{args.attackers} x explain {args.batch}", load, attacked, statuses, cpu))
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=60)
    table = Table(title=f"one-booking requests, code {args.code or REPO_ROOT}")
    for column in ("phase", "load 1 min", "probes", "p50 ms", "max ms", "attack answers", "CPU s"):
        table.add_column(column)
    for phase, load, latencies, answers, cpu in rows:
        table.add_row(
            phase,
            f"{load:.1f}",
            str(len(latencies)),
            f"{np.median(latencies) * 1000:.1f}",
            f"{max(latencies) * 1000:.1f}",
            ", ".join(f"{status}: {count}" for status, count in sorted(answers.items())) or "-",
            "-" if cpu is None else f"{cpu:.1f}",
        )
    console.print(table)


if __name__ == "__main__":
    main()
