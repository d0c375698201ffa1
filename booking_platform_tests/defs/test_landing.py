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
from booking_platform_tests.conftest import run_main_job
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


def test_an_unreadable_entry_is_skipped_and_the_others_are_ingested(
    settings: Settings, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    """A dangling link, a link out of the folder, a folder named like a snapshot: each is
    skipped with its reason on every tick, and the good snapshots still become runs."""
    good_may, good_june, outside = _land(
        settings, tmp_path, date(2017, 5, 1), date(2017, 6, 1), date(2017, 7, 1)
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    outside.rename(elsewhere / outside.name)
    landing = settings.landing_dir
    (landing / "bookings_2017-07-01.csv.gz").symlink_to(elsewhere / outside.name)
    (landing / "bookings_2017-08-01.csv.gz").symlink_to(landing / "removed.csv.gz")
    (landing / "bookings_2017-09-01.csv").mkdir()
    # a link that stays inside the landing folder is an ordinary snapshot
    (landing / "bookings_2017-04-01.csv.gz").symlink_to(good_may.name)

    result = _tick(settings, instance)
    assert [r.partition_key for r in result.run_requests] == [
        "2017-04-01",
        "2017-05-01",
        "2017-06-01",
    ]
    assert instance.get_dynamic_partitions(as_of_partitions.name) == [
        "2017-04-01",
        "2017-05-01",
        "2017-06-01",
    ]
    again = _tick(settings, instance, cursor=result.cursor)
    assert not again.run_requests
    message = again.skip_message
    assert "skipped 3 unusable" in message
    assert "bookings_2017-07-01.csv.gz: a link to" in message and "outside the landing" in message
    assert "bookings_2017-08-01.csv.gz: cannot be read" in message
    assert "bookings_2017-09-01.csv: not a regular file" in message
    assert good_june.exists()


def test_raw_bookings_refuses_a_landed_link_out_of_the_folder(
    settings: Settings, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    """The run for a date whose landed file is a link elsewhere fails; it never reads that
    file, nor the configured source in its place."""
    elsewhere = tmp_path / "secret.csv"
    write_csv(make_bookings(500), elsewhere)
    settings.landing_dir.mkdir(parents=True)
    (settings.landing_dir / "bookings_2017-05-01.csv").symlink_to(elsewhere)
    result = run_main_job(settings, instance)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert failure.step_key == "raw_bookings"
    assert "outside the landing folder" in failure.step_failure_data.error.cause.message
