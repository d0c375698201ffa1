"""Model quality estimated before the labels arrive: confidence-based performance estimation.

The method is NannyML's CBPE (docs: "Confidence-based Performance Estimation", How it works;
Kivimäki, Białek, Nurminen and Kuberski, "Confidence-based Estimators for Predictive Performance
in Model Monitoring", JAIR 2025, arXiv:2407.08649). If the model is calibrated, a booking scored p
cancels with probability p, so the confusion matrix at any threshold t has an expected value:
TP(t) = sum of p over scores >= t, FP(t) = sum of (1 - p) over the same, and so on. The
estimated ROC curve joins the expected (FPR, TPR) points; its area is the estimated ROC AUC.

nannyml itself is not a dependency: it pins an older pandas/numpy stack than the platform's.
Beside the point estimate this module draws the labels the calibration assumption implies
(Bernoulli(p) per unit of bookings that cancel together: identical rows, as net demand counts
them, core/net_demand.py), which gives the sampling band of the ROC AUC and the calibration
error a calibrated model would still show on those bookings (finite samples are never perfectly
calibrated, and a group of forty rooms is one draw, not forty). Miscalibration is what the
method cannot see: the replay (docs/measurements.md, "Issue 16") measures how far the estimates
land from the realised figures.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from booking_platform.core.training import SEED

SIMULATED_DRAWS = 400
COLUMNS = [
    "arrival_month",
    "bookings",
    "expected_cancellations",
    "estimated_cancel_rate",
    "estimated_roc_auc",
    "estimated_roc_auc_low",
    "estimated_roc_auc_high",
    "estimated_brier",
    "estimated_calibration_error",
]
BINS = 10  # the calibration error's bins (core/metrics.py calibration_error)


def estimated_roc_auc(proba: np.ndarray) -> float:
    """CBPE's ROC AUC: the area under the expected ROC curve of calibrated probabilities."""
    proba = np.asarray(proba, dtype=float)
    if len(proba) == 0 or proba.sum() <= 0 or (1 - proba).sum() <= 0:
        return float("nan")
    # one point per distinct threshold, highest first: everything scored >= t is predicted
    thresholds, inverse = np.unique(-proba, return_inverse=True)
    positives = np.bincount(inverse, weights=proba, minlength=len(thresholds))
    negatives = np.bincount(inverse, weights=1 - proba, minlength=len(thresholds))
    tpr = np.concatenate([[0.0], np.cumsum(positives) / proba.sum()])
    fpr = np.concatenate([[0.0], np.cumsum(negatives) / (1 - proba).sum()])
    return float(np.trapezoid(tpr, fpr))


def simulated_labels(
    proba: np.ndarray, draws: int, seed: int = SEED, units: np.ndarray | None = None
) -> np.ndarray:
    """Label draws (draws x bookings) as a calibrated model says they fall. `units`
    (net_demand.cancellation_units): bookings of one unit share their draw; None: each its own.
    `proba`: one probability per booking, or one row of them per draw (draws x bookings).
    """
    rng = np.random.default_rng(seed)
    if units is None:
        return (rng.random((draws, np.shape(proba)[-1])) < proba).astype(np.int8)
    codes, distinct = pd.factorize(units)
    return (rng.random((draws, len(distinct)))[:, codes] < proba).astype(np.int8)


def roc_auc_per_draw(proba: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """ROC AUC of each draw of labels (Mann-Whitney on the fixed scores' mid-ranks)."""
    ranks = rankdata(proba)
    positives = labels.sum(axis=1).astype(float)
    negatives = labels.shape[1] - positives
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = (labels @ ranks - positives * (positives + 1) / 2) / (positives * negatives)
    return np.where((positives > 0) & (negatives > 0), auc, np.nan)


def calibration_error_per_draw(proba: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Expected calibration error of each draw, with core/training.py's bins."""
    edges = np.linspace(0.0, 1.0, BINS + 1)
    which = np.clip(np.digitize(proba, edges[1:-1]), 0, BINS - 1)
    error = np.zeros(labels.shape[0])
    for b in np.unique(which):
        in_bin = which == b
        gap = np.abs(proba[in_bin].mean() - labels[:, in_bin].mean(axis=1))
        error += in_bin.mean() * gap
    return error


def estimate_performance(
    proba: np.ndarray,
    draws: int = SIMULATED_DRAWS,
    seed: int = SEED,
    units: np.ndarray | None = None,
) -> dict[str, float]:
    """Estimates for one set of scored bookings (COLUMNS but the month); `units` as
    simulated_labels takes them."""
    proba = np.asarray(proba, dtype=float)
    labels = simulated_labels(proba, draws, seed, units)
    auc = roc_auc_per_draw(proba, labels)
    defined = auc[~np.isnan(auc)]
    return {
        "bookings": len(proba),
        "expected_cancellations": float(proba.sum()),
        "estimated_cancel_rate": float(proba.mean()),
        "estimated_roc_auc": estimated_roc_auc(proba),
        "estimated_roc_auc_low": float(np.quantile(defined, 0.025)) if len(defined) else np.nan,
        "estimated_roc_auc_high": float(np.quantile(defined, 0.975)) if len(defined) else np.nan,
        # E[(y - p)^2] with y ~ Bernoulli(p)
        "estimated_brier": float(np.mean(proba * (1 - proba))),
        "estimated_calibration_error": float(calibration_error_per_draw(proba, labels).mean()),
    }


def estimate_by_arrival_month(
    scored: pd.DataFrame,
    units: np.ndarray | None = None,
    draws: int = SIMULATED_DRAWS,
    seed: int = SEED,
) -> pd.DataFrame:
    """One row per arrival month of scored open bookings (`arrival_date`, `cancel_probability`);
    `units`: one per row of `scored`, as simulated_labels takes them."""
    months = scored["arrival_date"].dt.strftime("%Y-%m").to_numpy()
    proba = scored["cancel_probability"].to_numpy()
    units = None if units is None else np.asarray(units)
    rows = []
    for month in np.unique(months):
        of_month = months == month
        in_month = None if units is None else units[of_month]
        estimate = estimate_performance(proba[of_month], draws, seed, in_month)
        rows.append({"arrival_month": month, **estimate})
    return pd.DataFrame(rows, columns=COLUMNS)
