"""Shared by the benchmark scripts: arguments, loading the real data, the seed's model, timing.

Both scripts train the platform's model and the seed's reproduction on the same history rows, so
the recipe and the timing loop live here once and cannot drift apart between the two reports.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from rich.table import Table
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OrdinalEncoder, TargetEncoder

from booking_platform.core.cleaning import clean_bookings, history
from booking_platform.core.features import build_feature_set
from booking_platform.core.source import read_bookings
from booking_platform.core.training import (
    ValidatedModel,
    fit_classifier,
    train_and_validate,
    training_questions,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = REPO_ROOT.parent / "shared" / "data" / "hotel_bookings.csv.zip"
DEFAULT_AS_OF = date(2017, 5, 1)
SEED_RANDOM_STATE = 42
TRAINING_SPEEDUP_TARGET = 5.0  # ours should train at least this many times faster

# The seed's model, as described in /work/shared/seeds/seed-model.md.
SEED_NA_FILL: dict[str, float | str] = {
    "children": 0.0,
    "country": "Unknown",
    "agent": 0.0,
    "company": 0.0,
}
SEED_PASSTHROUGH: tuple[str, ...] = (
    "lead_time",
    "arrival_date_year",
    "arrival_date_week_number",
    "arrival_date_day_of_month",
    "stays_in_weekend_nights",
    "stays_in_week_nights",
    "adults",
    "children",
    "babies",
    "is_repeated_guest",
    "previous_cancellations",
    "previous_bookings_not_canceled",
    "days_in_waiting_list",
    "adr",
    "required_car_parking_spaces",
    "total_of_special_requests",
)
SEED_ORDINAL: tuple[str, ...] = (
    "arrival_date_month",
    "meal",
    "market_segment",
    "distribution_channel",
    "reserved_room_type",
    "assigned_room_type",
    "customer_type",
)
SEED_TARGET: tuple[str, ...] = ("country", "booking_changes", "agent", "company")
SEED_POST_BOOKING: tuple[str, ...] = (
    "assigned_room_type",
    "booking_changes",
    "days_in_waiting_list",
)


def stop_group(process: subprocess.Popen, grace_seconds: float = 30.0) -> None:
    """Stop a process we started as the leader of its own group (start_new_session=True), and
    every process it started, by its PID: politely, then by force after `grace_seconds`."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _existing_file(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(
            f"{path}: file not found (set --source or BOOKINGS_SOURCE)"
        )
    return path


def source_parser(description: str | None) -> argparse.ArgumentParser:
    """--source: the real data, as the platform finds it."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--source",
        type=_existing_file,  # argparse applies it to the default too, as that is a string
        default=os.environ.get("BOOKINGS_SOURCE") or str(DEFAULT_SOURCE),
        help="bookings .csv/.zip (default: $BOOKINGS_SOURCE or ../shared/data/...)",
    )
    return parser


def base_parser(description: str | None) -> argparse.ArgumentParser:
    """The arguments the timing benchmarks take, with the same defaults as the platform."""
    parser = source_parser(description)
    parser.add_argument(
        "--as-of",
        type=date.fromisoformat,
        default=DEFAULT_AS_OF,
        help="train on arrivals before this date, test from it (default: %(default)s)",
    )
    parser.add_argument(
        "--repeats",
        type=_positive_int,
        default=3,
        help="runs per timing; the median is reported (default: %(default)s)",
    )
    return parser


def load_cleaned(source: Path) -> pd.DataFrame:
    """The cleaned bookings, through the platform's own reader and cleaning."""
    return clean_bookings(read_bookings(source).frame).cleaned


def _fill_seed_na(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.fillna(SEED_NA_FILL)


def seed_pipeline() -> Pipeline:
    """A fresh, unfitted reproduction of the seed's GradientBoosting pipeline."""
    columns = ColumnTransformer(
        [
            ("passthrough", "passthrough", list(SEED_PASSTHROUGH)),
            (
                "ordinal",
                OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
                list(SEED_ORDINAL),
            ),
            # TargetEncoder()'s default cross-fitting, seeded (its random_state is deprecated)
            (
                "target",
                TargetEncoder(
                    cv=StratifiedKFold(n_splits=5, shuffle=True, random_state=SEED_RANDOM_STATE)
                ),
                list(SEED_TARGET),
            ),
        ],
        remainder="drop",
    )
    return Pipeline(
        [
            ("fill_na", FunctionTransformer(_fill_seed_na)),
            ("columns", columns),
            (
                "model",
                GradientBoostingClassifier(
                    n_estimators=100,
                    min_samples_split=2,
                    min_samples_leaf=1,
                    random_state=SEED_RANDOM_STATE,
                ),
            ),
        ]
    )


@dataclass(frozen=True)
class CpuSnapshot:
    machine_busy: float  # CPU-seconds spent by everything on the machine (from /proc/stat)
    ours: float  # CPU-seconds of this process and of the children it has waited for


def cpu_snapshot() -> CpuSnapshot:
    """Take a reading now; `others_cpu_line` compares against it."""
    with open("/proc/stat") as stat:  # first line: cpu user nice system idle iowait irq ...
        ticks = [int(value) for value in stat.readline().split()[1:9]]
    idle = ticks[3] + ticks[4]
    usage = os.times()
    return CpuSnapshot(
        machine_busy=(sum(ticks) - idle) / os.sysconf("SC_CLK_TCK"),
        ours=usage.user + usage.system + usage.children_user + usage.children_system,
    )


def others_cpu_line(since: CpuSnapshot, wall_seconds: float) -> tuple[float, str]:
    """CPU used by *other* processes since `since`: they inflate every timing printed above.

    Another session's tests on this 2-core machine can make LightGBM's 2 threads several
    times slower, so the reader needs to know whether the numbers were taken on a quiet machine.
    """
    now = cpu_snapshot()
    others = max(0.0, (now.machine_busy - since.machine_busy) - (now.ours - since.ours))
    share = others / max(wall_seconds, 1e-9)  # in cores
    text = f"other processes used {others:.0f} CPU-s in {wall_seconds:.0f} s ({share:.2f} cores)"
    if share > 0.1:
        text += " [yellow]- the machine was shared, timings are inflated[/]"
    return share, text


def median(values: list[float]) -> float:
    return float(statistics.median(values))


@dataclass
class TrainingRuns:
    """Both models trained on the same history, and the wall time of every repeat."""

    history_rows: int
    ours: ValidatedModel
    seed: Pipeline
    ours_seconds: list[float]  # build_feature_set + train_and_validate: what the platform runs
    ours_single_seconds: list[float]  # build_feature_set + one fit: one model, as the seed
    ours_classifier_seconds: list[float]  # one LightGBM fit on the history features
    seed_seconds: list[float]


def train_both(cleaned: pd.DataFrame, as_of: date, repeats: int) -> TrainingRuns:
    """Train ours and the seed's `repeats` times each, interleaved so load drift hits both.

    Every run is deterministic (fixed seeds), so the last fitted models stand for all of them.
    """
    past = history(cleaned, as_of)
    labels = past["is_canceled"].to_numpy()
    ours_seconds: list[float] = []
    single_seconds: list[float] = []
    classifier_seconds: list[float] = []
    seed_seconds: list[float] = []
    for _ in range(repeats):
        start = time.perf_counter()
        feature_set = build_feature_set(cleaned, as_of)
        rows, _ = feature_set.part("history")
        validated = train_and_validate(rows, feature_set.builder, as_of)
        ours_seconds.append(time.perf_counter() - start)

        start = time.perf_counter()
        single_set = build_feature_set(cleaned, as_of)
        single_rows = training_questions(single_set.part("history")[0])
        single_features = single_set.builder.transform(single_rows)
        features_done = time.perf_counter()
        fit_classifier(single_features, single_rows["is_canceled"].to_numpy())
        single_seconds.append(time.perf_counter() - start)
        classifier_seconds.append(time.perf_counter() - features_done)

        start = time.perf_counter()
        seed = seed_pipeline().fit(past, labels)
        seed_seconds.append(time.perf_counter() - start)
    if len(rows) != len(past):
        raise RuntimeError(f"ours trained on {len(rows)} history rows, the seed on {len(past)}")
    return TrainingRuns(
        history_rows=len(past),
        ours=validated,
        seed=seed,
        ours_seconds=ours_seconds,
        ours_single_seconds=single_seconds,
        ours_classifier_seconds=classifier_seconds,
        seed_seconds=seed_seconds,
    )


def training_table(runs: TrainingRuns) -> Table:
    """Fit times of both models, median/min/max, and how many times faster ours is."""
    seed = median(runs.seed_seconds)
    table = Table(
        title=f"Training on the same {runs.history_rows:,} history rows, "
        f"{len(runs.seed_seconds)} runs",
        caption="ours = build_feature_set + train_and_validate (holdout fit + refit), what the "
        f"job runs; target: seed / ours >= {TRAINING_SPEEDUP_TARGET:.0f}x.",
    )
    table.add_column("model")
    for column in ("median s", "min s", "max s", "seed / this"):
        table.add_column(column, justify="right")
    rows = (
        ("ours: features + train_and_validate (2 fits)", runs.ours_seconds),
        ("ours: features + one fit (one model, as the seed)", runs.ours_single_seconds),
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


def seed_proba(seed: Pipeline, bookings: pd.DataFrame) -> np.ndarray:
    """Cancellation probabilities of the seed's pipeline for cleaned bookings."""
    return seed.predict_proba(bookings)[:, 1]
