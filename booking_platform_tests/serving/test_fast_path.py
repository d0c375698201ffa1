"""The service's scoring path (JSON -> msgspec -> FeatureBuilder.encode -> compiled trees ->
calibrator) gives the batch path's probabilities (cleaned frame -> transform -> LightGBM on pandas
categoricals -> calibrator)."""

from datetime import date
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest

from booking_platform.core.cleaning import clean_bookings
from booking_platform.core.compiled_trees import compile_trees, compiled_trees
from booking_platform.core.features import build_feature_set
from booking_platform.core.scoring import score_bookings
from booking_platform.core.source import read_bookings
from booking_platform.core.training import train_and_validate
from booking_platform.serving.model_store import LoadedModel
from booking_platform.serving.schemas import cross_field_errors, parse_bookings, to_columns
from booking_platform_tests.serving.conftest import as_request
from booking_platform_tests.synthetic import make_bookings, write_csv

FAST = {"n_estimators": 80}


def _both_paths(
    cleaned: pd.DataFrame, as_of: date, rows: int, compiled_dir: Path
) -> tuple[np.ndarray, np.ndarray]:
    feature_set = build_feature_set(cleaned, as_of)
    history, _ = feature_set.part("history")
    model = train_and_validate(history, feature_set.builder, as_of, FAST).model
    sample = cleaned.sample(min(rows, len(cleaned)), random_state=5)
    batch = score_bookings(model, sample, "1")["cancel_probability"].to_numpy()
    body = orjson.dumps([as_request(row) for _, row in sample.iterrows()])
    columns = to_columns(parse_bookings(body, many=True))
    assert cross_field_errors(columns) == []
    trees = compile_trees(model.classifier.booster_, compiled_dir)
    loaded = LoadedModel("champion", "1", "run", model, trees, loaded_at=0.0)
    return batch, loaded.score(columns)


def test_online_and_batch_probabilities_are_equal(tmp_path: Path) -> None:
    source = write_csv(make_bookings(6000), tmp_path / "b.csv")
    cleaned = clean_bookings(read_bookings(source).frame).cleaned
    # unseen levels too: a country and an agent the model never saw score as missing
    cleaned.loc[cleaned.index[:50], "country"] = "ZZZ"
    cleaned.loc[cleaned.index[50:100], "agent"] = 4321.0
    batch, online = _both_paths(cleaned, date(2017, 5, 1), 6000, tmp_path / "compiled")
    np.testing.assert_allclose(online, batch, rtol=0, atol=1e-12)


@pytest.mark.real_data
def test_online_and_batch_probabilities_are_equal_on_real_bookings(
    real_source: Path, tmp_path: Path
) -> None:
    cleaned = clean_bookings(read_bookings(real_source).frame).cleaned
    batch, online = _both_paths(cleaned, date(2017, 5, 1), 20_000, tmp_path / "compiled")
    assert len(online) == 20_000
    np.testing.assert_allclose(online, batch, rtol=0, atol=1e-12)


def test_batch_scoring_uses_the_compiled_trees_once_they_exist_with_lightgbms_probabilities(
    tmp_path: Path,
) -> None:
    """Batch scoring and `predict` take the service's compiled trees when the service compiled
    the model, and LightGBM's own otherwise; both give what LightGBM gives on the features
    frame (the training path), to 1e-9."""
    cleaned = clean_bookings(
        read_bookings(write_csv(make_bookings(6000), tmp_path / "b.csv")).frame
    )
    feature_set = build_feature_set(cleaned.cleaned, date(2017, 5, 1))
    history, _ = feature_set.part("history")
    model = train_and_validate(history, feature_set.builder, date(2017, 5, 1), FAST).model
    booster, compiled_dir = model.classifier.booster_, tmp_path / "compiled"
    lightgbm = model.calibrated(
        model.classifier.predict_proba(model.builder.transform(cleaned.cleaned))[:, 1]
    )

    assert compiled_trees(booster, compiled_dir) is None  # never compiled: not compiled here
    plain = score_bookings(model, cleaned.cleaned, "1")["cancel_probability"].to_numpy()
    compile_trees(booster, compiled_dir)  # what the service does when it loads the champion
    trees = compiled_trees(booster, compiled_dir)
    assert trees is not None
    fast = score_bookings(model, cleaned.cleaned, "1", trees=trees)["cancel_probability"]

    np.testing.assert_allclose(plain, lightgbm, rtol=0, atol=1e-9)
    np.testing.assert_allclose(fast.to_numpy(), lightgbm, rtol=0, atol=1e-9)
    assert not np.array_equal(lightgbm, np.full_like(lightgbm, lightgbm[0]))  # scores vary
