"""Speed of the platform: the main job's wall time, batch scoring throughput, training time.

(a) `booking-platform run` end to end in a fresh home each time (nothing cached), against the
30 s target; (b) rows/s of CancellationModel.predict_proba, the batch-scoring path; (c) training
time of ours against the seed's GradientBoosting on the same history rows (target: 5x faster).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pandas as pd
from _common import (
    REPO_ROOT,
    TrainingRuns,
    base_parser,
    cpu_snapshot,
    load_cleaned,
    median,
    others_cpu_line,
    seed_proba,
    train_both,
)
from rich.console import Console
from rich.table import Table

from booking_platform.core.cleaning import open_bookings

CLI = REPO_ROOT / ".venv" / "bin" / "booking-platform"
JOB_TARGET_SECONDS = 30.0
TRAINING_SPEEDUP_TARGET = 5.0


class JobFailed(RuntimeError):
    """The main job exited non-zero or timed out; the message carries the end of its log."""


def _stop(process: subprocess.Popen) -> None:
    """Stop the job we started (its own process group), politely first."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def run_job_once(source: Path, as_of: date, timeout: float) -> float:
    """Wall time of one `booking-platform run` in a fresh, empty BOOKING_PLATFORM_HOME."""
    with tempfile.TemporaryDirectory(prefix="booking_platform_bench_") as home:
        env = {
            **os.environ,
            "BOOKING_PLATFORM_HOME": home,
            "BOOKINGS_SOURCE": str(source.resolve()),
            "BOOKINGS_AS_OF": str(as_of),
        }
        log_path = Path(home) / "job.log"
        with log_path.open("w") as log:
            start = time.perf_counter()
            process = subprocess.Popen(
                [str(CLI), "run"],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group, so _stop reaches its children too
            )
            try:
                code = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _stop(process)
                code = None
            except BaseException:  # Ctrl-C: never leave the job running behind us
                _stop(process)
                raise
            seconds = time.perf_counter() - start
        if code != 0:
            outcome = f"timed out after {timeout:.0f} s" if code is None else f"exited {code}"
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
            raise JobFailed(f"booking-platform run {outcome}; end of its output:\n{tail}")
    return seconds


def job_table(seconds: list[float]) -> Table:
    table = Table(title=f"(a) main job: booking-platform run, fresh home, {len(seconds)} runs")
    for column in ("median s", "min s", "max s", "target s", "median / target"):
        table.add_column(column, justify="right")
    ratio = median(seconds) / JOB_TARGET_SECONDS
    colour = "green" if ratio <= 1 else "red"
    table.add_row(
        f"{median(seconds):.1f}",
        f"{min(seconds):.1f}",
        f"{max(seconds):.1f}",
        f"{JOB_TARGET_SECONDS:.0f}",
        f"[{colour}]{ratio:.2f}x[/]",
    )
    return table


def _median_seconds(
    score: Callable[[pd.DataFrame], object], rows: pd.DataFrame, repeats: int
) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        score(rows)
        times.append(time.perf_counter() - start)
    return median(times)


def scoring_table(runs: TrainingRuns, sets: dict[str, pd.DataFrame], repeats: int) -> Table:
    """Rows/s of ours (features + LightGBM) beside the seed's pipeline on the same rows."""
    table = Table(
        title=f"(b) batch scoring: predict_proba, median of {repeats}",
        caption="ours includes the feature transform (point-in-time rates), as in production.",
    )
    table.add_column("bookings", no_wrap=True)
    for column in ("rows", "ours s", "ours rows/s", "seed s", "seed rows/s", "seed/ours"):
        table.add_column(column, justify="right")
    for name, rows in sets.items():
        ours = _median_seconds(runs.ours.model.predict_proba, rows, repeats)
        seed = _median_seconds(lambda r: seed_proba(runs.seed, r), rows, repeats)
        table.add_row(
            name,
            f"{len(rows):,}",
            f"{ours:.2f}",
            f"{len(rows) / ours:,.0f}",
            f"{seed:.2f}",
            f"{len(rows) / seed:,.0f}",
            f"{seed / ours:.2f}x",
        )
    return table


def training_table(runs: TrainingRuns) -> Table:
    seed = median(runs.seed_seconds)
    table = Table(
        title=f"(c) training on the same {runs.history_rows:,} history rows, "
        f"{len(runs.seed_seconds)} runs",
        caption="ours = build_feature_set + train_and_validate (holdout fit + refit), what the "
        f"job runs; target: seed / ours >= {TRAINING_SPEEDUP_TARGET:.0f}x.",
    )
    table.add_column("model")
    for column in ("median s", "min s", "max s", "seed / this"):
        table.add_column(column, justify="right")
    rows = (
        ("ours: features + train_and_validate", runs.ours_seconds),
        ("ours: one LightGBM fit only", runs.ours_classifier_seconds),
    )
    for label, seconds in rows:
        ratio = seed / median(seconds)
        colour = "green" if ratio >= TRAINING_SPEEDUP_TARGET else "red"
        table.add_row(
            label,
            f"{median(seconds):.2f}",
            f"{min(seconds):.2f}",
            f"{max(seconds):.2f}",
            f"[{colour}]{ratio:.1f}x[/]",
        )
    seconds = runs.seed_seconds
    table.add_row(
        "seed: GradientBoosting pipeline",
        f"{seed:.2f}",
        f"{min(seconds):.2f}",
        f"{max(seconds):.2f}",
        "1.0x",
    )
    return table


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--skip-job", action="store_true", help="skip (a), the main job runs")
    parser.add_argument(
        "--job-timeout",
        type=float,
        default=600.0,
        help="stop a job run after this many seconds (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    console = Console()
    started, start_time = cpu_snapshot(), time.perf_counter()
    status = 0

    if not args.skip_job:
        seconds: list[float] = []
        try:
            for run in range(1, args.repeats + 1):
                with console.status(f"main job, run {run}/{args.repeats}..."):
                    seconds.append(run_job_once(args.source, args.as_of, args.job_timeout))
        except JobFailed as error:
            console.print(f"[red]main job failed:[/] {error}")
            status = 1
        if seconds:
            console.print(job_table(seconds))

    with console.status("loading and cleaning bookings..."):
        cleaned = load_cleaned(args.source)
    with console.status(f"training both models {args.repeats}x..."):
        runs = train_both(cleaned, args.as_of, args.repeats)
    sets = {"open at as-of": open_bookings(cleaned, args.as_of), "all cleaned": cleaned}
    with console.status("timing batch scoring..."):
        console.print(scoring_table(runs, sets, args.repeats))
    console.print(training_table(runs))
    console.print(others_cpu_line(started, time.perf_counter() - start_time)[1])
    return status


if __name__ == "__main__":
    sys.exit(main())
