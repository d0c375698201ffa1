"""Classification metrics the platform reports and gates on, in one place: the holdout's, the
backtest's, the search's, the realised performance's and the gate's figures are the same
functions."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

DECISION_THRESHOLD = 0.5  # probability at or above which a booking is predicted to cancel


def calibration_error(y_true: np.ndarray, proba: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error over equal-width probability bins."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(proba, edges[1:-1]), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            error += in_bin.mean() * abs(proba[in_bin].mean() - y_true[in_bin].mean())
    return float(error)


def classification_metrics(
    y_true: np.ndarray, proba: np.ndarray, threshold: float = DECISION_THRESHOLD
) -> dict[str, float]:
    y_true = np.asarray(y_true)
    predicted = (proba >= threshold).astype(int)
    return {
        "roc_auc": float(roc_auc_score(y_true, proba)),
        "pr_auc": float(average_precision_score(y_true, proba)),
        "accuracy": float(accuracy_score(y_true, predicted)),
        "precision": float(precision_score(y_true, predicted, zero_division=0)),
        "recall": float(recall_score(y_true, predicted, zero_division=0)),
        "f1": float(f1_score(y_true, predicted, zero_division=0)),
        "brier": float(brier_score_loss(y_true, proba)),
        "calibration_error": calibration_error(y_true, proba),
        "rows": float(len(y_true)),
        "positive_rate": float(np.mean(y_true)),
    }
