"""The main job on a real Dagster instance, DuckDB file and MLflow sqlite store (synthetic data)."""

import gc
from dataclasses import replace
from datetime import date
from pathlib import Path

import dagster as dg
import mlflow
from mlflow import MlflowClient

from booking_platform.config import MODEL_NAME, Settings
from booking_platform.core import registry, warehouse
from booking_platform.core.features import FeatureSet
from booking_platform.core.tables import (
    CLEANED_BOOKINGS,
    PREDICTIONS,
    QUARANTINED_BOOKINGS,
    RAW_BOOKINGS,
)
from booking_platform.defs import metadata_keys as keys
from booking_platform_tests.conftest import (
    ALL_ASSETS,
    SYNTHETIC_ROWS,
    materialized_assets,
    run_main_job,
)
from booking_platform_tests.synthetic import make_bookings, write_csv

WEAK_PARAMS = '{"n_estimators": 3, "num_leaves": 3}'


def _gate(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    (evaluation,) = [
        e.asset_check_evaluation_data
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
        and e.asset_check_evaluation_data.check_name == "promotion_gate"
    ]
    return evaluation


def _feature_sets_alive() -> int:
    gc.collect()
    return sum(isinstance(o, FeatureSet) for o in gc.get_objects())


def _query(settings: Settings, sql: str) -> list[tuple]:
    with warehouse.connect(settings.warehouse_path, read_only=True) as connection:
        return connection.execute(sql).fetchall()


def _champion_version(settings: Settings) -> str | None:
    registry.use_store(settings.mlflow_tracking_uri, settings.mlflow_artifact_root)
    return registry.load_alias_version(MODEL_NAME)


def test_main_job_trains_gates_registers_and_scores(
    settings: Settings, instance: dg.DagsterInstance
) -> None:
    alive_before = _feature_sets_alive()
    result = run_main_job(settings, instance)
    assert result.success
    assert materialized_assets(result) == ALL_ASSETS
    assert _gate(result).passed
    # the run keeps no step's output in memory once the step is done: they live in the IO
    # manager (what ten times the data needs, runtime.execute_as_of)
    assert _feature_sets_alive() == alive_before
    checks = [
        e for e in result.all_events if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ]
    # the export's audit (raw and cleaned volume, schema, ranges, completeness), the promotion
    # gate and batch_predictions' four
    assert len(checks) == 10 and all(c.asset_check_evaluation_data.passed for c in checks)

    ((raw,),) = _query(settings, f"SELECT count(*) FROM {RAW_BOOKINGS.name}")
    ((cleaned,),) = _query(settings, f"SELECT count(*) FROM {CLEANED_BOOKINGS.name}")
    ((quarantined,),) = _query(settings, f"SELECT count(*) FROM {QUARANTINED_BOOKINGS.name}")
    assert raw == SYNTHETIC_ROWS == cleaned + quarantined

    rows = _query(
        settings,
        "SELECT count(*), min(cancel_probability) >= 0, max(cancel_probability) <= 1, "
        f"any_value(model_version), min(as_of), count(DISTINCT booking_id) FROM {PREDICTIONS.name}",
    )
    ((count, low_ok, high_ok, version, as_of, distinct),) = rows
    assert count > 100 and count == distinct and low_ok and high_ok
    assert (version, as_of) == ("1", date(2017, 5, 1))
    ((explained, with_json),) = _query(
        settings,
        "SELECT count(reason_3), count(json_extract(reasons, '$[2].contribution')) "
        f"FROM {PREDICTIONS.name}",
    )
    assert explained == with_json == count

    assert _champion_version(settings) == "1"
    model_version = MlflowClient().get_model_version(MODEL_NAME, "1")
    assert model_version.tags["dagster_run_id"] == result.run_id
    run = MlflowClient().get_run(model_version.run_id)
    assert 0.5 < run.data.metrics["holdout_roc_auc"] <= 1.0
    assert {"holdout_brier", "holdout_calibration_error", "holdout_pr_auc"} <= set(run.data.metrics)
    assert run.info.status == "FINISHED"
    artifacts = {a.path for a in MlflowClient().list_artifacts(run.info.run_id, "plots")}
    assert artifacts == {
        "plots/feature_importance.png",
        "plots/calibration.png",
        "plots/monthly_roc_auc.png",
    }
    assert (settings.reports_dir / "drift_report_2017-05-01.html").stat().st_size > 10_000
    (eda,) = [
        e.step_materialization_data.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey("eda_report")
    ]
    assert eda["plot_seasonality"].value.count("](data:image/png;base64,") == 1
    assert Path(eda["report"].value) == settings.reports_dir / "eda_2017-05-01" / "eda.html"
    assert (settings.reports_dir / "eda_2017-05-01" / "duplicates.png").is_file()
    assert mlflow.get_tracking_uri() == settings.mlflow_tracking_uri

    # in MLflow: named for what it is, nested under its Dagster run, its data and the verdict
    assert run.info.run_name == "candidate 2017-05-01"
    assert result.run_id in run.data.tags["mlflow.note.content"]
    parent = MlflowClient().get_run(run.data.tags["mlflow.parentRunId"])
    assert parent.data.tags["dagster_run_id"] == result.run_id
    assert parent.info.status == "FINISHED"  # nothing left RUNNING
    datasets = {i.tags[0].value: i.dataset.name for i in run.inputs.dataset_inputs}
    assert set(datasets) == {"training", "holdout"}
    assert run.data.tags["gate.verdict"] == "passed"
    assert "PASS holdout ROC AUC" in run.data.tags["gate.comparisons"]
    # in Dagit: rounded metrics, links to the MLflow UI, and the keys the sensors read
    metadata = {
        e.asset_key.to_user_string(): e.step_materialization_data.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    candidate, registered = metadata["candidate_model"], metadata["registered_model"]
    auc = candidate["holdout_roc_auc"].value
    assert auc == round(auc, 4)
    assert candidate["mlflow_run"].value == (
        f"{settings.mlflow_ui_url}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
    )
    assert registered["model_version_url"].value.endswith(f"/#/models/{MODEL_NAME}/versions/1")
    assert registered[keys.CHAMPION_VERSION].value == "1"
    assert registered[keys.TRAINED_AS_OF].value == "2017-05-01"
    drift = metadata["drift_report"]
    assert {keys.SEASONAL_REFERENCE, keys.RETRAIN_VERDICT, keys.DRIFT_SHARE} <= set(drift)
    assert metadata["booking_features"][keys.AS_OF].value == "2017-05-01"


def test_a_weak_candidate_is_stopped_by_the_gate_and_the_champion_stays(
    settings: Settings, instance: dg.DagsterInstance
) -> None:
    assert run_main_job(settings, instance).success
    before = _query(
        settings, f"SELECT booking_id, cancel_probability, scored_at FROM {PREDICTIONS.name}"
    )

    # uncalibrated: its calibration error fails the gate's ceiling (calibrated, it may not)
    weak = run_main_job(settings, instance, params_json=WEAK_PARAMS, calibrate=False)
    assert not weak.success
    gate = _gate(weak)
    assert not gate.passed
    assert "FAIL" in gate.description
    weak_run = MlflowClient().get_run(gate.metadata["candidate_run_id"].value)
    assert weak_run.data.tags["gate.verdict"] == "failed"  # what the gate said, in MLflow too
    materialized = materialized_assets(weak)
    assert "candidate_model" in materialized
    assert not {"registered_model", "batch_predictions"} & materialized
    started = {
        e.step_key for e in weak.all_events if e.event_type == dg.DagsterEventType.STEP_START
    }
    assert "candidate_model" in started
    assert not {"registered_model", "batch_predictions"} & started
    assert _champion_version(settings) == "1"
    assert len(MlflowClient().search_model_versions(f"name='{MODEL_NAME}'")) == 1
    after = _query(
        settings, f"SELECT booking_id, cancel_probability, scored_at FROM {PREDICTIONS.name}"
    )
    assert after == before


def _bad_sources(folder: Path) -> dict[Path, str]:
    """Each unusable source, with what its error message must say."""
    good = make_bookings(500)
    missing = write_csv(good.drop(columns=["deposit_type"]), folder / "missing_column.csv")
    semicolons = folder / "semicolons.csv"
    good.to_csv(semicolons, sep=";", index=False)
    text = good.astype({"adr": object})
    text.loc[4, "adr"] = "cheap"
    empty = folder / "empty.csv"
    empty.write_text("")
    broken_zip = folder / "broken.zip"
    broken_zip.write_bytes(b"PK\x03\x04 truncated")
    return {
        missing: "missing column(s) ['deposit_type']",
        semicolons: "comma-separated",
        write_csv(text, folder / "text_in_adr.csv"): "column 'adr' must be numeric",
        empty: "the file is empty",
        broken_zip: "not a readable zip",
    }


def test_a_bad_source_fails_the_run_and_replaces_nothing(
    tmp_path: Path, settings: Settings, instance: dg.DagsterInstance
) -> None:
    assert run_main_job(settings, instance).success
    before = _query(settings, f"SELECT count(*), max(scored_at) FROM {PREDICTIONS.name}")

    for bad, expected in _bad_sources(tmp_path).items():
        result = run_main_job(replace(settings, source=str(bad)), instance)
        assert not result.success
        (failure,) = [
            e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE
        ]
        assert failure.step_key == "raw_bookings"
        message = failure.step_failure_data.error.cause.message
        assert str(bad) in message and expected in message, message
        assert materialized_assets(result) == set()
        assert _query(settings, f"SELECT count(*) FROM {RAW_BOOKINGS.name}") == [(SYNTHETIC_ROWS,)]
        assert (
            _query(settings, f"SELECT count(*), max(scored_at) FROM {PREDICTIONS.name}") == before
        )
        assert _champion_version(settings) == "1"


def test_invalid_rows_are_quarantined_and_the_run_goes_on(
    tmp_path: Path, settings: Settings, instance: dg.DagsterInstance
) -> None:
    frame = make_bookings(SYNTHETIC_ROWS).astype({"adults": object})
    frame.loc[[10, 11], "adr"] = -20.0
    frame.loc[12, ["adults", "children", "babies"]] = [0, 0.0, 0]
    frame.loc[13, "adults"] = "1e308"  # once cast to -9223372036854775808, and kept
    source = write_csv(frame, tmp_path / "with_invalid.csv")

    result = run_main_job(replace(settings, source=str(source)), instance)
    assert result.success
    quarantined = _query(
        settings, f"SELECT booking_id, reason FROM {QUARANTINED_BOOKINGS.name} ORDER BY 1"
    )
    assert quarantined == [
        (11, "adr -20.0 below 0"),
        (12, "adr -20.0 below 0"),
        (13, "zero guests"),
        (14, "adults 1e308 above 100"),
    ]
    assert _query(settings, f"SELECT count(*) FROM {CLEANED_BOOKINGS.name}") == [
        (SYNTHETIC_ROWS - 4,)
    ]
    assert _query(settings, f"SELECT min(adults), max(adults) FROM {CLEANED_BOOKINGS.name}") == [
        (1, 3)
    ]


def test_a_new_as_of_adds_predictions_and_keeps_the_old_ones(
    settings: Settings, instance: dg.DagsterInstance
) -> None:
    assert run_main_job(settings, instance).success
    assert _query(settings, "SELECT count(*) FROM realised_performance") == [(0,)]
    assert run_main_job(replace(settings, as_of=date(2017, 7, 1)), instance).success
    by_date = _query(
        settings,
        f"SELECT as_of, any_value(model_version) FROM {PREDICTIONS.name} GROUP BY 1 ORDER BY 1",
    )
    assert by_date == [(date(2017, 5, 1), "1"), (date(2017, 7, 1), "2")]
    previous = MlflowClient().get_model_version(MODEL_NAME, "1")
    assert previous.tags["previous_champion"] == "true"
    assert previous.tags["replaced_by_version"] == "2"
    # the May scores have met their outcomes: realised performance per arrival month
    realised = _query(
        settings,
        "SELECT arrival_month, bookings, roc_auc, model_versions FROM realised_performance",
    )
    assert [row[0] for row in realised] == ["2017-05", "2017-06"]
    assert all(row[1] > 100 and 0.6 < row[2] <= 1.0 and row[3] == "1" for row in realised)
