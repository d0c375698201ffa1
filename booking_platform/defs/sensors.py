"""Sensors that ingest landed snapshots and request retraining.

They read file names and materialisation metadata only, so a tick is cheap.

staleness: the champion was trained on data older than the configured maximum age, measured in
as-of days (the platform's clock), or there is no champion at all.
performance: the realised ROC AUC of a recent arrival month fell under a floor.
landing: a new PMS snapshot in the landing folder becomes a partition and a run that ingests it.
drift: the open bookings drifted from those open on the same date a year earlier beyond the
thresholds in core/drift.py (drift_report records the verdict).
predictions level: a run registered a champion for a date and ended before scoring that date
(killed, or failed in between): that date is scored again with the champion as of it.
"""

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg

from booking_platform.core.drift import NO_RETRAINING
from booking_platform.core.performance import REALISED_AUC_FLOOR
from booking_platform.core.snapshots import scan_landing
from booking_platform.defs.assets.ingestion import SNAPSHOT_TAG
from booking_platform.defs.jobs import (
    RETRAIN_REASON_TAG,
    RETRAINING_JOB_NAME,
    booking_platform_job,
    retraining_job,
    scoring_job,
)
from booking_platform.defs.partitions import as_of_partitions

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
    """A run still going (any job: it may be training, e.g. Dagit's "Materialize all"), or a
    retraining run started within the cooldown, if any."""
    unfinished = instance.get_runs(dg.RunsFilter(statuses=UNFINISHED), limit=1)
    if unfinished:
        return unfinished[0]
    recent = instance.get_runs(
        dg.RunsFilter(
            job_name=RETRAINING_JOB_NAME,
            created_after=datetime.now(UTC) - RETRAIN_COOLDOWN,
        ),
        limit=1,
    )
    return recent[0] if recent else None


def _retrain(
    instance: dg.DagsterInstance, reason: str, run_key: str, trigger: str, as_of: object
) -> dg.RunRequest | dg.SkipReason:
    """Request retraining as of `as_of` with its reason, unless one is recent (cooldown)."""
    running = _cooling_down(instance)
    if running is not None:
        return dg.SkipReason(
            f"{trigger}, but {running.job_name} run {running.run_id} is still going or recent"
        )
    return dg.RunRequest(
        run_key=run_key,
        partition_key=str(as_of),
        tags={RETRAIN_REASON_TAG: reason, "booking_platform/trigger": trigger},
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
        return _retrain(context.instance, "stale", f"stale:{as_of}:{version}", age_text, as_of)

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
    as_of = measured["as_of"]
    return _retrain(context.instance, "performance", f"performance:{as_of}", trigger, as_of)


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
    trigger = f"drift as of {as_of}: {verdict}"
    return _retrain(context.instance, "drift", f"drift:{as_of}", trigger, as_of)


def build_landing_sensor(landing_dir: Path) -> dg.SensorDefinition:
    @dg.sensor(
        name="landing_sensor",
        jobs=[scoring_job, booking_platform_job],
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Ingest each snapshot dropped into {landing_dir} "
        "(bookings_YYYY-MM-DD.csv.gz).",
    )
    def landing_sensor(context: dg.SensorEvaluationContext):
        """One run per new or changed file, oldest date first; the cursor remembers the files.

        Before any champion exists the first snapshot runs the whole graph (it trains one); the
        others only ingest and score. A bad file fails its own run and blocks nothing: each file
        has its own run key.
        """
        seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        landed, unusable = scan_landing(landing_dir)
        for reason in unusable:  # skipped on every tick until fixed; the others go on
            context.log.warning(f"landing entry skipped: {reason}")
        fresh = [
            snapshot for snapshot in landed if seen.get(snapshot.path.name) != snapshot.signature
        ]
        if not fresh:
            skipped = (
                f"; skipped {len(unusable)} unusable: {'; '.join(unusable)}" if unusable else ""
            )
            return dg.SkipReason(
                f"no new snapshot in {landing_dir} ({len(landed)} ingested){skipped}"
            )
        champion = _latest_metadata(context.instance, "registered_model") is not None
        # added here, not as a SensorResult request: run requests are checked against the
        # instance's partitions, and adding an existing key is a no-op
        context.instance.add_dynamic_partitions(
            as_of_partitions.name, [snapshot.as_of.isoformat() for snapshot in fresh]
        )
        requests = []
        for index, snapshot in enumerate(fresh):
            as_of, path, signature = snapshot.as_of, snapshot.path, snapshot.signature
            train = not champion and index == 0
            requests.append(
                dg.RunRequest(
                    run_key=f"landing:{path.name}:{signature}",
                    job_name=(booking_platform_job if train else scoring_job).name,
                    partition_key=as_of.isoformat(),
                    tags={SNAPSHOT_TAG: path.name}
                    | ({RETRAIN_REASON_TAG: "first snapshot"} if train else {}),
                )
            )
            seen[path.name] = signature
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(seen, sort_keys=True))

    return landing_sensor


@dg.sensor(
    job=scoring_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Rescore an as-of date whose champion was registered after its predictions were "
    "written (a run that ended between registered_model and batch_predictions).",
)
def predictions_level_sensor(context: dg.SensorEvaluationContext):
    instance = context.instance
    registered = instance.fetch_materializations(dg.AssetKey("registered_model"), limit=1).records
    if not registered:
        return dg.SkipReason("no registered_model yet")
    registration = registered[0]
    as_of = registration.partition_key
    rescored = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey("batch_predictions"),
            asset_partitions=[as_of],
            after_storage_id=registration.storage_id,
        ),
        limit=1,
    ).records
    if rescored:
        return dg.SkipReason(f"predictions as of {as_of} were written after the last registration")
    unfinished = instance.get_runs(dg.RunsFilter(statuses=UNFINISHED), limit=1)
    if unfinished:
        return dg.SkipReason(f"run {unfinished[0].run_id} is still going: it may score {as_of}")
    return dg.RunRequest(
        # once per registration: a rescoring that fails is not retried every minute
        run_key=f"level:{as_of}:{registration.run_id}",
        partition_key=as_of,
        tags={"booking_platform/trigger": f"predictions as of {as_of} lag its champion"},
    )
