"""The model lifecycle across runs, on a real Dagster instance, DuckDB file and MLflow sqlite store:
each date scored by its own champion, reruns that change nothing register nothing, MLflow runs of
dead Dagster runs closed, and predictions brought level after a run that died mid-promotion."""

import signal
import subprocess
import sys
import textwrap
from dataclasses import replace
from datetime import date
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from mlflow import MlflowClient

from booking_platform.cli import main
from booking_platform.config import MODEL_NAME, Settings
from booking_platform.core import registry, warehouse
from booking_platform.definitions import build_definitions
from booking_platform.defs.checks import PREDICTION_CHECKS
from booking_platform.defs.jobs import RETRAINING_JOB_NAME, SCORING_JOB_NAME
from booking_platform.defs.sensors import predictions_level_sensor
from booking_platform_tests.conftest import run_job_as_of, run_main_job
from booking_platform_tests.synthetic import make_bookings, write_csv

MARCH, APRIL, MAY, JUNE = date(2017, 3, 1), date(2017, 4, 1), date(2017, 5, 1), date(2017, 6, 1)


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {
        e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    }


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, object]:
    (event,) = [
        e.step_materialization_data.materialization
        for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey(asset)
    ]
    return {k: v.value for k, v in event.metadata.items()}


def _scored_by(settings: Settings) -> list[tuple[date, str]]:
    with warehouse.connect(settings.warehouse_path, read_only=True) as connection:
        return connection.execute(
            "SELECT DISTINCT as_of, model_version FROM predictions ORDER BY 1, 2"
        ).fetchall()


def _champion(settings: Settings) -> str | None:
    registry.use_store(settings.mlflow_tracking_uri, settings.mlflow_artifact_root)
    return registry.load_alias_version(MODEL_NAME)


def _predictions_checks_passed(result: dg.ExecuteInProcessResult) -> bool:
    checks = _checks(result)
    return all(checks[name].passed for name in PREDICTION_CHECKS)


def _killed_mlflow_run(settings: Settings, dagster_run_id: str) -> str:
    """An MLflow run opened by a process killed with SIGKILL: left RUNNING in the store."""
    experiment_id = registry.use_store(settings.mlflow_tracking_uri, settings.mlflow_artifact_root)
    code = textwrap.dedent(
        f"""
        import os, signal, mlflow
        mlflow.set_tracking_uri({settings.mlflow_tracking_uri!r})
        run = mlflow.start_run(experiment_id={experiment_id!r},
                               tags={{{registry.DAGSTER_RUN_TAG!r}: {dagster_run_id!r}}})
        print(run.info.run_id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    killed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    run_id = killed.stdout.strip()
    assert MlflowClient().get_run(run_id).info.status == "RUNNING"
    return run_id


def test_a_rerun_with_nothing_new_keeps_the_champion_and_closes_dead_runs_mlflow_runs(
    settings: Settings, instance: dg.DagsterInstance
) -> None:
    first = run_main_job(settings, instance)
    assert first.success and _predictions_checks_passed(first)
    # a run killed while logging its candidate (its Dagster run since marked failed), and one
    # still going on another worker
    dead = _killed_mlflow_run(settings, dagster_run_id=first.run_id)
    going = dg.DagsterRun(
        job_name="retraining_job", run_id="f" * 36, status=dg.DagsterRunStatus.STARTED
    )
    instance.add_run(going)
    alive = _killed_mlflow_run(settings, dagster_run_id=going.run_id)

    again = run_main_job(settings, instance)
    assert again.success
    gate = _checks(again)["promotion_gate"]
    assert not gate.passed and gate.severity == dg.AssetCheckSeverity.WARN
    assert "KEEP champion v1: trained as of 2017-05-01, the candidate as of 2017-05-01" in (
        gate.description
    )
    assert gate.metadata["verdict"].value == "keep champion"
    registered = _metadata(again, "registered_model")
    assert registered["registered_version"] == "none"
    assert registered["champion_version"] == "1"
    assert "no newer data" in registered["kept_because"]
    assert _champion(settings) == "1"
    assert len(MlflowClient().search_model_versions(f"name='{MODEL_NAME}'")) == 1
    # the rerun still scores, with the champion
    assert _metadata(again, "batch_predictions")["model_version"] == "1"
    assert _predictions_checks_passed(again)

    assert MlflowClient().get_run(dead).info.status == "FAILED"
    assert first.run_id in MlflowClient().get_run(dead).data.tags["closed_because"]
    assert MlflowClient().get_run(alive).info.status == "RUNNING"


def test_each_date_is_scored_by_its_own_champion_and_older_models_never_take_the_alias(
    settings: Settings,
    instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    assert run_main_job(settings, instance).success  # v1, trained as of May
    march, april = replace(settings, as_of=MARCH), replace(settings, as_of=APRIL)

    # scoring March with a model that saw April's arrivals is refused
    early = run_job_as_of(march, instance, SCORING_JOB_NAME)
    assert not early.success
    (failure,) = [e for e in early.all_events if e.is_step_failure]
    assert failure.step_key == "batch_predictions"
    assert "no model was champion as of 2017-03-01" in failure.step_failure_data.error.cause.message

    # a backfill of the main job for March trains March's model: registered, not champion
    backfilled = run_main_job(march, instance)
    assert backfilled.success
    assert _checks(backfilled)["promotion_gate"].passed  # no champion as of March: floors only
    registered = _metadata(backfilled, "registered_model")
    assert (registered["registered_version"], registered["moved_champion_alias"]) == ("2", False)
    assert registered["champion_version"] == "1"
    assert registered["trained_as_of"] == "2017-05-01"  # what the staleness sensor reads
    assert _champion(settings) == "1"

    scored_april = run_job_as_of(april, instance, SCORING_JOB_NAME)
    assert scored_april.success and _predictions_checks_passed(scored_april)
    assert _scored_by(settings) == [(MARCH, "2"), (APRIL, "2"), (MAY, "1")]

    # `predict --as-of` asks the same question of the same model; without a date, the champion
    for key, value in {
        "BOOKING_PLATFORM_HOME": str(settings.home),
        "BOOKINGS_SOURCE": settings.source,
    }.items():
        monkeypatch.setenv(key, value)
    bookings = write_csv(make_bookings(50, seed=3), tmp_path / "to_score.csv")
    for as_of, version in ((["--as-of", str(APRIL)], 2), ([], 1)):
        assert (
            main(["predict", "--input", str(bookings), "--output", str(tmp_path / "s.csv"), *as_of])
            == 0
        )
        assert set(pd.read_csv(tmp_path / "s.csv")["model_version"]) == {version}


def test_predictions_behind_a_new_champion_are_named_and_brought_level(
    settings: Settings,
    instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for key, value in {
        "BOOKING_PLATFORM_HOME": str(settings.home),
        "BOOKINGS_SOURCE": settings.source,
        "BOOKINGS_AS_OF": str(JUNE),
    }.items():
        monkeypatch.setenv(key, value)
    june = replace(settings, as_of=JUNE)
    assert run_main_job(settings, instance).success  # v1 as of May
    assert run_job_as_of(june, instance, SCORING_JOB_NAME).success  # June scored by v1
    defs = build_definitions(june)

    def tick():  # noqa: ANN202
        # the daemon checks requested partitions against the instance: so does this
        with dg.partition_loading_context(dynamic_partitions_store=instance):
            return predictions_level_sensor.evaluate_tick(
                dg.build_sensor_context(instance=instance, definitions=defs)
            )

    assert not tick().run_requests
    # a retraining as of June that ends after promoting v2, before scoring June again
    crashed = run_job_as_of(
        june, instance, RETRAINING_JOB_NAME, ["candidate_model", "registered_model"]
    )
    assert crashed.success and _champion(settings) == "2"
    assert _scored_by(settings)[-1] == (JUNE, "1")

    assert main(["predictions", "--limit", "3"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert (
        "predictions as of 2017-06-01 scored by v1, but the champion as of that date is v2" in out
    )

    (request,) = tick().run_requests
    assert predictions_level_sensor.job_name == SCORING_JOB_NAME
    assert request.partition_key == str(JUNE)
    leveled = run_job_as_of(june, instance, SCORING_JOB_NAME)
    assert leveled.success and _predictions_checks_passed(leveled)
    assert _scored_by(settings)[-1] == (JUNE, "2")
    assert not tick().run_requests
    assert main(["predictions", "--limit", "3"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "predictions as of 2017-06-01 scored by v2, the champion as of that date" in out
