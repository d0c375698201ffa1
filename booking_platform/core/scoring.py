"""Scoring bookings with a model: the one path for batch predictions and the CLI."""

from __future__ import annotations

import pandas as pd

from booking_platform.core.explanations import reason_columns, top_reasons
from booking_platform.core.training import CancellationModel


def score_bookings(
    model: CancellationModel, bookings: pd.DataFrame, model_version: str, reasons: int = 0
) -> pd.DataFrame:
    """One row per booking, in input order; with `reasons` > 0, that many reasons per booking
    (columns reason_1.. as text, `reasons` as JSON; see core/explanations.py)."""
    features = model.builder.transform(bookings)
    proba = model.predict_proba(bookings, features)
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
        explained = top_reasons(model, bookings, features, k=reasons)
        scores = pd.concat([scores, reason_columns(explained, k=reasons)], axis=1)
    return scores
