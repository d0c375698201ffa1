"""The profile is configuration: what it changes in the definitions, and nothing else."""

import pytest

from booking_platform.config import CLUSTER, load_settings
from booking_platform.definitions import build_definitions
from booking_platform.defs.executors import PROMOTION_POOL
from booking_platform.defs.jobs import MAIN_JOB_NAME, RETRAINING_JOB_NAME, SCORING_JOB_NAME

JOBS = (MAIN_JOB_NAME, SCORING_JOB_NAME, RETRAINING_JOB_NAME)


def test_the_cluster_profile_reads_its_services_from_the_environment() -> None:
    settings = load_settings(
        {
            "BOOKING_PLATFORM_PROFILE": "cluster",
            "BOOKING_PLATFORM_PG_URL": "postgresql://dagster:secret@db.internal:6543",
            "BOOKING_PLATFORM_PG_DB": "hotels",
            "BOOKING_PLATFORM_WORKERS": "6",
        }
    )
    assert settings.profile == CLUSTER
    assert settings.cluster.workers == 6
    # psycopg2 named: the locked SQLAlchemy would take a bare postgresql:// as psycopg 3
    assert (
        settings.cluster.dagster_storage_url
        == "postgresql+psycopg2://dagster:secret@db.internal:6543/hotels"
    )
    assert settings.cluster.mlflow_db == "hotels_mlflow"
    # the tables in the instance's database (schema `warehouse`), unless a URL says otherwise
    assert settings.warehouse_location == "postgresql://dagster:secret@db.internal:6543/hotels"
    assert load_settings({}).warehouse_location.endswith("warehouse.duckdb")
    assert settings.mlflow_tracking_uri == "http://127.0.0.1:5000"
    assert settings.cluster.broker_url == "amqp://guest:guest@127.0.0.1:5672//"


def test_mlflow_tracking_uri_and_the_io_uri_are_honoured_on_either_profile() -> None:
    settings = load_settings(
        {"MLFLOW_TRACKING_URI": "http://mlflow:5000", "BOOKING_PLATFORM_IO_URI": "s3://b/io"}
    )
    assert settings.mlflow_tracking_uri == "http://mlflow:5000"
    assert settings.io_manager_uri == "s3://b/io"


def test_an_unknown_profile_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="BOOKING_PLATFORM_PROFILE must be one of"):
        load_settings({"BOOKING_PLATFORM_PROFILE": "kubernetes"})


@pytest.mark.parametrize(
    ("profile", "executor"), [("embedded", "in_process"), ("cluster", "celery")]
)
def test_the_same_jobs_get_the_profiles_executor(profile: str, executor: str) -> None:
    defs = build_definitions(load_settings({"BOOKING_PLATFORM_PROFILE": profile}))
    assert {defs.resolve_job_def(name).executor_def.name for name in JOBS} == {executor}


def test_only_the_promotion_sequence_is_in_the_promotion_pool() -> None:
    job = build_definitions(load_settings({})).resolve_job_def(MAIN_JOB_NAME)
    pooled = {node.name for node in job.graph.nodes if node.definition.pool == PROMOTION_POOL}
    assert pooled == {
        "candidate_model",
        "candidate_model_promotion_gate",
        "registered_model",
    }
