"""Scoring bookings with a model: the one path for batch predictions and the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from booking_platform.core.contracts import broken_rows, predictions_contract
from booking_platform.core.explanations import reason_columns, top_reasons
from booking_platform.core.features import booking_columns
from booking_platform.core.training import CancellationModel

if TYPE_CHECKING:
    import lleaves


def score_bookings(
    model: CancellationModel,
    bookings: pd.DataFrame,
    model_version: str,
    reasons: int = 0,
    trees: lleaves.Model | None = None,
) -> pd.DataFrame:
    """One row per booking, in input order; with `reasons` > 0, that many reasons per booking
    (columns reason_1.. as text, `reasons` as JSON; see core/explanations.py). `trees`: the
    model's booster compiled, when it was (core/compiled_trees.py)."""
    matrix = model.builder.encode(booking_columns(bookings))
    proba = model.scores(matrix, trees)
    scores = pd.DataFrame(
        {
            "booking_id": bookings["booking_id"].to_numpy(),
            "cancel_probability": proba,
            "predicted_cancel": proba >= model.threshold,
            "threshold": model.threshold,
            "model_version": model_version,
        }
    )
    if reasons:
        features = model.builder.as_frame(matrix, bookings.index)
        explained = top_reasons(model, bookings, features, k=reasons)
        scores = pd.concat([scores, reason_columns(explained, k=reasons)], axis=1)
    return scores


@dataclass(frozen=True)
class PredictionAudit:
    """What is wrong with one as-of date's predictions (all zero / empty when nothing is)."""

    missing: int  # open bookings without a prediction
    unexpected: int  # predictions of bookings that are not open that day
    duplicated: int  # bookings predicted more than once
    out_of_range: int  # probabilities missing or outside [0, 1]
    without_reasons: int  # predictions without their stored reasons
    versions: tuple[str, ...]  # the model versions that scored the rows


def audit_predictions(predictions: pd.DataFrame, open_booking_ids: pd.Series) -> PredictionAudit:
    """Compare an as-of date's stored predictions (`as_of` included) with the bookings open
    that day."""
    scored, expected = set(predictions["booking_id"]), set(open_booking_ids)
    # what a valid prediction is, the contract says; a reason column missing altogether (rows
    # written before reasons were stored) breaks every row
    broken = broken_rows(predictions, predictions_contract())
    return PredictionAudit(
        missing=len(expected - scored),
        unexpected=len(scored - expected),
        duplicated=int(predictions["booking_id"].duplicated().sum()),
        out_of_range=len(broken.get("cancel_probability", set())),
        without_reasons=len(broken.get("reason_1", set()) | broken.get("reasons", set())),
        versions=tuple(sorted(predictions["model_version"].astype(str).unique())),
    )
