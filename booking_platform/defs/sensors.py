"""Sensors that ingest landed snapshots and request retraining.

They read file names and materialisation metadata only, so a tick is cheap.

The three retraining sensors (staleness, realised performance, drift) each pass the evidence
they watch to core/retraining.decide, the policy the backtest simulates too, and act on its
decision. The landing sensor turns a new PMS snapshot in the landing folder into a partition and a
run that ingests it.
Predictions level: a run registered a champion for a date and ended before scoring that date
(killed, or failed in between): that date is scored again with the champion as of it.
"""

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg

from booking_platform.core.drift import NO_RETRAINING
from booking_platform.core.retraining import (
    MIN_MONTH_BOOKINGS,
    REALISED_AUC_FLOOR,
    RECENT_MONTHS,
    Champion,
    Decision,
    DriftEvidence,
    Evidence,
    RecentPerformance,
    RetrainingPolicy,
    decide,
)
from booking_platform.core.snapshots import scan_landing
from booking_platform.defs import metadata_keys as keys
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
    instance: dg.DagsterInstance, decision: Decision, run_key: str, as_of: object
) -> dg.RunRequest | dg.SkipReason:
    """Request retraining as of `as_of` with its reason, unless one is recent (cooldown)."""
    running = _cooling_down(instance)
    if running is not None:
        return dg.SkipReason(
            f"{decision.reason}, but {running.job_name} run {running.run_id} "
            "is still going or recent"
        )
    return dg.RunRequest(
        run_key=run_key,
        partition_key=str(as_of),
        tags={
            RETRAIN_REASON_TAG: str(decision.trigger),
            "booking_platform/trigger": decision.reason,
        },
    )


def build_staleness_sensor(max_age_days: int) -> dg.SensorDefinition:
    policy = RetrainingPolicy(max_age_days=max_age_days)

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
        as_of = date.fromisoformat(str(features[keys.AS_OF]))
        registered = _latest_metadata(context.instance, "registered_model")
        champion = (
            Champion(trained_as_of=None)
            if registered is None
            else Champion(
                trained_as_of=date.fromisoformat(str(registered[keys.TRAINED_AS_OF])),
                version=str(registered[keys.CHAMPION_VERSION]),
            )
        )
        decision = decide(Evidence(as_of, champion=champion), policy)
        if not decision.retrain:
            return dg.SkipReason(decision.reason)
        # one retraining per (data as-of, champion): the key de-duplicates repeated ticks
        run_key = f"stale:{as_of}:{champion.version or 'none'}"
        return _retrain(context.instance, decision, run_key, as_of)

    return champion_staleness_sensor


@dg.sensor(
    job=retraining_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=f"Retrain when the worst realised ROC AUC of the last {RECENT_MONTHS} months "
    f"with at least {MIN_MONTH_BOOKINGS} arrivals is under {REALISED_AUC_FLOOR}.",
)
def realised_performance_sensor(context: dg.SensorEvaluationContext):
    measured = _latest_metadata(context.instance, "realised_performance")
    if measured is None or keys.WORST_RECENT_ROC_AUC not in measured:
        return dg.SkipReason("no realised performance yet: scored bookings have not arrived")
    performance = RecentPerformance(
        worst_roc_auc=float(measured[keys.WORST_RECENT_ROC_AUC]),
        months=list(measured.get(keys.RECENT_MONTHS) or []),
    )
    as_of = measured[keys.AS_OF]
    decision = decide(
        Evidence(date.fromisoformat(str(as_of)), performance=performance), RetrainingPolicy()
    )
    if not decision.retrain:
        return dg.SkipReason(decision.reason)
    return _retrain(context.instance, decision, f"performance:{as_of}", as_of)


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
    as_of, verdict = report[keys.AS_OF], str(report.get(keys.RETRAIN_VERDICT, ""))
    evidence = DriftEvidence(
        seasonal_reference=bool(report.get(keys.SEASONAL_REFERENCE)),
        verdict=None if verdict in ("", NO_RETRAINING) else verdict,
        share=float(report.get(keys.DRIFT_SHARE, 0.0)),
    )
    decision = decide(Evidence(date.fromisoformat(str(as_of)), drift=evidence), RetrainingPolicy())
    if not decision.retrain:
        return dg.SkipReason(decision.reason)
    return _retrain(context.instance, decision, f"drift:{as_of}", as_of)


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
