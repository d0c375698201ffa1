"""Would a point-in-time cancellation-hazard feature fix the open bookings' level? (issue 17)

The hazard of hotel h on date t over w days: of h's bookings that were open on t - w and due to
arrive on or after t, the share cancelled before t. Only cancellations recorded before t count,
so it is known on the date a question is asked (its SCORED_ON, else its booking date). An
experiment: the platform's features do not hold it. For each as-of date, the candidate as
`open_bookings_level.py` trains it (uncalibrated, seed 42), without and with the feature for
each window: on its holdout and on the bookings open at the as-of date (asked as scoring asks),
ROC AUC, calibration error and mean probability minus realised rate.

    .venv/bin/python benchmarks/hazard_feature.py --as-of 2016-09-01 2017-01-01 2017-05-01 \
        --windows 28 91 [--by hotel market_segment]
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
from _common import DEFAULT_AS_OF, load_cleaned, source_parser
from rich.console import Console
from rich.table import Table
from seed_model_comparison import test_sets
from sklearn.metrics import roc_auc_score

from booking_platform.core.features import SCORED_ON, FeatureBuilder, build_feature_set
from booking_platform.core.metrics import calibration_error
from booking_platform.core.training import SEED, train_and_validate


def _keyed(bookings: pd.DataFrame, by: tuple[str, ...]) -> np.ndarray:
    first, *others = (bookings[column].astype(str) for column in by)
    return first.str.cat(others, sep=" | ").to_numpy() if others else first.to_numpy()


class HazardTable:
    """Every booking's key (its hotel, or its hotel and the other `by` columns), booking, arrival
    and cancellation day (NaT if it stayed)."""

    def __init__(self, cleaned: pd.DataFrame, by: tuple[str, ...] = ("hotel",)) -> None:
        self.by = by
        self.key = _keyed(cleaned, by)
        self.arrival = cleaned["arrival_date"].to_numpy("datetime64[D]")
        self.booked = self.arrival - cleaned["lead_time"].to_numpy().astype("timedelta64[D]")
        cancelled = cleaned["is_canceled"].eq(1).to_numpy()
        status = cleaned["reservation_status_date"].to_numpy("datetime64[D]")
        self.cancelled_on = np.where(cancelled, status, np.datetime64("NaT"))

    def hazard(self, key: str, day: np.datetime64, window: int) -> float:
        start = day - np.timedelta64(window, "D")
        at_risk = (
            (self.key == key)
            & (self.booked < start)
            & (self.arrival >= day)
            & ~(self.cancelled_on < start)
        )
        if not at_risk.any():  # nothing on the books then: unknown, as LightGBM reads NaN
            return float("nan")
        return float((at_risk & (self.cancelled_on < day)).sum() / at_risk.sum())

    def column(self, bookings: pd.DataFrame, window: int) -> np.ndarray:
        asked = (
            bookings[SCORED_ON]
            if SCORED_ON in bookings
            else bookings["arrival_date"] - pd.to_timedelta(bookings["lead_time"], unit="D")
        ).to_numpy("datetime64[D]")
        keys = list(zip(_keyed(bookings, self.by), asked, strict=True))
        known = {key: self.hazard(key[0], key[1], window) for key in set(keys)}
        return np.array([known[key] for key in keys])


class WithHazard:
    """A FeatureBuilder whose features gain the hazard over `window` days."""

    def __init__(self, builder: FeatureBuilder, table: HazardTable, window: int) -> None:
        self.builder, self.table, self.window = builder, table, window

    def transform(self, bookings: pd.DataFrame) -> pd.DataFrame:
        features = self.builder.transform(bookings)
        features[f"hazard_{self.window}d"] = self.table.column(bookings, self.window)
        return features


def _scores(labels: np.ndarray, proba: np.ndarray) -> list[str]:
    return [
        f"{roc_auc_score(labels, proba):.4f}",
        f"{calibration_error(labels, proba):.4f}",
        f"{proba.mean() - labels.mean():+.3f}",
    ]


def main() -> None:
    parser = source_parser(__doc__.splitlines()[0])
    parser.add_argument("--as-of", nargs="+", type=date.fromisoformat, default=[DEFAULT_AS_OF])
    parser.add_argument("--windows", nargs="+", type=int, default=[28, 91])
    parser.add_argument(
        "--by", nargs="+", default=["hotel"], help="the hazard's key: hotel [market_segment ...]"
    )
    args = parser.parse_args()
    cleaned = load_cleaned(args.source)
    table = HazardTable(cleaned, tuple(args.by))
    report = Table(title="Candidate without and with the hazard feature (uncalibrated, seed 42)")
    for column in (
        "as of",
        "features",
        "holdout AUC",
        "holdout cal. error",
        "holdout p - rate",
        "open AUC",
        "open cal. error",
        "open p - rate",
        "hazard on the as-of date (City / Resort)",
    ):
        report.add_column(column, justify="right")
    for as_of in args.as_of:
        feature_set = build_feature_set(cleaned, as_of)
        history, _ = feature_set.part("history")
        open_rows = test_sets(cleaned, as_of)["open"]
        builders = {"platform's": feature_set.builder} | {
            f"+ hazard {w} d": WithHazard(feature_set.builder, table, w) for w in args.windows
        }
        for name, builder in builders.items():
            validated = train_and_validate(history, builder, as_of, seed=SEED, calibrate=False)
            proba = validated.model.classifier.predict_proba(builder.transform(open_rows))[:, 1]
            day = np.datetime64(as_of, "D")
            hazard = (
                " / ".join(
                    f"{table.hazard(h, day, builder.window):.3f}"
                    for h in ("City Hotel", "Resort Hotel")
                )
                if isinstance(builder, WithHazard) and table.by == ("hotel",)
                else ""
            )
            report.add_row(
                str(as_of),
                name,
                *_scores(validated.holdout["is_canceled"].to_numpy(), validated.holdout_proba),
                *_scores(open_rows["is_canceled"].to_numpy(), proba),
                hazard,
            )
    Console(width=160).print(report)


if __name__ == "__main__":
    main()
