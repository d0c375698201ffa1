"""Data drift between the champion's training reference and the open bookings (Evidently)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from booking_platform.core.features import ALLOWED_SOURCE_COLUMNS

# Raw booking-time columns only: the day-index trend features drift by construction, and the
# point-in-time rates move with the outcomes, which is what retraining is for.
DRIFT_COLUMNS: tuple[str, ...] = (*ALLOWED_SOURCE_COLUMNS, "total_nights", "arrival_month")


REFERENCE_ROWS = 5000  # a sample keeps the report to seconds and the HTML to a few MB


def reference_sample(features: pd.DataFrame) -> pd.DataFrame:
    """The drift reference drawn from training features (fixed seed: reruns compare alike)."""
    return features.sample(min(REFERENCE_ROWS, len(features)), random_state=0)


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
