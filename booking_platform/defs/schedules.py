"""Schedules: daily scoring is on by default, weekly retraining is off (see docs/design.md).

Both run as of the newest as-of partition (the newest snapshot or `booking-platform run` date).
"""

import dagster as dg

from booking_platform.defs.jobs import (
    RETRAIN_REASON_TAG,
    model_search_job,
    retraining_job,
    scoring_job,
)
from booking_platform.defs.partitions import latest_as_of


def _latest(context: dg.ScheduleEvaluationContext, tags: dict[str, str]):
    as_of = latest_as_of(context.instance)
    if as_of is None:
        return dg.SkipReason("no as-of partition yet: land a snapshot or run booking-platform run")
    return dg.RunRequest(partition_key=as_of, tags=tags)


@dg.schedule(
    job=scoring_job,
    cron_schedule="0 6 * * *",
    execution_timezone="UTC",
    # predictions must be fresh every morning: nothing else scores new data on a calendar
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every day at 06:00 UTC: ingest the newest as-of date and score its open "
    "bookings with the current champion (no training).",
)
def daily_scoring_schedule(context: dg.ScheduleEvaluationContext):
    return _latest(context, {})


@dg.schedule(
    job=retraining_job,
    cron_schedule="0 3 * * 1",
    execution_timezone="UTC",
    # retraining is meant to follow evidence (drift, staleness, realised performance); a blind
    # weekly retrain is a fallback a person switches on in Dagit
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Mondays at 03:00 UTC, off by default: retrain on the newest as-of date "
    "whatever the evidence (the sensors retrain on staleness, drift and realised performance).",
)
def weekly_retraining_schedule(context: dg.ScheduleEvaluationContext):
    return _latest(context, {RETRAIN_REASON_TAG: "schedule"})


@dg.schedule(
    job=model_search_job,
    cron_schedule="0 1 1 * *",
    execution_timezone="UTC",
    # up to 10 minutes of both cores: a person decides when the data has changed enough to
    # search again (monthly, before the weekly retraining, when switched on)
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="The 1st of each month at 01:00 UTC, off by default: search model families and "
    "LightGBM settings on the newest as-of date; the next candidate trains with the best.",
)
def monthly_model_search_schedule(context: dg.ScheduleEvaluationContext):
    return _latest(context, {})
