"""Data drift of the open bookings against a like-with-like reference (Evidently).

Bookings open in May look nothing like a model's whole training year: they arrive in summer,
are booked further ahead and cost more. Compared with the training data, drift "happens" every
season. The reference is therefore the bookings that were open on the same date one year
earlier, taken from the same export: same season, same selection, so what remains is change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd

from booking_platform.core.cleaning import open_bookings
from booking_platform.core.features import ALLOWED_SOURCE_COLUMNS, FeatureSet

# Raw booking-time columns only: the day-index trend features drift by construction, and the
# point-in-time rates move with the outcomes, which is what retraining is for.
DRIFT_COLUMNS: tuple[str, ...] = (*ALLOWED_SOURCE_COLUMNS, "total_nights", "arrival_month")


REFERENCE_ROWS = 5000  # a sample keeps the report to seconds and the HTML to a few MB
MIN_REFERENCE_ROWS = 500
# Retrain when this share of the columns drifts, or when a column the cancellation risk leans on
# most drifts further than its own limit (Evidently's score: Wasserstein distance in reference
# standard deviations for numbers, Jensen-Shannon distance for categories). Calibrated on the
# replay of the real data (docs/design.md, "Drift: like with like"): the hotels' steady
# year-over-year change (prices up, more online agencies) stays under them, a shift of a
# different kind does not.
DRIFT_SHARE_THRESHOLD = 0.75
KEY_DRIFT_COLUMNS: dict[str, float] = {
    "lead_time": 0.5,
    "adr": 1.0,
    "market_segment": 0.4,
    "deposit_type": 0.4,
}
# Under 1,000 rows Evidently tests p-values instead of distances; at its 0.05, four key columns
# would raise a false alarm about one stable snapshot in five.
KEY_P_VALUE = 0.001
NO_RETRAINING = "no retraining needed"


def reference_sample(features: pd.DataFrame) -> pd.DataFrame:
    """The drift reference drawn from training features (fixed seed: reruns compare alike)."""
    return features.sample(min(REFERENCE_ROWS, len(features)), random_state=0)


def year_earlier(as_of: date) -> date:
    return as_of.replace(year=as_of.year - 1, day=min(as_of.day, 28))


def seasonal_reference(feature_set: FeatureSet) -> pd.DataFrame | None:
    """Features of the bookings that were open one year before the as-of date, or None.

    They come from the same export (arrived since, or still open), so no other file is needed.
    Both sides cover the same arrival horizon: an export whose open bookings reach only a few
    weeks ahead is compared with last year's bookings for those same weeks. None when the
    export does not reach back a year.
    """
    bookings = feature_set.bookings
    now, then = pd.Timestamp(feature_set.as_of), pd.Timestamp(year_earlier(feature_set.as_of))
    if bookings["arrival_date"].min() > then:
        return None
    current = bookings[bookings["role"] == "open"]
    horizon = current["arrival_date"].max() - now if len(current) else pd.Timedelta(0)
    earlier = open_bookings(bookings, then.date())
    rows = earlier.index[(earlier["arrival_date"] <= then + horizon).to_numpy()]
    if len(rows) < MIN_REFERENCE_ROWS:
        return None
    return reference_sample(feature_set.features.loc[rows])


def _beyond(score: dict[str, float | str | bool], limit: float) -> bool:
    """A distance beyond the column's limit, or (small samples) a p-value under KEY_P_VALUE."""
    if "p_value" in str(score["method"]).lower():
        return float(score["score"]) < KEY_P_VALUE
    return float(score["score"]) >= limit


def drift_verdict(
    drift_share: float,
    column_scores: dict[str, dict[str, float | str | bool]],
    share_threshold: float = DRIFT_SHARE_THRESHOLD,
    key_columns: dict[str, float] = KEY_DRIFT_COLUMNS,
) -> str | None:
    """Why the drift calls for retraining, or None when it does not."""
    if drift_share >= share_threshold:
        return f"drift share {drift_share:.2f} >= {share_threshold}"
    over = [
        f"{column} {float(column_scores[column]['score']):.2f} ({column_scores[column]['method']})"
        for column, limit in key_columns.items()
        if column in column_scores and _beyond(column_scores[column], limit)
    ]
    return f"key column(s) drifted: {', '.join(over)}" if over else None


@dataclass(frozen=True)
class DriftSummary:
    drift_share: float
    drifted_columns: list[str]
    column_scores: dict[str, dict[str, float | str | bool]]
    html_path: Path


def _as_plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Evidently infers column kinds from dtypes: categoricals as text, numbers as floats."""
    frame = frame[list(DRIFT_COLUMNS)].copy()
    for column in frame.columns:
        if isinstance(frame[column].dtype, pd.CategoricalDtype):
            frame[column] = frame[column].astype(str)
    return frame


def _is_drifted(method: str, value: float, threshold: float) -> bool:
    # p-value tests drift when the value is small; distances drift when it is large.
    if "p_value" in method.lower():
        return value < threshold
    return value >= threshold


def compute_drift(reference: pd.DataFrame, current: pd.DataFrame, html_path: Path) -> DriftSummary:
    """Run Evidently's DataDriftPreset, save its HTML, and summarise per column."""
    # Imported here: Evidently takes seconds to import, and the CLI and Dagit load this module.
    from evidently import Report
    from evidently.presets import DataDriftPreset

    snapshot = Report([DataDriftPreset()]).run(
        current_data=_as_plain(current), reference_data=_as_plain(reference)
    )
    html_path.parent.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(html_path))
    scores: dict[str, dict[str, float | str | bool]] = {}
    share = 0.0
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config["type"].endswith("DriftedColumnsCount"):
            share = float(metric["value"]["share"])
        elif config["type"].endswith("ValueDrift"):
            value, threshold = float(metric["value"]), float(config["threshold"])
            scores[config["column"]] = {
                "method": config["method"],
                "score": round(value, 4),
                "threshold": threshold,
                "drifted": _is_drifted(config["method"], value, threshold),
            }
    drifted = sorted(c for c, s in scores.items() if s["drifted"])
    return DriftSummary(
        drift_share=share, drifted_columns=drifted, column_scores=scores, html_path=html_path
    )
