"""What more data costs: the main job on 1x, 3x and 10x the real export, step by step.

    .venv/bin/python benchmarks/scale.py --factors 1 3 10

For each factor: a scaled export (benchmarks/scaled_export.py's generator, seeded) is written to
a scratch folder, then `booking-platform run` runs once in a fresh home on it. Printed per step:
its wall time (from the Dagster event log) and the job process's peak resident memory during
the step (sampled from /proc every 0.1 s), beside the 1x figures: the targets are at most 10x
the 1x time at 10x, and at most 4 GB of memory. Then the tables are checked: the cleaned rows
as the export's valid rows, one predictions slice for the as-of date.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from _common import (
    DEFAULT_AS_OF,
    REPO_ROOT,
    cpu_snapshot,
    others_cpu_line,
    source_parser,
    stop_group,
)
from rich.console import Console
from rich.table import Table

from booking_platform.core import warehouse
from booking_platform.core.scaled_export import scale_export
from booking_platform.core.tables import CLEANED_BOOKINGS, PREDICTIONS, QUARANTINED_BOOKINGS

CLI = REPO_ROOT / ".venv" / "bin" / "booking-platform"
MEMORY_TARGET_BYTES = 4 * 1024**3
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class JobRun:
    factor: int
    rows: int
    wall_seconds: float
    steps: dict[str, tuple[float, int]] = field(default_factory=dict)  # seconds, peak RSS bytes
    peak_rss: int = 0
    checks: list[str] = field(default_factory=list)


def _rss(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE
    except (FileNotFoundError, ProcessLookupError):
        return None


def _sample_rss(pid: int, samples: list[tuple[float, int]], stop: threading.Event) -> None:
    while not stop.wait(0.1):
        rss = _rss(pid)
        if rss is not None:
            samples.append((time.time(), rss))


def _step_windows(home: Path) -> dict[str, tuple[float, float]]:
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        (run,) = instance.get_runs(limit=1)
        if run.status != dg.DagsterRunStatus.SUCCESS:
            raise RuntimeError(f"the main job ended {run.status.value} (home {home})")
        return {
            s.step_key: (s.start_time, s.end_time)
            for s in instance.get_run_step_stats(run.run_id)
            if s.start_time and s.end_time
        }


def _check_tables(home: Path, rows: int) -> list[str]:
    """What is wrong with the job's tables (empty when nothing is)."""
    with warehouse.connect(home / "warehouse.duckdb", read_only=True) as connection:
        count = f"SELECT count(*) FROM {CLEANED_BOOKINGS.name}"
        cleaned = connection.execute(count).fetchone()[0]
        count = f"SELECT count(*) FROM {QUARANTINED_BOOKINGS.name}"
        refused = connection.execute(count).fetchone()[0]
        slices = connection.execute(
            "SELECT as_of, count(*), count(DISTINCT booking_id) "
            f"FROM {PREDICTIONS.name} GROUP BY as_of"
        ).fetchall()
    problems = []
    if cleaned + refused != rows:
        problems.append(f"{cleaned:,} cleaned + {refused:,} quarantined rows of {rows:,} read")
    if len(slices) != 1 or str(slices[0][0])[:10] != str(DEFAULT_AS_OF):
        problems.append(f"predictions slices: {slices}")
    elif slices[0][1] != slices[0][2]:
        problems.append(f"predictions: {slices[0][1]:,} rows for {slices[0][2]:,} bookings")
    return problems


def run_factor(export: pd.DataFrame, factor: int, scratch: Path, timeout: float) -> JobRun:
    source = scratch / f"bookings_x{factor}.csv.gz"
    scale_export(export, factor).to_csv(source, index=False)
    home = scratch / f"home_x{factor}"
    env = {
        **os.environ,
        "BOOKING_PLATFORM_HOME": str(home),
        "BOOKINGS_SOURCE": str(source),
        "BOOKINGS_AS_OF": str(DEFAULT_AS_OF),
    }
    samples: list[tuple[float, int]] = []
    stop = threading.Event()
    log = (scratch / f"job_x{factor}.log").open("w")
    start = time.perf_counter()
    process = subprocess.Popen(
        [str(CLI), "run"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    sampler = threading.Thread(target=_sample_rss, args=(process.pid, samples, stop))
    sampler.start()
    try:
        code = process.wait(timeout=timeout)
    except BaseException:  # a timeout or Ctrl-C: never leave the job running behind us
        stop_group(process, grace_seconds=10)
        raise
    finally:
        stop.set()
        sampler.join()
        log.close()
    wall = time.perf_counter() - start
    if code != 0:
        tail = "\n".join((scratch / f"job_x{factor}.log").read_text().splitlines()[-15:])
        raise RuntimeError(f"booking-platform run exited {code} at {factor}x:\n{tail}")
    result = JobRun(factor, factor * len(export), wall, peak_rss=max(r for _, r in samples))
    for step, (begin, end) in _step_windows(home).items():
        during = [rss for at, rss in samples if begin <= at <= end]
        result.steps[step] = (end - begin, max(during, default=0))
    result.checks = _check_tables(home, result.rows)
    return result


def report(runs: list[JobRun]) -> Table:
    base = runs[0]
    table = Table(title="The main job at " + ", ".join(f"{r.factor}x" for r in runs))
    table.add_column("step", no_wrap=True)
    for run in runs:
        table.add_column(f"{run.factor}x s", justify="right")
        table.add_column(f"{run.factor}x MB", justify="right")
    for run in runs[1:]:
        table.add_column(f"{run.factor}x/{base.factor}x time", justify="right")
    steps = sorted(base.steps, key=lambda s: -base.steps[s][0])
    for step in steps:
        cells = []
        for run in runs:
            seconds, rss = run.steps.get(step, (float("nan"), 0))
            cells += [f"{seconds:.1f}", f"{rss / 1024**2:,.0f}"]
        for run in runs[1:]:
            ratio = run.steps.get(step, (float("nan"), 0))[0] / max(base.steps[step][0], 1e-9)
            slower = ratio > run.factor / base.factor
            cells.append(f"[{'red' if slower else 'green'}]{ratio:.1f}x[/]")
        table.add_row(step, *cells)
    total = []
    for run in runs:
        colour = "red" if run.peak_rss > MEMORY_TARGET_BYTES else "green"
        total += [f"{run.wall_seconds:.1f}", f"[{colour}]{run.peak_rss / 1024**2:,.0f}[/]"]
    for run in runs[1:]:
        ratio = run.wall_seconds / base.wall_seconds
        total.append(f"[{'red' if ratio > run.factor / base.factor else 'green'}]{ratio:.1f}x[/]")
    table.add_row("[b]whole command[/]", *total)
    table.caption = (
        "s = the step's wall time; MB = the job process's peak resident memory during it "
        f"(target at most {MEMORY_TARGET_BYTES / 1024**3:.0f} GB); ratio red when a step grows "
        "faster than the data. Rows: " + ", ".join(f"{r.factor}x {r.rows:,}" for r in runs)
    )
    return table


def main(argv: list[str] | None = None) -> int:
    parser = source_parser(__doc__.splitlines()[0])
    parser.add_argument("--factors", type=int, nargs="+", default=[1, 3, 10])
    parser.add_argument("--timeout", type=float, default=3600.0, help="per job run, seconds")
    args = parser.parse_args(argv)
    console = Console(width=max(Console().width, 150))  # the table is wide; logs are not ttys
    started, start_time = cpu_snapshot(), time.perf_counter()
    export = pd.read_csv(args.source, dtype=str, keep_default_na=False)
    runs = []
    with tempfile.TemporaryDirectory(prefix="booking_platform_scale_") as scratch:
        for factor in args.factors:
            with console.status(f"the main job at {factor}x ({factor * len(export):,} rows)"):
                runs.append(run_factor(export, factor, Path(scratch), args.timeout))
    console.print(report(runs))
    status = 0
    for run in runs:
        for problem in run.checks:
            console.print(f"[red]{run.factor}x: {problem}[/]")
            status = 1
        if not run.checks:
            console.print(f"{run.factor}x: tables correct (cleaned rows, one predictions slice)")
    console.print(others_cpu_line(started, time.perf_counter() - start_time)[1])
    return status


if __name__ == "__main__":
    sys.exit(main())
