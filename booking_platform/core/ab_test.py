"""Champion against challenger on live traffic: realised ROC AUC per arm once labels exist.

Reads the HTTP service's prediction log. An arm is a (variant, model version) pair; a booking
scored several times by one arm counts once, with its latest score. Labels are final for
bookings that arrived before the as-of date. An arm with fewer than MIN_LABELLED labelled
bookings gets no AUC: the report says so rather than print a number that noise could flip.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

MIN_LABELLED = 100
COLUMNS = [
    "variant",
    "model_version",
    "predictions",
    "served",
    "shadow",
    "bookings",
    "labelled",
    "cancellations",
    "mean_probability",
    "cancel_rate",
    "roc_auc",
    "p50_latency_ms",
    "p99_latency_ms",
    "note",
]


def _auc(labels: np.ndarray, probability: np.ndarray) -> tuple[float, str]:
    if len(labels) < MIN_LABELLED:
        return float("nan"), f"not enough labelled rows ({len(labels)} < {MIN_LABELLED})"
    if len(np.unique(labels)) < 2:
        return float("nan"), "labelled rows hold one outcome only"
    return float(roc_auc_score(labels, probability)), ""


def labelled_scores(log: pd.DataFrame, outcomes: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Each arm's latest score per booking, with the outcome where it is final."""
    latest = (
        log.sort_values("logged_at").groupby(["variant", "model_version", "booking_id"]).tail(1)
    )
    final = outcomes.loc[
        outcomes["arrival_date"] < pd.Timestamp(as_of), ["booking_id", "is_canceled"]
    ]
    return latest.merge(final, on="booking_id", how="left")


def ab_test_report(log: pd.DataFrame, outcomes: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """One row per arm: traffic, latency, labelled bookings and realised ROC AUC."""
    if log.empty:
        return pd.DataFrame(columns=COLUMNS)
    scores = labelled_scores(log, outcomes, as_of)
    rows = []
    for (variant, version), arm in log.groupby(["variant", "model_version"]):
        labelled = scores[
            (scores["variant"] == variant)
            & (scores["model_version"] == version)
            & scores["is_canceled"].notna()
        ]
        labels = labelled["is_canceled"].to_numpy(dtype=int)
        probability = labelled["cancel_probability"].to_numpy()
        auc, note = _auc(labels, probability)
        rows.append(
            {
                "variant": variant,
                "model_version": version,
                "predictions": len(arm),
                "served": int(arm["served"].sum()),
                "shadow": int((arm["served"] == 0).sum()),
                "bookings": arm["booking_id"].nunique(),
                "labelled": len(labelled),
                "cancellations": int(labels.sum()),
                "mean_probability": float(probability.mean()) if len(labels) else float("nan"),
                "cancel_rate": float(labels.mean()) if len(labels) else float("nan"),
                "roc_auc": auc,
                "p50_latency_ms": float(arm["latency_ms"].quantile(0.5)),
                "p99_latency_ms": float(arm["latency_ms"].quantile(0.99)),
                "note": note,
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def paired_comparison(
    log: pd.DataFrame, outcomes: pd.DataFrame, as_of: date, champion: str, challenger: str
) -> dict[str, object]:
    """Both versions on the labelled bookings they both scored (shadow mode scores all of a
    request's bookings with both, so this is the fairest comparison); AUCs or the reason not."""
    scores = labelled_scores(log, outcomes, as_of).dropna(subset=["is_canceled"])
    by_version = {
        version: scores[scores["model_version"] == version].set_index("booking_id")
        for version in (champion, challenger)
    }
    common = by_version[champion].index.intersection(by_version[challenger].index)
    labels = by_version[champion].loc[common, "is_canceled"].to_numpy(dtype=int)
    result: dict[str, object] = {"paired_labelled_bookings": len(common)}
    for role, version in (("champion", champion), ("challenger", challenger)):
        auc, note = _auc(labels, by_version[version].loc[common, "cancel_probability"].to_numpy())
        result[f"paired_{role}_roc_auc"] = auc
        if note:
            result["paired_note"] = note
    return result
