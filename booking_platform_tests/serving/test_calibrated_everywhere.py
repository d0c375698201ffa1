"""One calibrated champion, the same probabilities from every path that scores: batch scoring,
the registry's MLflow pyfunc, `booking-platform predict` and the HTTP service (compiled trees)."""

from dataclasses import replace
from datetime import date
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest

from booking_platform.cli import main
from booking_platform.config import MODEL_NAME, Settings
from booking_platform.core import registry
from booking_platform.core.calibration import ISOTONIC, fit_calibrator
from booking_platform.core.cleaning import clean_bookings
from booking_platform.core.features import build_feature_set
from booking_platform.core.scoring import score_bookings
from booking_platform.core.source import FEATURE_SOURCE_COLUMNS, read_bookings
from booking_platform.core.training import train_and_validate
from booking_platform_tests.serving.conftest import as_request, start_server, stop_server
from booking_platform_tests.synthetic import make_bookings, write_csv

AS_OF = date(2017, 5, 1)
FAST = {"n_estimators": 60}


def test_a_calibrated_champion_scores_the_same_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_csv(make_bookings(6000), tmp_path / "bookings.csv")
    settings = Settings(home=tmp_path / "home", source=str(source), as_of=AS_OF)
    cleaned = clean_bookings(read_bookings(source).frame).cleaned
    feature_set = build_feature_set(cleaned, AS_OF)
    history, features = feature_set.part("history")
    validated = train_and_validate(history, feature_set.builder, AS_OF, FAST)
    # isotonic on the holdout, whatever the choice was: a non-linear map every path must apply
    labels = validated.holdout["is_canceled"].to_numpy()
    raw_holdout = validated.model.classifier.predict_proba(
        validated.model.builder.transform(validated.holdout)
    )[:, 1]
    model = replace(validated.model, calibrator=fit_calibrator(ISOTONIC, labels, raw_holdout))
    validated = replace(validated, model=model)
    experiment = registry.use_store(settings.mlflow_tracking_uri, settings.mlflow_artifact_root)
    _, uri = registry.log_candidate(experiment, validated, features, FAST, tags={}, plots={})
    assert registry.promote(MODEL_NAME, uri, AS_OF, tags={}).version == "1"

    sample = cleaned[cleaned["arrival_date"] >= pd.Timestamp(AS_OF)].head(200)
    batch = score_bookings(model, sample, "1")["cancel_probability"].to_numpy()
    raw = model.classifier.predict_proba(model.builder.transform(sample))[:, 1]
    assert np.abs(batch - raw).max() > 0.01  # the calibrator moves these probabilities

    source_schema = sample[["booking_id", *FEATURE_SOURCE_COLUMNS]]
    pyfunc = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@champion")
    as_signed = source_schema.drop(columns="booking_id")  # numbers as the signature's doubles
    as_signed = as_signed.astype({c: "float64" for c in as_signed.select_dtypes("number")})
    from_pyfunc = pyfunc.predict(as_signed)
    np.testing.assert_allclose(from_pyfunc["cancel_probability"], batch, rtol=0, atol=1e-12)

    for key, value in {
        "BOOKING_PLATFORM_HOME": str(settings.home),
        "BOOKINGS_SOURCE": settings.source,
        "BOOKINGS_AS_OF": str(AS_OF),
    }.items():
        monkeypatch.setenv(key, value)
    to_score = write_csv(source_schema, tmp_path / "to_score.csv")
    output = tmp_path / "scores.csv"
    assert main(["predict", "--input", str(to_score), "--output", str(output)]) == 0
    from_cli = pd.read_csv(output)["cancel_probability"].to_numpy()
    np.testing.assert_allclose(from_cli, batch, rtol=0, atol=1e-12)

    server = start_server(settings)
    try:
        body = [as_request(row) for _, row in sample.iterrows()]
        answers = []
        for start in range(0, len(body), 50):
            response = httpx.post(
                f"{server.url}/predict", json=body[start : start + 50], timeout=60
            )
            assert response.status_code == 200, response.text
            answers += response.json()
    finally:
        stop_server(server)
    from_http = np.array([a["cancel_probability"] for a in answers])
    np.testing.assert_allclose(from_http, batch, rtol=0, atol=1e-12)
