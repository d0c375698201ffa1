"""The landing sensor on a real instance: one run per new snapshot, a cursor, no repeats."""

import json
import os
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from booking_platform.config import Settings
from booking_platform.core.snapshots import write_snapshot
from booking_platform.core.source import read_bookings
from booking_platform.definitions import build_definitions
from booking_platform.defs.jobs import MAIN_JOB_NAME, RETRAIN_REASON_TAG, SCORING_JOB_NAME
from booking_platform.defs.partitions import as_of_partitions
from booking_platform_tests.synthetic import make_bookings, write_csv


@pytest.fixture
def landing(settings: Settings) -> Path:
    return settings.landing_dir


def _tick(settings: Settings, instance: dg.DagsterInstance, cursor: str | None = None):
    definitions = build_definitions(settings)
    sensor = definitions.resolve_sensor_def("landing_sensor")
    context = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=definitions)
    # the daemon checks requested partitions against the instance; outside it, say which one
    with dg.partition_loading_context(dynamic_partitions_store=instance):
        return sensor.evaluate_tick(context)


def _land(settings: Settings, tmp_path: Path, *dates: date) -> list[Path]:
    raw = read_bookings(write_csv(make_bookings(2000), tmp_path / "full.csv")).frame
    return [write_snapshot(raw, as_of, settings.landing_dir) for as_of in dates]


def test_each_new_snapshot_becomes_one_partitioned_run(
    settings: Settings, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    assert "no new snapshot" in _tick(settings, instance).skip_message
    _land(settings, tmp_path, date(2017, 6, 1), date(2017, 5, 1))
    (settings.landing_dir / "notes.txt").write_text("not a snapshot")

    first = _tick(settings, instance)
    older, newer = first.run_requests
    # oldest first; with no champion yet the first snapshot trains one, the next only scores
    assert (older.partition_key, older.job_name) == ("2017-05-01", MAIN_JOB_NAME)
    assert older.tags[RETRAIN_REASON_TAG] == "first snapshot"
    assert (newer.partition_key, newer.job_name) == ("2017-06-01", SCORING_JOB_NAME)
    assert newer.tags["booking_platform/snapshot"] == "bookings_2017-06-01.csv.gz"
    assert instance.get_dynamic_partitions(as_of_partitions.name) == ["2017-05-01", "2017-06-01"]
    assert sorted(json.loads(first.cursor)) == [
        "bookings_2017-05-01.csv.gz",
        "bookings_2017-06-01.csv.gz",
    ]

    again = _tick(settings, instance, cursor=first.cursor)
    assert not again.run_requests and "2 ingested" in again.skip_message

    # a file landed again (new content) is ingested again, under a new run key
    path = settings.landing_dir / "bookings_2017-06-01.csv.gz"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    (relanded,) = _tick(settings, instance, cursor=first.cursor).run_requests
    assert relanded.partition_key == "2017-06-01" and relanded.run_key != newer.run_key


def test_with_a_champion_every_snapshot_only_ingests_and_scores(
    settings: Settings, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    instance.report_runless_asset_event(
        dg.AssetMaterialization("registered_model", metadata={"champion_version": "1"})
    )
    _land(settings, tmp_path, date(2017, 5, 1), date(2017, 6, 1))
    requests = _tick(settings, instance).run_requests
    assert [r.job_name for r in requests] == [SCORING_JOB_NAME, SCORING_JOB_NAME]
