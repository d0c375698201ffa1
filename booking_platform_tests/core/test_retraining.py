"""The retraining policy the sensors run and the backtest simulates (core/retraining.py)."""

from datetime import date

import numpy as np
import pandas as pd

from booking_platform.core.backtest import MonthSnapshot, PolicyState, _sensor_reason
from booking_platform.core.retraining import (
    DRIFT,
    PERFORMANCE,
    STALE,
    Champion,
    DriftEvidence,
    Evidence,
    RecentPerformance,
    RetrainingPolicy,
    decide,
    recent_performance,
)
from booking_platform.core.training import CancellationModel

POLICY = RetrainingPolicy(max_age_days=60)
AS_OF = date(2017, 6, 1)


def _months(rows: list[tuple[str, int, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["arrival_month", "bookings", "roc_auc"])


def test_recent_performance_is_the_worst_of_the_last_three_measurable_months() -> None:
    table = _months(
        [
            ("2017-01", 900, 0.70),  # bad, but four measurable months ago
            ("2017-02", 900, 0.78),
            ("2017-03", 40, 0.50),  # too few arrivals to act on
            ("2017-04", 900, np.nan),  # no AUC (one class only)
            ("2017-05", 900, 0.85),
            ("2017-06", 900, 0.86),
        ]
    )
    recent = recent_performance(table, POLICY)
    assert recent == RecentPerformance(0.78, ["2017-02", "2017-05", "2017-06"])
    assert recent_performance(table.iloc[2:4], POLICY) is None


def test_staleness_comes_first_then_performance_then_drift() -> None:
    young = Champion(date(2017, 5, 1), "4")
    poor = RecentPerformance(0.75, ["2017-05"])
    drifted = DriftEvidence(True, "drift share 0.80 >= 0.75", 0.8)
    assert decide(Evidence(AS_OF, champion=Champion(None)), POLICY).reason == (
        "there is no champion"
    )
    old = decide(Evidence(AS_OF, Champion(date(2017, 3, 1), "3"), poor, drifted), POLICY)
    assert (old.trigger, old.reason) == (STALE, "champion v3 is 92 days old (max 60)")
    assert decide(Evidence(AS_OF, young, poor, drifted), POLICY).trigger == PERFORMANCE
    assert decide(Evidence(AS_OF, young, RecentPerformance(0.85, []), drifted), POLICY).trigger == (
        DRIFT
    )
    calm = decide(
        Evidence(AS_OF, young, RecentPerformance(0.85, []), DriftEvidence(True, None, 0.2)),
        POLICY,
    )
    assert not calm.retrain
    assert calm.reason == (
        "champion v4 is 31 days old (max 60); worst recent realised ROC AUC 0.850 >= 0.8; "
        "drift as of 2017-06-01 within thresholds (share 0.20)"
    )


def test_drift_against_a_non_seasonal_reference_is_not_acted_on() -> None:
    blind = DriftEvidence(False, "drift share 0.90 >= 0.75", 0.9)
    decision = decide(Evidence(AS_OF, drift=blind), POLICY)
    assert not decision.retrain and "no same-date-last-year reference" in decision.reason


def test_the_backtest_acts_on_the_worst_recent_month_as_the_sensor_does() -> None:
    """The backtest used to look at last month only, with no minimum of arrivals."""
    # only the champion's training date matters to the policy
    champion = CancellationModel(builder=None, classifier=None, train_end="2017-05-01")
    state = PolicyState("sensor", champion=champion)
    state.months = [
        {"month": "2017-03", "auc": 0.74, "bookings": 800},  # two months back: poor
        {"month": "2017-04", "auc": 0.86, "bookings": 800},
        {"month": "2017-05", "auc": 0.87, "bookings": 800},
    ]
    snapshot = MonthSnapshot(AS_OF, validated_candidate=lambda seed: None, drift=None)
    reason = _sensor_reason(state, snapshot, POLICY)
    assert reason == "performance: realised ROC AUC 0.740 < 0.8 in months " + str(
        ["2017-03", "2017-04", "2017-05"]
    )
    # a poor month of a handful of arrivals is noise: the sensor ignores it, so does the backtest
    state.months[0] = {"month": "2017-03", "auc": 0.74, "bookings": 30}
    state.months[-1] = {"month": "2017-05", "auc": 0.60, "bookings": 30}
    assert _sensor_reason(state, snapshot, POLICY) is None
