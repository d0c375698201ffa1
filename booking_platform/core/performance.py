"""Realised performance: how the scores held up once the scored bookings arrived.

A booking may be scored at several as-of dates; the score that counts is the last one made
before it arrived (what the hotel acted on). Only arrivals before the current as-of date have
final labels.
"""

from datetime import date

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from booking_platform.core.metrics import calibration_error

COLUMNS = [
    "arrival_month",
    "bookings",
    "cancellations",
    "mean_probability",
    "cancel_rate",
    "roc_auc",
    "calibration_error",
    "model_versions",
]


def realised_performance(
    predictions: pd.DataFrame, cleaned: pd.DataFrame, as_of: date
) -> pd.DataFrame:
    """One row per arrival month of scored bookings that have since arrived."""
    outcomes = cleaned.loc[
        cleaned["arrival_date"] < pd.Timestamp(as_of), ["booking_id", "arrival_date", "is_canceled"]
    ]
    scored = predictions.merge(outcomes, on="booking_id")
    scored = scored[pd.to_datetime(scored["as_of"]) <= scored["arrival_date"]]
    last = scored.sort_values("as_of").groupby("booking_id").tail(1)
    if last.empty:
        return pd.DataFrame(columns=COLUMNS)
    rows = []
    for month, group in last.groupby(last["arrival_date"].dt.strftime("%Y-%m")):
        labels, proba = group["is_canceled"].to_numpy(), group["cancel_probability"].to_numpy()
        rows.append(
            {
                "arrival_month": month,
                "bookings": len(group),
                "cancellations": int(labels.sum()),
                "mean_probability": float(proba.mean()),
                "cancel_rate": float(labels.mean()),
                "roc_auc": float(roc_auc_score(labels, proba))
                if len(np.unique(labels)) == 2
                else float("nan"),
                "calibration_error": calibration_error(labels, proba),
                "model_versions": ",".join(sorted(group["model_version"].astype(str).unique())),
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)
