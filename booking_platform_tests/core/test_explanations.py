import json
from datetime import date

import numpy as np
import pandas as pd
import pytest

from booking_platform.core.cleaning import clean_bookings
from booking_platform.core.explanations import contributions, reason_columns, top_reasons
from booking_platform.core.features import build_feature_set
from booking_platform.core.scoring import score_bookings
from booking_platform.core.source import read_bookings
from booking_platform.core.training import CancellationModel, train_and_validate
from booking_platform_tests.synthetic import make_bookings, write_csv

AS_OF = date(2017, 5, 1)


@pytest.fixture(scope="module")
def model_and_open(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[CancellationModel, pd.DataFrame]:
    path = write_csv(make_bookings(6000), tmp_path_factory.mktemp("src") / "b.csv")
    feature_set = build_feature_set(clean_bookings(read_bookings(path).frame).cleaned, AS_OF)
    history, _ = feature_set.part("history")
    validated = train_and_validate(history, feature_set.builder, AS_OF)
    open_rows, _ = feature_set.part("open")
    return validated.model, open_rows.reset_index(drop=True)


def test_contributions_add_up_to_the_raw_score(
    model_and_open: tuple[CancellationModel, pd.DataFrame],
) -> None:
    model, open_rows = model_and_open
    sample = open_rows.sample(200, random_state=3)
    features = model.builder.transform(sample)
    contribution = contributions(model, features)
    assert contribution.shape == (200, features.shape[1] + 1)  # the last column is the bias
    raw = model.classifier.predict(features, raw_score=True)
    assert np.allclose(contribution.sum(axis=1), raw)
    # the reasons explain the booster's log-odds; the reported probability is its calibration
    probability = 1 / (1 + np.exp(-contribution.sum(axis=1)))
    assert np.allclose(model.calibrated(probability), model.predict_proba(sample))


def test_repeated_bookings_are_explained_once_with_the_same_numbers(
    model_and_open: tuple[CancellationModel, pd.DataFrame],
) -> None:
    model, open_rows = model_and_open
    sample = open_rows.head(100)
    # the rooms of a group booking: the same row three times, in between other bookings
    repeated = pd.concat([sample, sample.iloc[[5, 5, 7]]], ignore_index=True)
    features = model.builder.transform(repeated)
    direct = model.classifier.predict(features, pred_contrib=True)
    deduplicated = contributions(model, features)
    assert deduplicated.shape == direct.shape
    assert np.array_equal(deduplicated, direct)
    assert contributions(model, features.head(0)).shape == (0, features.shape[1] + 1)


def test_reasons_are_the_largest_contributions_named_for_an_analyst(
    model_and_open: tuple[CancellationModel, pd.DataFrame],
) -> None:
    model, open_rows = model_and_open
    sample = open_rows.head(50)
    features = model.builder.transform(sample)
    contribution = contributions(model, features)[:, :-1]
    reasons = top_reasons(model, sample, features, k=3)
    assert len(reasons) == 50 and all(len(r) == 3 for r in reasons)
    for row, explained in enumerate(reasons):
        sizes = [abs(r.contribution) for r in explained]
        assert sizes == sorted(sizes, reverse=True)
        assert sizes[0] == pytest.approx(np.abs(contribution[row]).max())
        assert sizes[-1] >= np.sort(np.abs(contribution[row]))[-3] - 1e-12
        for reason in explained:
            assert reason.direction == ("raises" if reason.contribution > 0 else "lowers")
    booking = sample.iloc[0]
    named = {r.feature: r.value for explained in reasons for r in explained}
    # the synthetic signal is deposit type and lead time: they show up, with the booking's value
    assert "deposit_type" in named and "lead_time" in named
    first = {r.feature: r.value for r in reasons[0]}
    if "lead_time" in first:
        assert first["lead_time"] == str(int(booking["lead_time"]))
    rate_reasons = [r for explained in reasons for r in explained if r.feature.startswith("cancel")]
    for reason in rate_reasons:
        # e.g. "cancel rate of agent × deposit_type (9 × Non Refund)" = "0.83"
        assert " (" in reason.feature and 0 <= float(reason.value) <= 1


def test_scores_carry_reason_text_and_json(
    model_and_open: tuple[CancellationModel, pd.DataFrame],
) -> None:
    model, open_rows = model_and_open
    sample = open_rows.head(20)
    plain = score_bookings(model, sample, "7")
    scored = score_bookings(model, sample, "7", reasons=3)
    assert plain.columns.tolist() == scored.columns.tolist()[: len(plain.columns)]
    pd.testing.assert_frame_equal(plain, scored[plain.columns])
    first = json.loads(scored.loc[0, "reasons"])
    assert [set(r) for r in first] == [{"feature", "value", "direction", "contribution"}] * 3
    assert scored.loc[0, "reason_1"].startswith(f"{first[0]['feature']} = {first[0]['value']} ")
    assert reason_columns([], k=3).empty
