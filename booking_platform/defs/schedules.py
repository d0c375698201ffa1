"""Schedules: daily scoring is on by default, weekly retraining is off (see README)."""

import dagster as dg

from booking_platform.defs.jobs import RETRAIN_REASON_TAG, retraining_job, scoring_job

daily_scoring_schedule = dg.ScheduleDefinition(
    name="daily_scoring_schedule",
    job=scoring_job,
    cron_schedule="0 6 * * *",
    execution_timezone="UTC",
    # predictions must be fresh every morning: nothing else scores new data on a calendar
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

weekly_retraining_schedule = dg.ScheduleDefinition(
    name="weekly_retraining_schedule",
    job=retraining_job,
    cron_schedule="0 3 * * 1",
    execution_timezone="UTC",
    tags={RETRAIN_REASON_TAG: "schedule"},
    # retraining is meant to follow evidence (drift, staleness, realised performance); a blind
    # weekly retrain is a fallback a person switches on in Dagit
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
