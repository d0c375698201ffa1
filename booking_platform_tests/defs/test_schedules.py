"""Schedules and the scoring / retraining jobs on a real Dagster instance (synthetic data)."""

from dataclasses import replace
from datetime import UTC, date, datetime

import dagster as dg

from booking_platform.config import Settings
from booking_platform.core import warehouse
from booking_platform.definitions import build_definitions, defs
from booking_platform.defs.jobs import (
    MODEL_SEARCH_JOB_NAME,
    RETRAIN_REASON_TAG,
    RETRAINING_JOB_NAME,
    SCORING_JOB_NAME,
)
from booking_platform.defs.partitions import as_of_partitions
from booking_platform.defs.schedules import (
    daily_scoring_schedule,
    monthly_model_search_schedule,
    weekly_retraining_schedule,
)
from booking_platform_tests.conftest import materialized_assets, run_main_job


def test_schedules_request_their_jobs_with_reasons(instance: dg.DagsterInstance) -> None:
    monday = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
    context = dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=monday,
        repository_def=defs.get_repository_def(),
    )
    assert "no as-of partition yet" in daily_scoring_schedule.evaluate_tick(context).skip_message
    instance.add_dynamic_partitions(as_of_partitions.name, ["2017-04-01", "2017-05-01"])
    (scoring,) = daily_scoring_schedule.evaluate_tick(context).run_requests
    (retraining,) = weekly_retraining_schedule.evaluate_tick(context).run_requests
    # both run as of the newest date the platform has data for
    assert scoring.partition_key == retraining.partition_key == "2017-05-01"
    assert daily_scoring_schedule.job_name == SCORING_JOB_NAME
    assert weekly_retraining_schedule.job_name == RETRAINING_JOB_NAME
    assert retraining.tags[RETRAIN_REASON_TAG] == "schedule"
    assert RETRAIN_REASON_TAG not in scoring.tags
    assert daily_scoring_schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert weekly_retraining_schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    # the model search: minutes of both cores, off until a person switches it on
    (search,) = monthly_model_search_schedule.evaluate_tick(context).run_requests
    assert search.partition_key == "2017-05-01"
    assert monthly_model_search_schedule.job_name == MODEL_SEARCH_JOB_NAME
    assert monthly_model_search_schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert {s.name for s in defs.schedules} == {
        "daily_scoring_schedule",
        "weekly_retraining_schedule",
        "monthly_model_search_schedule",
    }


def test_retraining_promotes_through_the_gate_and_scoring_uses_the_champion(
    settings: Settings, instance: dg.DagsterInstance
) -> None:
    # the champion was trained a month earlier: a retraining as of today has newer data to show
    assert run_main_job(replace(settings, as_of=date(2017, 4, 1)), instance).success
    definitions = build_definitions(settings)
    as_of = str(settings.as_of)
    instance.add_dynamic_partitions(as_of_partitions.name, [as_of])
    assert (
        definitions.resolve_job_def(SCORING_JOB_NAME)
        .execute_in_process(instance=instance, partition_key=as_of)
        .success
    )

    retrained = definitions.resolve_job_def(RETRAINING_JOB_NAME).execute_in_process(
        instance=instance, partition_key=as_of
    )
    # launched by a person (no sensor or schedule tag): the job's own reason applies
    assert retrained.dagster_run.tags[RETRAIN_REASON_TAG] == "manual"
    assert materialized_assets(retrained) == {
        "candidate_model",
        "registered_model",
        "batch_predictions",
        "realised_performance",
        # a new champion's scores make new nights and a new estimate
        "net_demand",
        "estimated_performance",
    }
    checks = [
        e.asset_check_evaluation_data.check_name
        for e in retrained.all_events
        if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ]
    # the gate, then what the new champion's scores must satisfy
    assert checks == [
        "promotion_gate",
        "one_row_per_open_booking",
        "probabilities_in_range",
        "reasons_present",
        "scored_by_champion_as_of",
    ]

    scored = definitions.resolve_job_def(SCORING_JOB_NAME).execute_in_process(
        instance=instance, partition_key=as_of
    )
    assert materialized_assets(scored) == {
        "raw_bookings",
        "cleaned_bookings",
        "accepted_bookings",
        "booking_features",
        "drift_report",
        "batch_predictions",
        "realised_performance",
        "ab_test_report",
        "net_demand",
        "estimated_performance",
    }
    with warehouse.connect(settings.warehouse_path, read_only=True) as connection:
        versions = connection.execute(
            "SELECT as_of, list(DISTINCT model_version) FROM predictions GROUP BY as_of ORDER BY 1"
        ).fetchall()
    # April keeps the scores of its own champion; today's are the new champion's
    assert versions == [(date(2017, 4, 1), ["1"]), (settings.as_of, ["2"])]
