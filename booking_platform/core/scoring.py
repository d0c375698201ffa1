"""Scoring bookings with a model: the one path for batch predictions and the CLI."""

from __future__ import annotations

import pandas as pd

from booking_platform.core.training import CancellationModel


def score_bookings(
    model: CancellationModel, bookings: pd.DataFrame, model_version: str
) -> pd.DataFrame:
    """One row per booking, in input order."""
    proba = model.predict_proba(bookings)
    return pd.DataFrame(
        {
            "booking_id": bookings["booking_id"].to_numpy(),
            "cancel_probability": proba,
            "predicted_cancel": proba >= model.threshold,
            "threshold": model.threshold,
            "model_version": model_version,
        }
    )
