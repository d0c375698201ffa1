"""CBPE against its definition, on synthetic scores whose truth is known."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from booking_platform.core.metrics import calibration_error
from booking_platform.core.performance_estimation import (
    estimate_by_arrival_month,
    estimate_performance,
    estimated_roc_auc,
    simulated_labels,
)


def test_the_estimate_is_the_area_under_the_expected_roc_curve() -> None:
    # two bookings, 0.9 and 0.2: expected TP/FP at each threshold give the points
    # (0, 0), (0.1/0.9, 0.9/1.1), (1, 1): area 1/22 + (8/9)(20/11)/2
    assert estimated_roc_auc(np.array([0.9, 0.2])) == pytest.approx(1 / 22 + 80 / 99)
    # equivalently, pairs ranked right weighted by p_i (1 - p_j), ties and self-pairs half
    proba = np.array([0.8, 0.6, 0.6, 0.3, 0.1])
    pairs = sum(
        p_i * (1 - p_j) * (1.0 if p_i > p_j else 0.5 if p_i == p_j else 0.0)
        for p_i in proba
        for p_j in proba
    )
    assert estimated_roc_auc(proba) == pytest.approx(pairs / (proba.sum() * (1 - proba).sum()))


def test_on_calibrated_scores_the_estimate_matches_the_realised_auc() -> None:
    rng = np.random.default_rng(0)
    proba = rng.beta(1.2, 3.0, 4000)  # a calibrated model's scores: labels drawn from them
    realised = [roc_auc_score(rng.random(4000) < proba, proba) for _ in range(40)]
    estimate = estimate_performance(proba, draws=200)
    assert estimate["estimated_roc_auc"] == pytest.approx(np.mean(realised), abs=0.003)
    inside = np.mean(
        [
            estimate["estimated_roc_auc_low"] <= r <= estimate["estimated_roc_auc_high"]
            for r in realised
        ]
    )
    assert inside >= 0.85
    labels = rng.random(4000) < proba
    assert estimate["estimated_brier"] == pytest.approx(np.mean((labels - proba) ** 2), abs=0.01)
    assert estimate["estimated_calibration_error"] == pytest.approx(
        calibration_error(labels.astype(int), proba), abs=0.01
    )


def test_on_miscalibrated_scores_the_estimate_is_wrong_as_the_method_warns() -> None:
    rng = np.random.default_rng(1)
    truth = rng.beta(1.2, 3.0, 4000)
    labels = rng.random(4000) < truth
    overconfident = truth**3 / (truth**3 + (1 - truth) ** 3)  # same ranking, not calibrated
    realised = roc_auc_score(labels, overconfident)
    assert abs(estimated_roc_auc(overconfident) - realised) > 0.05


def test_estimates_per_arrival_month() -> None:
    rng = np.random.default_rng(2)
    scored = pd.DataFrame(
        {
            "arrival_date": pd.to_datetime(["2017-05-03"] * 300 + ["2017-06-10"] * 200),
            "cancel_probability": rng.uniform(0, 1, 500),
        }
    )
    table = estimate_by_arrival_month(scored, draws=50)
    assert list(table["arrival_month"]) == ["2017-05", "2017-06"]
    assert list(table["bookings"]) == [300, 200]
    may = scored["cancel_probability"][:300]
    assert table["expected_cancellations"].iloc[0] == pytest.approx(may.sum())
    assert table["estimated_roc_auc"].iloc[0] == pytest.approx(estimated_roc_auc(may.to_numpy()))


def test_bookings_of_one_unit_share_their_draw() -> None:
    proba = np.full(6, 0.4)
    labels = simulated_labels(proba, draws=500, units=np.array([7, 7, 7, 3, 3, 9]))
    assert (labels[:, 0] == labels[:, 1]).all() and (labels[:, 1] == labels[:, 2]).all()
    assert (labels[:, 3] == labels[:, 4]).all()
    assert (labels[:, 0] != labels[:, 3]).any() and (labels[:, 3] != labels[:, 5]).any()
    assert labels.mean() == pytest.approx(0.4, abs=0.05)
    # a probability row per draw (a shock shared by the draw): certain rows give certain labels
    per_draw = np.array([[0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    for units in (None, np.array([1, 1, 2])):
        drawn = simulated_labels(per_draw, draws=2, units=units)
        np.testing.assert_array_equal(drawn, per_draw.astype(np.int8))


def test_a_group_that_cancels_together_is_one_draw_for_the_calibration_error() -> None:
    # 1,000 rooms at p = 0.3 as one group: every draw cancels all or none, so a calibrated
    # model's calibration error is |0.3 - 1| with probability 0.3 and |0.3 - 0| otherwise,
    # 2 * 0.3 * 0.7 = 0.42 in expectation; as independent bookings it is the binomial's
    # mean absolute deviation, about 0.8 * sqrt(0.21 / 1000) = 0.012
    proba = np.full(1000, 0.3)
    grouped = estimate_performance(proba, draws=2000, units=np.zeros(1000, dtype=int))
    independent = estimate_performance(proba, draws=2000)
    assert grouped["estimated_calibration_error"] == pytest.approx(0.42, abs=0.02)
    assert independent["estimated_calibration_error"] == pytest.approx(0.0116, abs=0.002)


def test_each_month_draws_its_own_bookings_units() -> None:
    rng = np.random.default_rng(3)
    proba = np.repeat(rng.uniform(0.05, 0.95, 20), 25)  # 20 groups of 25 identical rows
    scored = pd.DataFrame(
        {
            "arrival_date": pd.to_datetime(["2017-05-03"] * 500 + ["2017-06-10"] * 500),
            "cancel_probability": np.concatenate([proba, proba]),
        }
    )
    units = np.concatenate([np.repeat(np.arange(20), 25), np.arange(20, 520)])
    table = estimate_by_arrival_month(scored, units, draws=400).set_index("arrival_month")
    alone = estimate_performance(proba, draws=400, units=units[:500])
    assert table.loc["2017-05", "estimated_calibration_error"] == pytest.approx(
        alone["estimated_calibration_error"]
    )
    # the same scores, June's 500 bookings on their own: a far narrower band
    width = table["estimated_roc_auc_high"] - table["estimated_roc_auc_low"]
    assert width["2017-05"] > 2 * width["2017-06"]
    assert table.loc["2017-05", "estimated_roc_auc"] == table.loc["2017-06", "estimated_roc_auc"]
