"""Calibrators: the same numbers as scikit-learn's, and chosen only when they help."""

from datetime import date

import numpy as np
import pandas as pd
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from booking_platform.core.calibration import ISOTONIC, NONE, PLATT, fit_calibrator
from booking_platform.core.cleaning import clean_bookings
from booking_platform.core.features import build_feature_set
from booking_platform.core.metrics import calibration_error
from booking_platform.core.source import read_bookings
from booking_platform.core.training import CancellationModel, train_and_validate
from booking_platform_tests.synthetic import make_bookings, write_csv


@pytest.fixture(scope="module")
def overconfident() -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from p, reported as p pushed towards 0 and 1 (a typical booster's error)."""
    rng = np.random.default_rng(0)
    truth = rng.uniform(0.02, 0.98, 20_000)
    labels = (rng.random(truth.size) < truth).astype(int)
    logit = np.log(truth / (1 - truth))
    return labels, 1 / (1 + np.exp(-2.0 * logit - 0.5))


def test_isotonic_and_platt_are_sklearns_maps(overconfident) -> None:
    labels, raw = overconfident
    probe = np.linspace(0, 1, 101)
    isotonic = fit_calibrator(ISOTONIC, labels, raw)
    reference = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(raw, labels)
    np.testing.assert_allclose(isotonic.apply(probe), reference.predict(probe), atol=1e-12)
    platt = fit_calibrator(PLATT, labels, raw)
    clipped = np.clip(probe, 1e-7, 1 - 1e-7)
    logit = np.log(clipped / (1 - clipped)).reshape(-1, 1)
    sigmoid = LogisticRegression(C=1e6).fit(np.log(raw / (1 - raw)).reshape(-1, 1), labels)
    np.testing.assert_allclose(platt.apply(probe), sigmoid.predict_proba(logit)[:, 1], atol=1e-9)
    # the overconfident booster halved its logits' slope back, about
    assert platt.slope == pytest.approx(0.5, abs=0.05)
    for calibrator in (isotonic, platt):
        assert calibration_error(labels, calibrator.apply(raw)) < 0.5 * calibration_error(
            labels, raw
        )
    np.testing.assert_array_equal(fit_calibrator(NONE, labels, raw).apply(raw), raw)
    with pytest.raises(ValueError, match="unknown calibration method 'beta'"):
        fit_calibrator("beta", labels, raw)


def test_the_candidate_is_calibrated_out_of_time_and_scores_through_it(tmp_path) -> None:
    path = write_csv(make_bookings(12000), tmp_path / "b.csv")
    cleaned = clean_bookings(read_bookings(path).frame).cleaned
    as_of = date(2017, 5, 1)
    feature_set = build_feature_set(cleaned, as_of)
    history, _ = feature_set.part("history")
    validated = train_and_validate(history, feature_set.builder, as_of, {"n_estimators": 80})
    choice = validated.calibration
    assert set(choice.holdout_error_by_method) == {NONE, PLATT, ISOTONIC}
    # the chosen method has the lowest holdout error, and the reported metrics are its
    assert (
        choice.holdout_error_by_method[choice.method]
        == min(choice.holdout_error_by_method.values())
        or choice.method == NONE
    )
    assert validated.metrics["calibration_error"] == pytest.approx(
        choice.holdout_error_by_method[choice.method]
    )
    model = validated.model
    assert model.calibrator.method == choice.method
    rows = cleaned[cleaned["arrival_date"] >= pd.Timestamp(as_of)]
    raw = model.classifier.predict_proba(model.builder.transform(rows))[:, 1]
    np.testing.assert_array_equal(model.predict_proba(rows), model.calibrator.apply(raw))

    uncalibrated = train_and_validate(
        history, feature_set.builder, as_of, {"n_estimators": 80}, calibrate=False
    )
    assert uncalibrated.model.calibrator.method == NONE
    assert uncalibrated.metrics["calibration_error"] == pytest.approx(
        validated.metrics["uncalibrated_calibration_error"]
    )


def test_a_model_pickled_before_calibration_scores_uncalibrated() -> None:
    model = CancellationModel.__new__(CancellationModel)
    model.__dict__.update({"builder": None, "classifier": None, "threshold": 0.5})  # old pickle
    raw = np.array([0.1, 0.7])
    np.testing.assert_array_equal(model.calibrated(raw), raw)
