"""The retraining sensors on a real Dagster instance: run requests, skip reasons, cooldown."""

import dagster as dg

from booking_platform.core.drift import NO_RETRAINING
from booking_platform.definitions import defs
from booking_platform.defs import metadata_keys as keys
from booking_platform.defs.jobs import MAIN_JOB_NAME, RETRAIN_REASON_TAG, RETRAINING_JOB_NAME
from booking_platform.defs.partitions import as_of_partitions
from booking_platform.defs.sensors import (
    build_staleness_sensor,
    drift_sensor,
    realised_performance_sensor,
)

sensor = build_staleness_sensor(max_age_days=90)


def _record(instance: dg.DagsterInstance, asset: str, metadata: dict[str, object]) -> None:
    """Record a materialisation as the assets do (only its metadata matters to the sensor),
    keyed by the names the assets write (metadata_keys).

    An asset materialised as of a date means that date's partition exists.
    """
    if keys.AS_OF in metadata:
        instance.add_dynamic_partitions(as_of_partitions.name, [str(metadata[keys.AS_OF])])
    instance.report_runless_asset_event(dg.AssetMaterialization(asset, metadata=metadata))


def _evaluate(sensor_def: dg.SensorDefinition, instance: dg.DagsterInstance) -> dg.SensorResult:
    # the daemon checks requested partitions against the instance; outside it, say which one
    with dg.partition_loading_context(dynamic_partitions_store=instance):
        return sensor_def.evaluate_tick(
            dg.build_sensor_context(instance=instance, definitions=defs)
        )


def _tick(instance: dg.DagsterInstance) -> dg.SensorResult:
    return _evaluate(sensor, instance)


def test_nothing_to_do_before_any_features(instance: dg.DagsterInstance) -> None:
    result = _tick(instance)
    assert not result.run_requests
    assert "no booking_features yet" in result.skip_message


def test_no_champion_requests_retraining(instance: dg.DagsterInstance) -> None:
    _record(instance, "booking_features", {keys.AS_OF: "2017-05-01"})
    (request,) = _tick(instance).run_requests
    assert request.run_key == "stale:2017-05-01:none"
    assert request.tags[RETRAIN_REASON_TAG] == "stale"
    assert "no champion" in request.tags["booking_platform/trigger"]


def test_a_young_champion_is_left_alone_and_an_old_one_retrained(
    instance: dg.DagsterInstance,
) -> None:
    _record(
        instance, "registered_model", {keys.CHAMPION_VERSION: "3", keys.TRAINED_AS_OF: "2017-05-01"}
    )
    _record(instance, "booking_features", {keys.AS_OF: "2017-07-30"})
    young = _tick(instance)
    assert not young.run_requests
    assert young.skip_message == "champion v3 is 90 days old (max 90)"

    _record(instance, "booking_features", {keys.AS_OF: "2017-08-01"})
    (request,) = _tick(instance).run_requests
    assert request.run_key == "stale:2017-08-01:3"
    assert request.tags[RETRAIN_REASON_TAG] == "stale"
    # the same evidence gives the same key, so Dagster launches it once
    (again,) = _tick(instance).run_requests
    assert again.run_key == request.run_key


def test_a_recent_retraining_run_means_cooldown(instance: dg.DagsterInstance) -> None:
    _record(
        instance, "registered_model", {keys.CHAMPION_VERSION: "1", keys.TRAINED_AS_OF: "2017-01-01"}
    )
    _record(instance, "booking_features", {keys.AS_OF: "2017-08-01"})
    instance.add_run(
        dg.DagsterRun(
            job_name=RETRAINING_JOB_NAME, run_id="a1b2c3", status=dg.DagsterRunStatus.STARTED
        )
    )
    result = _tick(instance)
    assert not result.run_requests
    assert "retraining_job run a1b2c3 is still going or recent" in result.skip_message


def test_a_main_job_still_training_is_not_doubled(instance: dg.DagsterInstance) -> None:
    # the first snapshot's run trains the first champion; until it ends, "no champion" is moot
    _record(instance, "booking_features", {keys.AS_OF: "2017-03-01"})
    instance.add_run(
        dg.DagsterRun(job_name=MAIN_JOB_NAME, run_id="d4e5f6", status=dg.DagsterRunStatus.STARTED)
    )
    result = _tick(instance)
    assert not result.run_requests
    assert "booking_platform_job run d4e5f6 is still going or recent" in result.skip_message


def test_performance_sensor_acts_only_under_the_floor(instance: dg.DagsterInstance) -> None:
    result = _evaluate(realised_performance_sensor, instance)
    assert "no realised performance yet" in result.skip_message

    _record(
        instance,
        "realised_performance",
        {keys.AS_OF: "2017-06-01", keys.WORST_RECENT_ROC_AUC: 0.86},
    )
    fine = _evaluate(realised_performance_sensor, instance)
    assert not fine.run_requests and "0.860 >= 0.8" in fine.skip_message

    _record(
        instance,
        "realised_performance",
        {
            keys.AS_OF: "2017-07-01",
            keys.WORST_RECENT_ROC_AUC: 0.71,
            keys.RECENT_MONTHS: ["2017-04", "2017-05", "2017-06"],
        },
    )
    result = _evaluate(realised_performance_sensor, instance)
    (request,) = result.run_requests
    assert request.run_key == "performance:2017-07-01"
    assert request.tags[RETRAIN_REASON_TAG] == "performance"
    assert "0.710 < 0.8" in request.tags["booking_platform/trigger"]


def test_drift_sensor_acts_only_on_a_like_with_like_verdict(instance: dg.DagsterInstance) -> None:
    def tick() -> dg.SensorResult:
        return _evaluate(drift_sensor, instance)

    assert "no drift_report yet" in tick().skip_message
    # against the champion's training sample every season drifts: not evidence to act on
    _record(
        instance,
        "drift_report",
        {
            keys.AS_OF: "2016-05-01",
            keys.SEASONAL_REFERENCE: False,
            keys.DRIFT_SHARE: 0.9,
            keys.RETRAIN_VERDICT: NO_RETRAINING,
        },
    )
    assert "no same-date-last-year reference" in tick().skip_message
    _record(
        instance,
        "drift_report",
        {
            keys.AS_OF: "2017-05-01",
            keys.SEASONAL_REFERENCE: True,
            keys.DRIFT_SHARE: 0.31,
            keys.RETRAIN_VERDICT: NO_RETRAINING,
        },
    )
    assert "within thresholds (share 0.31)" in tick().skip_message
    _record(
        instance,
        "drift_report",
        {
            keys.AS_OF: "2017-06-01",
            keys.SEASONAL_REFERENCE: True,
            keys.DRIFT_SHARE: 0.42,
            keys.RETRAIN_VERDICT: "key column(s) drifted: market_segment 0.61 "
            "(Jensen-Shannon distance)",
        },
    )
    (request,) = tick().run_requests
    assert request.run_key == "drift:2017-06-01"
    assert request.tags[RETRAIN_REASON_TAG] == "drift"
    assert "market_segment 0.61" in request.tags["booking_platform/trigger"]
