"""The cluster profile for real: PostgreSQL, RabbitMQ (a vhost of its own), Celery workers, the
MLflow server, all started by `booking-platform cluster up` on fresh names and torn down after.

One cluster serves the module (starting it is the expensive part); the tests run in order: the
main job and a four-date scoring backfill, a worker killed mid-step, then the same as-of on the
embedded profile giving the same probabilities.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from mlflow import MlflowClient

from booking_platform.cluster.scratch import (
    ScratchCluster,
    missing_services,
    running,
    scratch_cluster,
)
from booking_platform.cluster.services import logs_dir
from booking_platform.cluster.submit import (
    FINISHED,
    run_events,
    step_workers,
    submit_runs,
    wait_for_runs,
)
from booking_platform.config import MODEL_NAME, Settings
from booking_platform.core import warehouse
from booking_platform.core.registry import AS_OF_TAG, CHAMPION
from booking_platform.defs.jobs import RETRAINING_JOB_NAME, SCORING_JOB_NAME
from booking_platform_tests.conftest import SYNTHETIC_ROWS, run_main_job
from booking_platform_tests.synthetic import make_bookings, write_csv

pytestmark = pytest.mark.skipif(
    bool(missing_services()), reason=f"cluster services missing: {missing_services()}"
)

MAIN_AS_OF = "2017-04-01"
BACKFILL_DATES = ["2017-05-01", "2017-06-01", "2017-07-01", "2017-08-01"]
# what a storage layer says when concurrent runs trip over it
STORAGE_ERRORS = re.compile(
    r"database is locked|Could not set lock|OperationalError|DeadlockDetected|"
    r"could not serialize access|psycopg2?\.errors",
    re.IGNORECASE,
)


class Cluster:
    def __init__(self, scratch: ScratchCluster, pids: dict[str, int]) -> None:
        self.scratch, self.pids = scratch, pids
        self.settings: Settings = scratch.settings

    def storage_errors(self) -> list[str]:
        return [
            f"{log.name}: {line.strip()}"
            for log in sorted(logs_dir(self.settings).glob("*.log"))
            for line in log.read_text(errors="replace").splitlines()
            if STORAGE_ERRORS.search(line)
        ]

    def mlflow(self) -> MlflowClient:
        # the registry named too: an earlier test in this process may have set MLflow's global one
        uri = self.settings.mlflow_tracking_uri
        return MlflowClient(uri, registry_uri=uri)

    def predictions(self) -> pd.DataFrame:
        # PostgreSQL: the cluster profile's default warehouse, in the instance's database
        assert self.settings.warehouse_location.startswith("postgresql://")
        with warehouse.connect(self.settings.warehouse_location, read_only=True) as connection:
            return warehouse.read_table(connection, "predictions")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("cluster")
    source = write_csv(make_bookings(SYNTHETIC_ROWS), root / "bookings.csv")
    # the staleness sensor stays quiet: only the runs this test launches run
    extra = {"BOOKINGS_AS_OF": MAIN_AS_OF, "CHAMPION_MAX_AGE_DAYS": "100000"}
    with scratch_cluster(root, source, extra) as scratch, running(scratch) as pids:
        yield Cluster(scratch, pids)


@pytest.fixture(scope="module")
def instance(cluster: Cluster) -> Iterator[dg.DagsterInstance]:
    """The cluster's instance (PostgreSQL), read from this process as the CLI reads it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(cluster.settings.dagster_home))
        patch.setenv(
            "BOOKING_PLATFORM_DAGSTER_STORAGE_URL", cluster.settings.cluster.dagster_storage_url
        )
        with dg.DagsterInstance.get() as cluster_instance:
            yield cluster_instance


def _one_slice_per_date(predictions: pd.DataFrame) -> dict[str, int]:
    """as_of -> rows, after checking each date holds one scoring (one scored_at) only."""
    per_date = predictions.groupby(predictions["as_of"].astype(str).str[:10])
    scorings = per_date["scored_at"].nunique()
    assert (scorings == 1).all(), scorings
    return per_date.size().to_dict()


def _versions_by_date(predictions: pd.DataFrame) -> dict[str, set[str]]:
    dates = predictions["as_of"].astype(str).str[:10]
    return {d: set(rows["model_version"]) for d, rows in predictions.groupby(dates)}


def _trained_as_of(cluster: Cluster) -> dict[str, str]:
    """Registered version -> the as-of date it was trained as of, from the MLflow server."""
    client = cluster.mlflow()
    versions = client.search_model_versions(f"name='{MODEL_NAME}'")
    return {v.version: v.tags[AS_OF_TAG] for v in versions}


def _champion_as_of(trained: dict[str, str], as_of: str) -> str:
    """The newest version trained as of a date not after `as_of` (ISO dates sort as text)."""
    return max(
        (trained_as_of, version)
        for version, trained_as_of in trained.items()
        if trained_as_of <= as_of
    )[1]


def _scored_rows(events: list[dg.DagsterEvent]) -> int:
    (rows,) = [
        e.step_materialization_data.materialization.metadata["rows"].value
        for e in events
        if e.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
        and e.step_materialization_data.materialization.asset_key.to_user_string()
        == "batch_predictions"
    ]
    return rows


def test_the_main_job_then_a_scoring_backfill_run_side_by_side_on_the_workers(
    cluster: Cluster, instance: dg.DagsterInstance
) -> None:
    main = cluster.scratch.cli("run")
    assert main.returncode == 0, main.stdout + main.stderr
    assert "where each step ran" in main.stdout

    instance.add_dynamic_partitions("as_of_dates", BACKFILL_DATES)
    backfill = cluster.scratch.cli(
        "backfill", "--from", "2017-05", "--to", "2017-08", "--job", SCORING_JOB_NAME
    )
    assert backfill.returncode == 0, backfill.stdout + backfill.stderr
    assert "4 of 4 date(s) succeeded" in backfill.stdout

    records = instance.get_run_records()
    assert {r.dagster_run.status for r in records} == {dg.DagsterRunStatus.SUCCESS}
    scoring = [r for r in records if r.dagster_run.job_name == SCORING_JOB_NAME]
    assert sorted(r.dagster_run.tags["dagster/partition"] for r in scoring) == BACKFILL_DATES
    overlapping = [
        (a.dagster_run.run_id, b.dagster_run.run_id)
        for a in scoring
        for b in scoring
        if a.dagster_run.run_id < b.dagster_run.run_id
        and a.start_time < b.end_time
        and b.start_time < a.end_time
    ]
    assert overlapping, [(r.start_time, r.end_time) for r in scoring]

    workers = {
        worker
        for record in records
        for names in step_workers(run_events(instance, record.dagster_run.run_id)).values()
        for worker in names
    }
    assert len(workers) >= 2, workers
    assert {w.split("@")[0] for w in workers} <= set(cluster.pids)

    rows = _one_slice_per_date(cluster.predictions())
    assert sorted(rows) == [MAIN_AS_OF, *BACKFILL_DATES]
    for record in records:
        run = record.dagster_run
        assert rows[run.tags["dagster/partition"]] == _scored_rows(run_events(instance, run.run_id))

    champion = cluster.mlflow().get_model_version_by_alias(MODEL_NAME, CHAMPION)
    assert champion.version == "1"
    assert cluster.storage_errors() == []


def test_two_promotions_queued_together_run_one_after_the_other(
    cluster: Cluster, instance: dg.DagsterInstance
) -> None:
    # both hold the pool "promotion" (limit 1, per run): the queue starts the second only
    # once the first has finished, whatever their gates decide
    runs = submit_runs(cluster.settings, instance, RETRAINING_JOB_NAME, BACKFILL_DATES[:2])
    finished = wait_for_runs(instance, runs.values(), timeout=1800)
    assert all(r.status in FINISHED for r in finished.values())
    first, second = sorted(
        (instance.get_run_record_by_id(run_id) for run_id in runs.values()),
        key=lambda record: record.start_time,
    )
    assert first.end_time <= second.start_time, (first.end_time, second.start_time)

    # whichever ran first, the alias is on the newest training data, and each date's
    # predictions are the champion's as of that date (a model trained later never scores it)
    trained = _trained_as_of(cluster)
    holder = cluster.mlflow().get_model_version_by_alias(MODEL_NAME, CHAMPION)
    assert trained[holder.version] == max(trained.values()), (holder.version, trained)
    scored = _versions_by_date(cluster.predictions())
    for as_of in BACKFILL_DATES[:2]:
        assert scored[as_of] == {_champion_as_of(trained, as_of)}, (as_of, scored, trained)


def test_a_worker_killed_mid_step_loses_no_rows_and_the_rerun_succeeds(
    cluster: Cluster, instance: dg.DagsterInstance
) -> None:
    as_of = BACKFILL_DATES[-1]
    client = cluster.mlflow()
    champion = client.get_model_version_by_alias(MODEL_NAME, CHAMPION).version
    (run_id,) = submit_runs(cluster.settings, instance, SCORING_JOB_NAME, [as_of]).values()

    # the worker that took batch_predictions is killed once the step has started
    killed, deadline = None, time.monotonic() + 900
    while killed is None:
        assert time.monotonic() < deadline, "batch_predictions never started"
        events = run_events(instance, run_id)
        started = any(
            e.event_type == dg.DagsterEventType.STEP_START and e.step_key == "batch_predictions"
            for e in events
        )
        taken = step_workers(events).get("batch_predictions")
        if started and taken:
            killed = taken[0].split("@")[0]
            os.kill(cluster.pids[killed], signal.SIGKILL)
            finished_before_kill = any(
                e.event_type == dg.DagsterEventType.STEP_SUCCESS
                and e.step_key == "batch_predictions"
                for e in run_events(instance, run_id)
            )
        time.sleep(0.1)
    assert not finished_before_kill, "the kill came after the step had finished"

    run = wait_for_runs(instance, [run_id], timeout=900)[run_id]
    events = run_events(instance, run_id)
    if run.status == dg.DagsterRunStatus.SUCCESS:
        # the step went back to the queue and another worker ran it from the start
        ran_on = step_workers(events)["batch_predictions"]
        assert ran_on[0].startswith(killed) and not ran_on[-1].startswith(killed), ran_on
    else:
        assert run.status == dg.DagsterRunStatus.FAILURE
    rows = _one_slice_per_date(cluster.predictions())
    assert sorted(rows) == [MAIN_AS_OF, *BACKFILL_DATES]
    assert client.get_model_version_by_alias(MODEL_NAME, CHAMPION).version == champion

    (rerun_id,) = submit_runs(cluster.settings, instance, SCORING_JOB_NAME, [as_of]).values()
    rerun = wait_for_runs(instance, [rerun_id], timeout=900)[rerun_id]
    assert rerun.status == dg.DagsterRunStatus.SUCCESS
    rows = _one_slice_per_date(cluster.predictions())
    assert rows[as_of] == _scored_rows(run_events(instance, rerun_id))
    # scored after the promotions: by the champion as of its date, the alias holder
    assert _versions_by_date(cluster.predictions())[as_of] == {champion}
    assert cluster.storage_errors() == []


def test_the_embedded_profile_gives_the_same_probabilities(
    cluster: Cluster, tmp_path: Path
) -> None:
    embedded = Settings(
        home=tmp_path / "embedded",
        source=cluster.settings.source,
        as_of=date.fromisoformat(MAIN_AS_OF),
    )
    with dg.instance_for_test() as embedded_instance:
        assert run_main_job(embedded, embedded_instance).success
    with warehouse.connect(embedded.warehouse_location, read_only=True) as connection:
        local = warehouse.read_slice(connection, "predictions", embedded.as_of)
    on_cluster = cluster.predictions()
    on_cluster = on_cluster[on_cluster["as_of"].astype(str).str[:10] == MAIN_AS_OF]
    both = local.merge(on_cluster, on="booking_id", suffixes=("_embedded", "_cluster"))
    assert len(both) == len(local) == len(on_cluster) > 0
    difference = (both["cancel_probability_embedded"] - both["cancel_probability_cluster"]).abs()
    assert difference.max() <= 1e-9
    assert (both["predicted_cancel_embedded"] == both["predicted_cancel_cluster"]).all()
