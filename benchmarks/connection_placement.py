"""Where wrk's connections land among our server's workers, and the rate each placement gets.

The batch scenario of `serving.py` loads the server with 4 keep-alive connections, each posting
1,000-booking requests. A connection stays with the worker that accepted it, so a run in which
one worker holds all four leaves the other core idle. This starts `booking-platform serve` with
2 workers once, then runs wrk --runs times; 1.5 s into each run it counts each worker's
established connections (from /proc) and prints the placement beside that run's rows/s, then
the runs grouped by placement.

    .venv/bin/python benchmarks/connection_placement.py [--home data] [--runs 20]

Needs a champion in the home (`make run`) and Debian's `wrk`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

import orjson
from _common import median
from rich.console import Console
from rich.table import Table
from serving import BATCH, LUA, _artifacts, _request_rows, start_ours

from booking_platform.config import load_settings
from booking_platform.serving.workers import sockets_by_worker

console = Console()


def connections_per_worker(parent: int, port: int) -> list[int]:
    """Established connections on `port` held by each worker of `parent`, largest first."""
    counts = [
        Counter(held.values())["ESTABLISHED"] for held in sockets_by_worker(parent, port).values()
    ]
    return sorted((count for count in counts if count), reverse=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=None, help="data home with a champion")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=4)
    args = parser.parse_args()
    env = {**os.environ} | ({"BOOKING_PLATFORM_HOME": str(args.home)} if args.home else {})
    settings = load_settings(env)
    rows = _request_rows(settings)
    placements: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="placement-") as scratch_name:
        scratch = Path(scratch_name)
        home = scratch / "home"  # a copy of the registry: the traffic's log stays here
        shutil.copytree(settings.home / "mlflow", home / "mlflow", ignore=_artifacts)
        body = scratch / "batch.json"
        body.write_bytes(orjson.dumps(rows))
        script = scratch / "batch.lua"
        script.write_text(LUA.format(body=body))
        server = start_ours(home, 2, scratch)
        port = int(server.url.rsplit(":", 1)[1])
        try:
            for run in range(args.runs):
                wrk = subprocess.Popen(
                    ["wrk", "-t2", "-c4", f"-d{args.seconds}s", "-s", str(script)]
                    + [server.url + "/predict"],
                    stdout=subprocess.PIPE,
                    text=True,
                )
                time.sleep(1.5)
                placement = "+".join(map(str, connections_per_worker(server.process.pid, port)))
                output = wrk.communicate()[0]
                summary = json.loads(output.strip().splitlines()[-1])
                rate = summary["requests"] * BATCH / summary["seconds"]
                placements.setdefault(placement, []).append(rate)
                console.print(f"run {run + 1}: per worker {placement}, {rate:,.0f} rows/s")
        finally:
            server.stop()
    table = Table(title=f"{args.runs} wrk runs of {args.seconds} s, 4 connections, 2 workers")
    for column in ("connections per worker", "runs", "median rows/s", "min", "max"):
        table.add_column(column)
    for placement, rates in sorted(placements.items()):
        rates.sort()
        table.add_row(
            placement,
            str(len(rates)),
            f"{median(rates):,.0f}",
            f"{rates[0]:,.0f}",
            f"{rates[-1]:,.0f}",
        )
    console.print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
