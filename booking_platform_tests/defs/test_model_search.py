"""model_search on a real Dagster instance, DuckDB file and MLflow store (synthetic data, a tiny
budget): its leaderboard, its MLflow runs, and the candidate that trains with its best trial."""

import json

import dagster as dg
import mlflow
from mlflow import MlflowClient

from booking_platform.config import MODEL_NAME, Settings
from booking_platform.core import registry, warehouse
from booking_platform.core.search import FAMILIES, TUNED
from booking_platform.core.tables import MODEL_LEADERBOARD
from booking_platform.definitions import build_definitions
from booking_platform.defs.jobs import (
    MAIN_JOB_NAME,
    MODEL_SEARCH_JOB_NAME,
    RETRAINING_JOB_NAME,
)
from booking_platform.defs.partitions import as_of_partitions
from booking_platform_tests.conftest import MODEL_SEARCH_ASSET, materialized_assets

TINY_BUDGET = {"trials": 3, "seconds": 120.0}
UPSTREAM = ("raw_bookings", "cleaned_bookings", "accepted_bookings", "booking_features")


def _candidate_run(result: dg.ExecuteInProcessResult) -> str:
    (event,) = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == "candidate_model"
    ]
    return event.step_materialization_data.materialization.metadata["mlflow_run_id"].value


def test_search_leaderboard_feeds_the_next_candidate_and_promotes_nothing(
    settings: Settings, instance: dg.DagsterInstance
) -> None:
    defs = build_definitions(settings)
    partition = str(settings.as_of)
    instance.add_dynamic_partitions(as_of_partitions.name, [partition])
    main_job = defs.resolve_job_def(MAIN_JOB_NAME)
    assert MODEL_SEARCH_ASSET not in {
        k.to_user_string() for k in main_job.asset_layer.executable_asset_keys
    }
    assert main_job.execute_in_process(
        instance=instance,
        partition_key=partition,
        asset_selection=[dg.AssetKey(key) for key in UPSTREAM],
    ).success

    search = defs.resolve_job_def(MODEL_SEARCH_JOB_NAME).execute_in_process(
        instance=instance,
        partition_key=partition,
        run_config={"ops": {MODEL_SEARCH_ASSET: {"config": TINY_BUDGET}}},
    )
    assert search.success
    assert materialized_assets(search) == {MODEL_SEARCH_ASSET}
    metadata = search.get_asset_materialization_events()[0].materialization.metadata
    search_run = metadata["mlflow_run_id"].value
    assert "![Optuna: holdout ROC AUC by trial](data:image/png;base64," in (
        metadata["plot_optimization_history"].value
    )
    assert "plot_param_importances" in metadata
    assert "| lightgbm_tuned " in metadata["leaderboard"].value

    # the search promotes nothing: no champion yet
    registry.use_store(settings.mlflow_tracking_uri, settings.mlflow_artifact_root)
    assert registry.load_alias_version(MODEL_NAME) is None

    with warehouse.connect(settings.warehouse_path, read_only=True) as connection:
        table = warehouse.read_slice(connection, MODEL_LEADERBOARD.name, settings.as_of)
    assert set(table["family"]) == {*FAMILIES, TUNED}
    assert len(table[table["family"] == TUNED]) == TINY_BUDGET["trials"]
    complete = table[table["state"] == "complete"]
    assert complete["roc_auc"].is_monotonic_decreasing and complete["roc_auc"].between(0.5, 1).all()
    assert table["rank"].tolist() == list(range(1, len(table) + 1))
    assert set(table["search_run_id"]) == {search_run}

    # MLflow: the parent run and a nested run per family and per trial, with their metrics
    client = MlflowClient()
    parent = client.get_run(search_run)
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{search_run}'"
    )
    assert len(children) == len(FAMILIES) + TINY_BUDGET["trials"]
    for child in children:
        if child.data.tags["state"] == "complete":
            assert {"roc_auc", "pr_auc", "brier", "calibration_error"} <= set(child.data.metrics)
        assert {"fit_seconds", "score_seconds"} <= set(child.data.metrics)
    best = mlflow.artifacts.load_dict(f"{parent.info.artifact_uri}/best_params.json")

    # the next candidate trains with the search's best configuration; the gate then promotes it
    retraining = defs.resolve_job_def(RETRAINING_JOB_NAME).execute_in_process(
        instance=instance, partition_key=partition
    )
    assert retraining.success
    candidate = client.get_run(_candidate_run(retraining))
    assert candidate.data.params["search_run_id"] == search_run
    assert candidate.data.params["search_trial"] == str(best["best_trial"])
    for name, value in best["params"].items():
        assert json.loads(candidate.data.params[name]) == value
    champion = registry.alias_version(MODEL_NAME)
    assert champion is not None and champion.run_id == candidate.info.run_id
