"""The main job on the real Hotel Booking Demand data (BOOKINGS_SOURCE; required in CI)."""

from datetime import date
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from booking_platform.config import MODEL_NAME, Settings
from booking_platform.core import registry, warehouse
from booking_platform.core.cleaning import open_bookings
from booking_platform.core.explanations import contributions
from booking_platform_tests.conftest import run_main_job

AS_OF = date(2017, 5, 1)
MIN_OUT_OF_TIME_AUC = 0.90


def test_champion_beats_the_out_of_time_floor_on_real_data(
    real_source: Path, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    settings = Settings(home=tmp_path / "home", source=str(real_source), as_of=AS_OF)
    assert run_main_job(settings, instance).success

    with warehouse.connect(settings.warehouse_path, read_only=True) as connection:
        cleaned = warehouse.read_table(connection, "cleaned_bookings")
        (quarantined,) = connection.execute("SELECT count(*) FROM quarantined_bookings").fetchone()
        (scored,) = connection.execute("SELECT count(*) FROM predictions").fetchone()
    assert len(cleaned) + quarantined == 119_390
    assert 0 < quarantined < 1_000

    registry.use_store(settings.mlflow_tracking_uri, settings.mlflow_artifact_root)
    champion = registry.load_alias(MODEL_NAME)
    assert champion is not None and champion.model.train_end == str(AS_OF)
    later = cleaned[cleaned["arrival_date"] >= pd.Timestamp(AS_OF)]
    assert len(later) > 20_000
    auc = roc_auc_score(later["is_canceled"], champion.model.predict_proba(later))
    print(f"out-of-time ROC AUC on {len(later):,} arrivals from {AS_OF}: {auc:.4f}")
    assert auc >= MIN_OUT_OF_TIME_AUC
    assert 5_000 < scored < len(later)

    # the reasons' exact contributions for the open bookings, computed once per leaf and per
    # way to it (core/tree_contributions.py), are LightGBM's own
    features = champion.model.builder.transform(open_bookings(cleaned, AS_OF))
    assert len(features) == scored
    ours = contributions(champion.model, features)
    expected = champion.model.classifier.predict(features, pred_contrib=True)
    assert np.abs(ours - expected).max() < 1e-9
