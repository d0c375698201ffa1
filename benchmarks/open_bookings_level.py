"""How far the candidate's probabilities miss the level of the bookings open on each as-of date.

For each as-of date: the candidate trained as `candidate_model` trains it (uncalibrated, seed 42);
on its own holdout (the latest months of history), the mean probability against the realised
rate per question (at booking, on a 1st of a month); on the bookings open at the as-of date
(asked on it, as scoring asks), the same per horizon (whole months to arrival) or per value of
a column (`--by market_segment`), with the calibration error. A level that moves from date to
date, in either direction, is a shift no calibrator fitted on history can undo
(docs/measurements.md, issue 17).

    .venv/bin/python benchmarks/open_bookings_level.py --as-of 2016-09-01 2017-01-01 2017-05-01 \
        [--by market_segment]
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
from _common import DEFAULT_AS_OF, load_cleaned, source_parser
from rich.console import Console
from rich.table import Table
from seed_model_comparison import test_sets

from booking_platform.core.features import SCORED_ON, build_feature_set
from booking_platform.core.metrics import calibration_error
from booking_platform.core.training import SEED, train_and_validate

HORIZON_MONTHS = 4  # the last band holds every booking arriving this many months ahead or more


def _level(frame: pd.DataFrame, by: str) -> pd.DataFrame:
    return frame.groupby(by).agg(bookings=("y", "size"), mean_p=("p", "mean"), rate=("y", "mean"))


def main() -> None:
    parser = source_parser(__doc__.splitlines()[0])
    parser.add_argument("--as-of", nargs="+", type=date.fromisoformat, default=[DEFAULT_AS_OF])
    parser.add_argument("--by", help="split the open bookings by this column, not by horizon")
    args = parser.parse_args()
    cleaned = load_cleaned(args.source)
    console = Console(width=120)
    table = Table(title="Mean probability / realised rate (bookings)")
    for column in ("as of", "set", "part", "mean p", "rate", "p - rate", "bookings", "cal. error"):
        table.add_column(column, justify="right")
    for as_of in args.as_of:
        feature_set = build_feature_set(cleaned, as_of)
        history, _ = feature_set.part("history")
        validated = train_and_validate(
            history, feature_set.builder, as_of, seed=SEED, calibrate=False
        )
        holdout = validated.holdout
        asked_at_booking = holdout[SCORED_ON].to_numpy() == holdout["booking_date"].to_numpy()
        parts = {
            "holdout": pd.DataFrame(
                {
                    "part": np.where(asked_at_booking, "at booking", "on a 1st"),
                    "p": validated.holdout_proba,
                    "y": holdout["is_canceled"].to_numpy(),
                }
            )
        }
        open_rows = test_sets(cleaned, as_of)["open"]
        months_ahead = (open_rows["arrival_date"] - pd.Timestamp(as_of)).dt.days // 30
        parts["open"] = pd.DataFrame(
            {
                "part": open_rows[args.by].astype(str).to_numpy()
                if args.by
                else [
                    f"{m}+ months" if m >= HORIZON_MONTHS else f"{m} months"
                    for m in months_ahead.clip(upper=HORIZON_MONTHS)
                ],
                "p": validated.model.predict_proba(open_rows),
                "y": open_rows["is_canceled"].to_numpy(),
            }
        )
        for name, frame in parts.items():
            whole = calibration_error(frame["y"].to_numpy(), frame["p"].to_numpy())
            rows = [("all", frame["p"].mean(), frame["y"].mean(), len(frame), f"{whole:.3f}")]
            rows += [
                (part, row.mean_p, row.rate, row.bookings, "")
                for part, row in _level(frame, "part").iterrows()
            ]
            for part, mean_p, rate, bookings, error in rows:
                table.add_row(
                    str(as_of),
                    name,
                    part,
                    f"{mean_p:.3f}",
                    f"{rate:.3f}",
                    f"{mean_p - rate:+.3f}",
                    f"{int(bookings):,}",
                    error,
                )
    console.print(table)


if __name__ == "__main__":
    main()
