"""Why a booking is flagged: the model's own per-feature contributions (LightGBM pred_contrib).

LightGBM computes exact TreeSHAP contributions in log-odds: for each booking they add up, with the
bias, to the model's raw score, whose sigmoid is the probability. The largest ones by size are the
booking's reasons, each named after what an analyst knows (the column and the booking's value;
for a cancellation-rate feature, the group and its historical rate). SHAP the package would give
the same numbers for a tree model at the cost of another dependency.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from booking_platform.core import tree_contributions
from booking_platform.core.features import RATE_GROUPS, feature_matrix, rate_feature_name
from booking_platform.core.training import N_JOBS, CancellationModel

REASONS_PER_BOOKING = 3
RATE_GROUP_OF = {rate_feature_name(group): group for group in RATE_GROUPS}
DAY_FEATURES = {"arrival_day_index": "arrival_date", "booking_day_index": "booking_date"}


@dataclass(frozen=True)
class Reason:
    feature: str  # the model's feature name
    value: str  # the booking's value, as an analyst reads it
    direction: str  # "raises" or "lowers" the cancellation risk
    contribution: float  # log-odds added to the score

    def record(self) -> dict[str, object]:
        """The reason as stored in `predictions.reasons` and returned by the HTTP API."""
        return {**asdict(self), "contribution": round(self.contribution, 4)}

    @property
    def text(self) -> str:
        return f"{self.feature} = {self.value} {self.direction} risk ({self.contribution:+.2f})"


def contributions(model: CancellationModel, features: pd.DataFrame) -> np.ndarray:
    """Per-booking contributions in log-odds: one column per feature, the last is the bias.

    LightGBM's TreeSHAP costs about 2 ms of CPU per booking, and a fifth of the open bookings
    repeat another one feature for feature (rooms of one group booking): each distinct row is
    explained once, and each leaf's share once per way the rows pass its path
    (core/tree_contributions.py).
    """
    if features.empty:
        return np.empty((0, features.shape[1] + 1))
    matrix = np.ascontiguousarray(feature_matrix(features))
    row_type = np.dtype((np.void, matrix.dtype.itemsize * matrix.shape[1]))
    _, first, inverse = np.unique(
        matrix.view(row_type).ravel(), return_index=True, return_inverse=True
    )
    distinct = tree_contributions.contributions(
        model.classifier.booster_, matrix[first], n_jobs=N_JOBS
    )
    return distinct[inverse.ravel()]


def _display(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "missing"
    if isinstance(value, float | np.floating):
        return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"
    if isinstance(value, pd.Timestamp):
        return f"{value:%Y-%m-%d}"
    return str(value)


def _describe(feature: str, booking: dict, feature_value: object) -> tuple[str, str]:
    """(feature, value) in an analyst's words for one booking."""
    group = RATE_GROUP_OF.get(feature)
    if group is not None:
        levels = " × ".join(_display(booking[column]) for column in group)
        return f"cancel rate of {' × '.join(group)} ({levels})", _display(feature_value)
    if feature in DAY_FEATURES:
        column = DAY_FEATURES[feature]
        return column, _display(booking[column])
    if feature in booking:
        return feature, _display(booking[feature])
    return feature, _display(feature_value)


def top_reasons(
    model: CancellationModel,
    bookings: pd.DataFrame,
    features: pd.DataFrame | None = None,
    k: int = REASONS_PER_BOOKING,
) -> list[list[Reason]]:
    """The k largest contributions per booking, largest first, in the bookings' order.

    `features` are `model.builder.transform(bookings)` when the caller already has them.
    """
    if features is None:
        features = model.builder.transform(bookings)
    if len(features) == 0:
        return []
    contribution = contributions(model, features)[:, :-1]
    order = np.argsort(-np.abs(contribution), axis=1, kind="stable")[:, :k]
    names = features.columns.to_numpy()
    # plain Python rows: per-row pandas indexing would cost seconds on a day's bookings
    values = features.astype(object).to_numpy()
    reasons = []
    for row, (columns, booking) in enumerate(zip(order, bookings.to_dict("records"), strict=True)):
        explained = []
        for column in columns:
            value = float(contribution[row, column])
            feature, shown = _describe(names[column], booking, values[row, column])
            explained.append(Reason(feature, shown, "raises" if value > 0 else "lowers", value))
        reasons.append(explained)
    return reasons


def reason_columns(reasons: list[list[Reason]], k: int = REASONS_PER_BOOKING) -> pd.DataFrame:
    """reason_1..reason_k as text; `reasons` as JSON: feature, value, direction, contribution."""
    columns: dict[str, list[str | None]] = {f"reason_{i + 1}": [] for i in range(k)}
    columns["reasons"] = []
    for explained in reasons:
        for i in range(k):
            columns[f"reason_{i + 1}"].append(explained[i].text if i < len(explained) else None)
        columns["reasons"].append(json.dumps([r.record() for r in explained]))
    return pd.DataFrame(columns)
