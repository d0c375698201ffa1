from datetime import date

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from booking_platform.core import gate
from booking_platform.core.cleaning import clean_bookings
from booking_platform.core.features import FeatureSet, build_feature_set
from booking_platform.core.metrics import calibration_error, classification_metrics
from booking_platform.core.plots import CANDIDATE_PLOT_TITLES, candidate_plots, monthly_roc_auc
from booking_platform.core.source import read_bookings
from booking_platform.core.training import (
    N_JOBS,
    ValidatedModel,
    fit_classifier,
    fit_classifiers,
    holdout_start,
    train_and_validate,
    training_questions,
)
from booking_platform_tests.synthetic import make_bookings, write_csv

WEAK = {"n_estimators": 3, "num_leaves": 3}
AS_OF = date(2017, 5, 1)


@pytest.fixture(scope="module")
def cleaned(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    path = write_csv(make_bookings(12000), tmp_path_factory.mktemp("src") / "b.csv")
    return clean_bookings(read_bookings(path).frame).cleaned


@pytest.fixture(scope="module")
def feature_set(cleaned: pd.DataFrame) -> FeatureSet:
    return build_feature_set(cleaned, AS_OF)


@pytest.fixture(scope="module")
def strong(feature_set: FeatureSet) -> ValidatedModel:
    return _train(feature_set)


@pytest.fixture(scope="module")
def weak(feature_set: FeatureSet) -> ValidatedModel:
    # uncalibrated: its calibration error is what the floors catch
    return _train(feature_set, WEAK, calibrate=False)


def _train(
    feature_set: FeatureSet, params: dict | None = None, calibrate: bool = True
) -> ValidatedModel:
    history, _ = feature_set.part("history")
    return train_and_validate(
        history, feature_set.builder, feature_set.as_of, params, calibrate=calibrate
    )


def test_calibration_error_of_known_cases() -> None:
    y = np.array([0, 0, 1, 1])
    assert calibration_error(y, np.array([0.0, 0.0, 1.0, 1.0])) == 0.0
    assert calibration_error(y, np.array([0.5, 0.5, 0.5, 0.5])) == pytest.approx(0.0)
    assert calibration_error(y, np.array([0.95, 0.95, 0.95, 0.95])) == pytest.approx(0.45)
    metrics = classification_metrics(y, np.array([0.1, 0.6, 0.4, 0.9]))
    assert metrics["roc_auc"] == 0.75 and metrics["accuracy"] == 0.5


def test_validation_is_out_of_time_and_the_model_is_refit(
    feature_set: FeatureSet, strong: ValidatedModel
) -> None:
    assert (strong.holdout["arrival_date"] >= holdout_start(AS_OF)).all()
    assert (strong.holdout["arrival_date"] < pd.Timestamp(AS_OF)).all()
    assert strong.metrics["rows"] == len(strong.holdout) > 500
    assert strong.metrics["roc_auc"] > 0.85
    assert strong.model.train_end == str(AS_OF)
    # the registered model is refit on all history, holdout months included, so it scores the
    # holdout differently from the validation fit that never saw it
    refit_proba = strong.model.predict_proba(strong.holdout)
    assert not np.allclose(refit_proba, strong.holdout_proba)
    history, _ = feature_set.part("history")
    assert len(strong.model.predict_proba(history.head(7))) == 7


def test_training_is_reproducible(feature_set: FeatureSet, strong: ValidatedModel) -> None:
    again = _train(feature_set)
    assert again.metrics == strong.metrics
    np.testing.assert_array_equal(again.holdout_proba, strong.holdout_proba)


def test_fits_side_by_side_equal_fits_one_after_the_other(feature_set: FeatureSet) -> None:
    history, _ = feature_set.part("history")
    features = feature_set.builder.transform(history)
    labels = history["is_canceled"].to_numpy()
    early = (history["arrival_date"] < holdout_start(AS_OF)).to_numpy()
    subsets = {"all": np.ones(len(labels), dtype=bool), "early": early}
    side_by_side = fit_classifiers(features, labels, subsets, {"n_estimators": 40})
    for name, rows in subsets.items():
        alone = fit_classifier(features[rows], labels[rows], {"n_estimators": 40})  # 2 threads
        assert alone.get_params()["n_jobs"] == N_JOBS == side_by_side[name].get_params()["n_jobs"]
        np.testing.assert_array_equal(
            side_by_side[name].predict_proba(features), alone.predict_proba(features), err_msg=name
        )
    assert not np.array_equal(
        side_by_side["all"].predict_proba(features), side_by_side["early"].predict_proba(features)
    )


def test_gate_floors_stop_a_weak_first_candidate(
    strong: ValidatedModel, weak: ValidatedModel
) -> None:
    decision = gate.judge(weak, champion=None)
    assert not decision.passed
    assert any(c.startswith("FAIL holdout calibration") for c in decision.comparisons)
    assert gate.judge(strong, champion=None).passed


def test_gate_compares_with_the_champion_on_rows_it_never_saw(
    cleaned: pd.DataFrame, strong: ValidatedModel, weak: ValidatedModel
) -> None:
    champion = _train(build_feature_set(cleaned, date(2016, 11, 1))).model
    for_strong = gate.judge(strong, champion, "1")
    assert for_strong.passed, for_strong.comparisons
    assert for_strong.champion_roc_auc is not None
    for_weak = gate.judge(weak, champion, "1")
    assert not for_weak.passed
    assert any("vs champion v1" in c and c.startswith("FAIL") for c in for_weak.comparisons)


def test_gate_skips_the_comparison_when_few_holdout_rows_are_new_to_the_champion(
    cleaned: pd.DataFrame, strong: ValidatedModel
) -> None:
    champion = _train(build_feature_set(cleaned, date(2017, 4, 1))).model
    decision = gate.judge(strong, champion, "3")
    assert decision.passed and decision.champion_roc_auc is None
    assert any(c.startswith("SKIP champion v3 was trained") for c in decision.comparisons)


def test_gate_keeps_a_champion_trained_on_the_same_or_newer_data(
    cleaned: pd.DataFrame, strong: ValidatedModel, weak: ValidatedModel
) -> None:
    # a rerun of the same as-of date: nothing the champion did not see, so nothing to promote
    rerun = gate.judge(strong, strong.model, "3")
    assert not rerun.passed and rerun.kept
    assert rerun.comparisons[-1].startswith(
        "KEEP champion v3: trained as of 2017-05-01, the candidate as of 2017-05-01"
    )
    # a candidate trained on older data than the champion's never replaces it
    older = gate.judge(_train(build_feature_set(cleaned, date(2016, 11, 1))), strong.model, "3")
    assert not older.passed and older.kept
    # failing a floor stays a refusal, whatever the dates
    refused = gate.judge(weak, strong.model, "3")
    assert not refused.passed and not refused.kept


def test_candidate_plots_and_monthly_roc_auc_cover_the_holdout(strong: ValidatedModel) -> None:
    table = monthly_roc_auc(strong.holdout, strong.holdout_proba)
    assert table["arrival_month"].tolist() == ["2017-03", "2017-04"]
    assert table["bookings"].sum() == len(strong.holdout)
    march = (strong.holdout["arrival_date"].dt.month == 3).to_numpy()
    expected = roc_auc_score(strong.holdout["is_canceled"][march], strong.holdout_proba[march])
    assert table.loc[0, "roc_auc"] == pytest.approx(expected)
    plots = candidate_plots(strong)
    assert set(plots) == set(CANDIDATE_PLOT_TITLES)
    assert all(png.startswith(b"\x89PNG") and len(png) < 120_000 for png in plots.values())


def test_each_booking_is_asked_once_at_booking_or_on_a_first_while_open(
    feature_set: FeatureSet,
) -> None:
    history, _ = feature_set.part("history")
    questions = training_questions(history)
    assert questions["booking_id"].tolist() == history["booking_id"].tolist()
    asked = questions["scored_on"]
    at_booking = asked.eq(questions["booking_date"])
    later = questions[~at_booking]
    assert 0.4 < at_booking.mean() < 0.8 and len(later) > 1000
    assert (later["scored_on"].dt.day == 1).all()
    assert (later["scored_on"] > later["booking_date"]).all()
    assert (later["scored_on"] <= later["arrival_date"]).all()
    cancelled = later["reservation_status"].eq("Canceled")
    assert (later["scored_on"][cancelled] <= later["reservation_status_date"][cancelled]).all()
    # open on the 1st they are asked on: the same population a scoring run that day sees
    assert cancelled.mean() < history["is_canceled"].mean()
    pd.testing.assert_frame_equal(training_questions(history), questions)  # seeded
