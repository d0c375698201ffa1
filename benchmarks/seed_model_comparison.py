"""Out-of-time comparison of the platform's model with the seed's GradientBoosting.

Both train on the cleaned bookings that arrived before the as-of date and are scored on (a) every
cleaned booking arriving from it and (b) only the bookings still open at it, the set the platform
actually scores. A random split would flatter both (duplicated rows), hence out of time.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from _common import (
    SEED_POST_BOOKING,
    TrainingRuns,
    base_parser,
    cpu_snapshot,
    load_cleaned,
    median,
    others_cpu_line,
    seed_proba,
    train_both,
    training_table,
)
from rich.console import Console
from rich.table import Table

from booking_platform.core.cleaning import open_bookings
from booking_platform.core.features import SCORED_ON
from booking_platform.core.metrics import classification_metrics

METRICS: tuple[tuple[str, str, bool], ...] = (
    # key in classification_metrics, label, higher is better
    ("roc_auc", "ROC AUC", True),
    ("pr_auc", "PR AUC", True),
    ("accuracy", "accuracy", True),
    ("precision", "precision", True),
    ("recall", "recall", True),
    ("f1", "F1", True),
    ("brier", "Brier", False),
    ("calibration_error", "calibration error", False),
)
TEST_SETS = ("all", "open")


def test_sets(cleaned: pd.DataFrame, as_of: date) -> dict[str, pd.DataFrame]:
    """(a) every booking arriving on/after as-of, asked at its booking date, (b) those still
    open at as-of, asked on as-of as a scoring run asks (the seed's model cannot tell)."""
    return {
        "all": cleaned[cleaned["arrival_date"] >= pd.Timestamp(as_of)],
        "open": open_bookings(cleaned, as_of).assign(**{SCORED_ON: pd.Timestamp(as_of)}),
    }


def evaluate(runs: TrainingRuns, tests: dict[str, pd.DataFrame]) -> dict[str, dict]:
    """Metrics of both models on each test set, plus the fit timings."""
    results: dict[str, dict] = {"ours": {}, "seed": {}}
    for name, rows in tests.items():
        labels = rows["is_canceled"].to_numpy()
        results["ours"][name] = classification_metrics(labels, runs.ours.model.predict_proba(rows))
        seed_rows = rows.drop(columns=SCORED_ON, errors="ignore")  # not a column the seed knows
        results["seed"][name] = classification_metrics(labels, seed_proba(runs.seed, seed_rows))
    results["ours"]["fit_seconds"] = median(runs.ours_seconds)
    results["ours"]["classifier_fit_seconds"] = median(runs.ours_classifier_seconds)
    results["seed"]["fit_seconds"] = median(runs.seed_seconds)
    return results


def _delta(ours: float, seed: float, higher_is_better: bool) -> str:
    better = ours > seed if higher_is_better else ours < seed
    colour = "green" if better else "red" if ours != seed else "white"
    return f"[{colour}]{ours - seed:+.3f}[/]"


def render(
    console: Console, results: dict[str, dict], tests: dict[str, pd.DataFrame], as_of: date
) -> None:
    ours, seed = results["ours"], results["seed"]
    sizes = "; ".join(
        f"{name}: {len(rows):,} rows, {rows['is_canceled'].mean():.1%} cancelled"
        for name, rows in tests.items()
    )
    table = Table(
        title=f"Out of time: train arrivals < {as_of}, test arrivals >= {as_of}\n{sizes}",
        caption="all = every booking arriving from as-of; open = still open at as-of (scored). "
        "Δ = ours − seed, green where ours is better.",
    )
    table.add_column("metric")
    for name in TEST_SETS:
        table.add_column(f"ours\n{name}", justify="right")
        table.add_column(f"seed\n{name}", justify="right")
        table.add_column(f"Δ\n{name}", justify="right")
    for key, label, higher in METRICS:
        cells = []
        for name in TEST_SETS:
            a, b = ours[name][key], seed[name][key]
            cells += [f"{a:.3f}", f"{b:.3f}", _delta(a, b, higher)]
        table.add_row(label, *cells)
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    args = parser.parse_args(argv)
    console = Console()
    started, start_time = cpu_snapshot(), time.perf_counter()

    with console.status("loading and cleaning bookings..."):
        cleaned = load_cleaned(args.source)
    tests = test_sets(cleaned, args.as_of)
    with console.status(f"training both models {args.repeats}x..."):
        runs = train_both(cleaned, args.as_of, args.repeats)
    results = evaluate(runs, tests)

    render(console, results, tests, args.as_of)
    console.print(training_table(runs))
    console.print(
        f"Note: the seed uses post-booking columns ({', '.join(SEED_POST_BOOKING)}), "
        "unknown when a booking is made; ours uses booking-time columns only."
    )
    others_cores, others_text = others_cpu_line(started, time.perf_counter() - start_time)
    console.print(others_text)

    if args.json:
        payload = {
            "source": str(args.source),
            "as_of": str(args.as_of),
            "repeats": args.repeats,
            "history_rows": runs.history_rows,
            "test_sets": {
                n: {"rows": len(t), "cancel_rate": float(np.mean(t["is_canceled"]))}
                for n, t in tests.items()
            },
            "models": results,
            "fit_speed_ratio_seed_over_ours": results["seed"]["fit_seconds"]
            / results["ours"]["fit_seconds"],
            "fit_speed_ratio_seed_over_ours_classifier": results["seed"]["fit_seconds"]
            / results["ours"]["classifier_fit_seconds"],
            "fit_seconds_all_repeats": {
                "ours": runs.ours_seconds,
                "ours_classifier": runs.ours_classifier_seconds,
                "seed": runs.seed_seconds,
            },
            "seed_post_booking_columns": list(SEED_POST_BOOKING),
            "other_processes_cores": others_cores,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        console.print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
