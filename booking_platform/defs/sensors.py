"""Sensors that request retraining. They read materialisation metadata only, so a tick is cheap.

staleness: the champion was trained on data older than the configured maximum age, measured in
as-of days (the platform's clock), or there is no champion at all.
"""

from datetime import UTC, date, datetime, timedelta

import dagster as dg

from booking_platform.defs.jobs import RETRAIN_REASON_TAG, RETRAINING_JOB_NAME, retraining_job

RETRAIN_COOLDOWN = timedelta(hours=1)  # wall-clock time between two sensor-requested retrainings
UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def _latest_metadata(instance: dg.DagsterInstance, asset: str) -> dict[str, object] | None:
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    if event is None or event.asset_materialization is None:
        return None
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def _cooling_down(instance: dg.DagsterInstance) -> dg.DagsterRun | None:
    """A retraining run that is still going or started within the cooldown, if any."""
    recent = instance.get_runs(
        dg.RunsFilter(
            job_name=RETRAINING_JOB_NAME,
            created_after=datetime.now(UTC) - RETRAIN_COOLDOWN,
        ),
        limit=1,
    )
    if recent:
        return recent[0]
    unfinished = instance.get_runs(
        dg.RunsFilter(job_name=RETRAINING_JOB_NAME, statuses=UNFINISHED),
        limit=1,
    )
    return unfinished[0] if unfinished else None


def build_staleness_sensor(max_age_days: int) -> dg.SensorDefinition:
    @dg.sensor(
        name="champion_staleness_sensor",
        job=retraining_job,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Retrain when the champion is more than {max_age_days} as-of days old.",
    )
    def champion_staleness_sensor(context: dg.SensorEvaluationContext):
        features = _latest_metadata(context.instance, "booking_features")
        if features is None:
            return dg.SkipReason("no booking_features yet: nothing to train on")
        as_of = date.fromisoformat(str(features["as_of"]))
        champion = _latest_metadata(context.instance, "registered_model")
        if champion is None:
            age_text, version = "there is no champion", "none"
        else:
            age = (as_of - date.fromisoformat(str(champion["trained_as_of"]))).days
            version = str(champion["champion_version"])
            if age <= max_age_days:
                return dg.SkipReason(f"champion v{version} is {age} days old (max {max_age_days})")
            age_text = f"champion v{version} is {age} days old (max {max_age_days})"
        running = _cooling_down(context.instance)
        if running is not None:
            return dg.SkipReason(f"{age_text}, but retraining run {running.run_id} is recent")
        return dg.RunRequest(
            # one retraining per (data as-of, champion): the key de-duplicates repeated ticks
            run_key=f"stale:{as_of}:{version}",
            tags={RETRAIN_REASON_TAG: "stale", "booking_platform/trigger": age_text},
        )

    return champion_staleness_sensor
