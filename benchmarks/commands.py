"""The commands a person types, timed as they type them (issue 15 point 4).

For each command: the median wall time of `--repeats` runs of the console script in a fresh
process, beside its target:

- `predict` on the first `--rows` rows of the real export (written under a temporary folder),
- `explain` of the riskiest booking of the latest predictions,
- `predictions` (the default 20 rows),
- `serve` from its start until GET /health answers 200, on a home where the champion has been
  compiled once already (the first start, which may compile it, is run before and shown apart).

```bash
.venv/bin/python benchmarks/commands.py --home /tmp/cmd_home [--repeats 5]
```

The home needs a champion and predictions (`booking-platform run`). `serve` binds 127.0.0.1 on a
free port, runs in its own process group and is stopped by its PID (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pandas as pd
from _common import cpu_snapshot, median, others_cpu_line, source_parser, stop_group
from rich.console import Console
from rich.table import Table

BIN = Path(sys.executable).parent
CLI = BIN / "booking-platform"
# issue 15 point 4
TARGETS = {"predict": 3.0, "explain": 2.0, "predictions": 2.0, "serve": 30.0}
SERVE_TIMEOUT_SECONDS = 300


def _run(command: list[str], env: dict[str, str]) -> float:
    """Wall time of one run of the console script; any failure stops the benchmark."""
    started = time.perf_counter()
    completed = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} exited with {completed.returncode}:\n"
            f"{completed.stdout[-2000:]}{completed.stderr[-2000:]}"
        )
    return seconds


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve_until_healthy(env: dict[str, str], log: Path) -> float:
    """Seconds from starting `serve` to its first 200 on /health; its output goes to `log`."""
    port = _free_port()
    started = time.perf_counter()
    with log.open("w") as output:
        process = subprocess.Popen(
            [str(CLI), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        while time.perf_counter() - started < SERVE_TIMEOUT_SECONDS:
            if process.poll() is not None:
                raise RuntimeError(f"serve exited with {process.returncode}: {log.read_text()}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    return time.perf_counter() - started
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"serve not healthy within {SERVE_TIMEOUT_SECONDS} s: {log.read_text()}")
    finally:
        stop_group(process)  # the server leads its group, which holds its workers


def _riskiest_booking(home: Path) -> int:
    from booking_platform.core import warehouse

    with warehouse.connect(home / "warehouse.duckdb", read_only=True) as connection:
        latest = warehouse.latest_predictions(connection, 1)
    if latest.empty:
        raise SystemExit(f"no predictions in {home}: run `booking-platform run` with that home")
    return int(latest["booking_id"].iloc[0])


def main() -> int:
    parser = source_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--home",
        type=Path,
        default=os.environ.get("BOOKING_PLATFORM_HOME"),
        help="a home with a champion and predictions (default: $BOOKING_PLATFORM_HOME)",
    )
    parser.add_argument("--repeats", type=int, default=5, help="runs per command (median)")
    parser.add_argument("--rows", type=int, default=200, help="rows of the file `predict` scores")
    parser.add_argument(
        "--only", nargs="+", choices=list(TARGETS), default=list(TARGETS), help="commands to time"
    )
    args = parser.parse_args()
    if args.home is None:
        parser.error("pass --home or set BOOKING_PLATFORM_HOME")
    home = args.home.resolve()
    env = {**os.environ, "BOOKING_PLATFORM_HOME": str(home), "COLUMNS": "120"}
    console = Console()
    with tempfile.TemporaryDirectory(prefix="commands-bench-") as scratch:
        scratch_dir = Path(scratch)
        rows = scratch_dir / f"bookings_{args.rows}.csv"
        pd.read_csv(args.source, nrows=args.rows).to_csv(rows, index=False)
        output = scratch_dir / "scores.csv"
        commands: dict[str, Callable[[], float]] = {
            "predict": lambda: _run(
                [str(CLI), "predict", "--input", str(rows), "--output", str(output)], env
            ),
            "explain": lambda: _run([str(CLI), "explain", str(_riskiest_booking(home))], env),
            "predictions": lambda: _run([str(CLI), "predictions"], env),
            "serve": lambda: serve_until_healthy(env, scratch_dir / "serve.log"),
        }
        labels = {
            "predict": f"predict, {args.rows} rows",
            "explain": "explain ID",
            "predictions": "predictions",
            "serve": "serve until /health is 200",
        }
        load_before = os.getloadavg()
        since, wall_start = cpu_snapshot(), time.perf_counter()
        first_serve = None
        if "serve" in args.only:
            # the champion compiled once (or found compiled): what the target is about
            first_serve = commands["serve"]()
        times = {name: [] for name in args.only}
        for _ in range(args.repeats):  # interleaved, so a burst of load hits every command
            for name in args.only:
                times[name].append(commands[name]())
        serve_log = (scratch_dir / "serve.log").read_text() if "serve" in args.only else ""
    _, others = others_cpu_line(since, time.perf_counter() - wall_start)
    table = Table(title=f"commands on {home}, {args.repeats} runs each")
    table.add_column("command")
    for column in ("median s", "min s", "max s", "target s", ""):
        table.add_column(column, justify="right")
    for name, seconds in times.items():
        middle = median(seconds)
        verdict = "[green]met[/]" if middle <= TARGETS[name] else "[red]missed[/]"
        table.add_row(
            labels[name],
            f"{middle:.2f}",
            f"{min(seconds):.2f}",
            f"{max(seconds):.2f}",
            f"{TARGETS[name]:g}",
            verdict,
        )
    if first_serve is not None:
        table.add_row("serve, first start on this home (not counted)", f"{first_serve:.2f}")
    console.print(table)
    load_after = os.getloadavg()
    console.print(
        f"load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after; {others}"
    )
    if serve_log:
        console.print("the last serve's output:", serve_log.rstrip(), sep="\n", markup=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
