"""The retraining policy, once: when the platform trains a new candidate.

Three kinds of evidence, checked in this order:
- staleness: there is no champion, or it was trained on data older than the maximum age,
  measured in as-of days (the platform's clock);
- realised performance: the worst realised ROC AUC of the last few arrival months with enough
  arrivals to be measured fell under a floor;
- drift: the open bookings drifted from those open on the same date a year earlier beyond the
  thresholds of core/drift.py (a verdict against any other reference is not acted on).

The sensors (defs/sensors.py) and the backtest (core/backtest.py) both call `decide`, so the
backtest simulates the policy the platform runs. A sensor passes the evidence it watches; the
backtest passes all three.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import pandas as pd

from booking_platform.config import DEFAULT_CHAMPION_MAX_AGE_DAYS
from booking_platform.core import drift

STALE, PERFORMANCE, DRIFT = "stale", "performance", "drift"  # the runs' retrain_reason tag
REALISED_AUC_FLOOR = 0.80
MIN_MONTH_BOOKINGS = 100  # fewer arrivals make a month's AUC too noisy to act on
RECENT_MONTHS = 3


@dataclass(frozen=True)
class RetrainingPolicy:
    """The thresholds (defaults: the platform's own; the backtest varies them)."""

    max_age_days: int = DEFAULT_CHAMPION_MAX_AGE_DAYS
    auc_floor: float = REALISED_AUC_FLOOR
    min_month_bookings: int = MIN_MONTH_BOOKINGS
    recent_months: int = RECENT_MONTHS
    drift_share: float = drift.DRIFT_SHARE_THRESHOLD
    drift_key_columns: dict[str, float] = field(default_factory=lambda: drift.KEY_DRIFT_COLUMNS)

    def describe(self) -> dict[str, object]:
        return {
            "max_age_days": self.max_age_days,
            "auc_floor": self.auc_floor,
            "min_month_bookings": self.min_month_bookings,
            "recent_months": self.recent_months,
            "drift_share": self.drift_share,
            "drift_key_columns": self.drift_key_columns,
        }


@dataclass(frozen=True)
class Champion:
    """The champion in place, or its absence (`trained_as_of` None)."""

    trained_as_of: date | None
    version: str | None = None  # the backtest's champions are not registered

    def name(self) -> str:
        return f"v{self.version}" if self.version else f"trained as of {self.trained_as_of}"


@dataclass(frozen=True)
class RecentPerformance:
    """The worst realised ROC AUC over the recent measurable arrival months."""

    worst_roc_auc: float
    months: list[str]


@dataclass(frozen=True)
class DriftEvidence:
    seasonal_reference: bool  # compared with the bookings open on the same date a year earlier
    verdict: str | None  # why the drift calls for retraining (core/drift.drift_verdict), or None
    share: float


@dataclass(frozen=True)
class Evidence:
    """What is known as of a date; a part left None is not looked at."""

    as_of: date
    champion: Champion | None = None
    performance: RecentPerformance | None = None
    drift: DriftEvidence | None = None


@dataclass(frozen=True)
class Decision:
    trigger: str | None  # STALE, PERFORMANCE or DRIFT; None: no retraining
    reason: str  # why retrain, or why not, in words

    @property
    def retrain(self) -> bool:
        return self.trigger is not None


def recent_performance(table: pd.DataFrame, policy: RetrainingPolicy) -> RecentPerformance | None:
    """The worst ROC AUC of the last `recent_months` arrival months with at least
    `min_month_bookings` arrivals and a measurable AUC; None when there is none.

    `table`: one row per arrival month in time order with `arrival_month`, `bookings`, `roc_auc`
    (core/performance.realised_performance's table; the backtest builds the same).
    """
    measurable = table[(table["bookings"] >= policy.min_month_bookings) & table["roc_auc"].notna()]
    recent = measurable.tail(policy.recent_months)
    if recent.empty:
        return None
    return RecentPerformance(float(recent["roc_auc"].min()), recent["arrival_month"].tolist())


def _staleness(policy: RetrainingPolicy, as_of: date, champion: Champion) -> Decision:
    if champion.trained_as_of is None:
        return Decision(STALE, "there is no champion")
    age = (as_of - champion.trained_as_of).days
    text = f"champion {champion.name()} is {age} days old (max {policy.max_age_days})"
    return Decision(STALE if age > policy.max_age_days else None, text)


def _performance(policy: RetrainingPolicy, performance: RecentPerformance) -> Decision:
    worst, floor = performance.worst_roc_auc, policy.auc_floor
    if worst >= floor:
        return Decision(None, f"worst recent realised ROC AUC {worst:.3f} >= {floor}")
    return Decision(
        PERFORMANCE, f"realised ROC AUC {worst:.3f} < {floor} in months {performance.months}"
    )


def _drift(as_of: date, evidence: DriftEvidence) -> Decision:
    if not evidence.seasonal_reference:
        return Decision(
            None, f"drift as of {as_of} has no same-date-last-year reference: not acting on it"
        )
    if evidence.verdict is None:
        return Decision(None, f"drift as of {as_of} within thresholds (share {evidence.share:.2f})")
    return Decision(DRIFT, f"drift as of {as_of}: {evidence.verdict}")


def decide(evidence: Evidence, policy: RetrainingPolicy) -> Decision:
    """The first kind of evidence that calls for retraining, or why none does."""
    decisions = []
    if evidence.champion is not None:
        decisions.append(_staleness(policy, evidence.as_of, evidence.champion))
    if evidence.performance is not None:
        decisions.append(_performance(policy, evidence.performance))
    if evidence.drift is not None:
        decisions.append(_drift(evidence.as_of, evidence.drift))
    for decision in decisions:
        if decision.retrain:
            return decision
    return Decision(None, "; ".join(d.reason for d in decisions) or "no evidence")
