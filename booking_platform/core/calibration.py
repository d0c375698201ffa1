"""Calibrating a model's probabilities: isotonic or Platt, chosen by measured calibration error.

A `Calibrator` is a monotone map from the booster's probability to the one reported. It is part
of the registered model (CancellationModel.calibrator) and applied by `Calibrator.apply` only:
batch scores, `predict`, the MLflow pyfunc and the HTTP service (which scores through compiled
trees) all end in that one function, so they cannot disagree.

The fitted maps are kept as plain arrays (Platt: slope and intercept on the logit; isotonic: the
breakpoints sklearn's IsotonicRegression interpolates between), so applying one to a single
booking costs microseconds and the pickled model stays small.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

NONE, PLATT, ISOTONIC = "none", "platt", "isotonic"
METHODS = (NONE, PLATT, ISOTONIC)
# keeps logit finite for probabilities of exactly 0 or 1
_EPSILON = 1e-7


def _logit(proba: np.ndarray) -> np.ndarray:
    clipped = np.clip(proba, _EPSILON, 1 - _EPSILON)
    return np.log(clipped / (1 - clipped))


@dataclass(frozen=True, eq=False)
class Calibrator:
    """`method` none (identity), platt (sigmoid of a * logit + b) or isotonic (breakpoints)."""

    method: str = NONE
    slope: float = 1.0
    intercept: float = 0.0
    x: np.ndarray = field(default_factory=lambda: np.empty(0))
    y: np.ndarray = field(default_factory=lambda: np.empty(0))

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """The reported probabilities for the booster's ones (same shape)."""
        if self.method == PLATT:
            return 1.0 / (1.0 + np.exp(-(self.slope * _logit(raw) + self.intercept)))
        if self.method == ISOTONIC:
            return np.interp(raw, self.x, self.y)  # IsotonicRegression(out_of_bounds="clip")
        return np.asarray(raw)

    def describe(self) -> str:
        if self.method == PLATT:
            return f"platt (slope {self.slope:.3f}, intercept {self.intercept:.3f})"
        if self.method == ISOTONIC:
            return f"isotonic ({len(self.x)} breakpoints)"
        return NONE


IDENTITY = Calibrator()


def fit_calibrator(method: str, labels: np.ndarray, raw: np.ndarray) -> Calibrator:
    """Fit `method` mapping the booster's probabilities `raw` to the outcomes `labels`."""
    if method == PLATT:
        # C large: a two-parameter map on thousands of rows needs no regularisation
        fitted = LogisticRegression(C=1e6).fit(_logit(raw).reshape(-1, 1), labels)
        return Calibrator(PLATT, float(fitted.coef_[0, 0]), float(fitted.intercept_[0]))
    if method == ISOTONIC:
        fitted = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(raw, labels)
        return Calibrator(ISOTONIC, x=fitted.X_thresholds_, y=fitted.y_thresholds_)
    if method == NONE:
        return IDENTITY
    raise ValueError(f"unknown calibration method {method!r}; expected one of {METHODS}")
