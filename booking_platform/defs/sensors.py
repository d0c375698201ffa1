"""Sensors that request retraining. They read materialisation metadata only, so a tick is cheap.

staleness: the champion was trained on data older than the configured maximum age, measured in
as-of days (the platform's clock), or there is no champion at all.
performance: the realised ROC AUC of a recent arrival month fell under a floor.
drift: the open bookings drifted from those open on the same date a year earlier beyond the
thresholds in core/drift.py (drift_report records the verdict).
"""

from datetime import UTC, date, datetime, timedelta

import dagster as dg

from booking_platform.core.drift import NO_RETRAINING
from booking_platform.core.performance import REALISED_AUC_FLOOR
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


def _retrain(
    instance: dg.DagsterInstance, reason: str, run_key: str, trigger: str
) -> dg.RunRequest | dg.SkipReason:
    """Request retraining with its reason, unless a retraining run is recent (cooldown)."""
    running = _cooling_down(instance)
    if running is not None:
        return dg.SkipReason(f"{trigger}, but retraining run {running.run_id} is recent")
    return dg.RunRequest(
        run_key=run_key, tags={RETRAIN_REASON_TAG: reason, "booking_platform/trigger": trigger}
    )


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
        # one retraining per (data as-of, champion): the key de-duplicates repeated ticks
        return _retrain(context.instance, "stale", f"stale:{as_of}:{version}", age_text)

    return champion_staleness_sensor


@dg.sensor(
    job=retraining_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=f"Retrain when a recent month's realised ROC AUC is under {REALISED_AUC_FLOOR}.",
)
def realised_performance_sensor(context: dg.SensorEvaluationContext):
    measured = _latest_metadata(context.instance, "realised_performance")
    if measured is None or "worst_recent_roc_auc" not in measured:
        return dg.SkipReason("no realised performance yet: scored bookings have not arrived")
    worst = float(measured["worst_recent_roc_auc"])
    months = measured.get("recent_months")
    if worst >= REALISED_AUC_FLOOR:
        return dg.SkipReason(f"worst recent realised ROC AUC {worst:.3f} >= {REALISED_AUC_FLOOR}")
    trigger = f"realised ROC AUC {worst:.3f} < {REALISED_AUC_FLOOR} in months {months}"
    return _retrain(context.instance, "performance", f"performance:{measured['as_of']}", trigger)


@dg.sensor(
    job=retraining_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Retrain when drift_report's like-with-like drift exceeds the drift thresholds.",
)
def drift_sensor(context: dg.SensorEvaluationContext):
    report = _latest_metadata(context.instance, "drift_report")
    if report is None:
        return dg.SkipReason("no drift_report yet")
    as_of, verdict = report["as_of"], str(report.get("retrain_verdict", ""))
    if not report.get("seasonal_reference"):
        return dg.SkipReason(
            f"drift_report as of {as_of} has no same-date-last-year reference: not acting on it"
        )
    if verdict == NO_RETRAINING:
        return dg.SkipReason(
            f"drift as of {as_of} within thresholds (share {float(report['drift_share']):.2f})"
        )
    return _retrain(context.instance, "drift", f"drift:{as_of}", f"drift as of {as_of}: {verdict}")
