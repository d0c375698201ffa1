"""Write-audit-publish: a refused export publishes nothing (real instance, DuckDB file, MLflow)."""

from dataclasses import replace
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from booking_platform.config import Settings
from booking_platform.core import warehouse
from booking_platform.core.tables import (
    ACCEPTED_EXPORTS,
    CLEANED_BOOKINGS,
    QUARANTINED_BOOKINGS,
    RAW_BOOKINGS,
)
from booking_platform.definitions import build_definitions
from booking_platform.defs.assets.ingestion import ACCEPT_SHRINK_TAG
from booking_platform_tests.conftest import SYNTHETIC_ROWS, materialized_assets, run_job_as_of
from booking_platform_tests.synthetic import make_bookings, write_csv

TABLES = (RAW_BOOKINGS.name, CLEANED_BOOKINGS.name, QUARANTINED_BOOKINGS.name)
# ingestion only: what write-audit-publish is about, without training a model each time
INGESTION = ["raw_bookings", "cleaned_bookings", "accepted_bookings"]


def _published(settings: Settings) -> dict[str, tuple]:
    """Rows and a fingerprint of every published table: what readers see."""
    with warehouse.connect(settings.warehouse_path, read_only=True) as connection:
        return {
            table: connection.execute(
                f"SELECT count(*), sum(hash(booking_id)) FROM {table}"
            ).fetchone()
            for table in TABLES
        }


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {
        e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    }


def _run(settings: Settings, instance: dg.DagsterInstance, tags: dict[str, str] | None = None):
    """The export's ingestion only: read, stage, audit, publish."""
    return run_job_as_of(settings, instance, assets=INGESTION, tags=tags)


@pytest.fixture
def accepted(settings: Settings, instance: dg.DagsterInstance) -> dict[str, tuple]:
    """A home where a good export was accepted; its published tables."""
    assert _run(settings, instance).success
    return _published(settings)


def test_a_tiny_export_is_refused_and_publishes_nothing(
    tmp_path: Path, settings: Settings, instance: dg.DagsterInstance, accepted: dict
) -> None:
    frame = make_bookings(SYNTHETIC_ROWS)
    arrivals = frame["arrival_date_year"].astype(str) + frame["arrival_date_month"]
    # one booking that arrived before the as-of date and one after: inside the data, but tiny
    tiny = frame[
        frame.index.isin([(arrivals == "2016July").idxmax(), (arrivals == "2017July").idxmax()])
    ]
    result = _run(replace(settings, source=str(write_csv(tiny, tmp_path / "tiny.csv"))), instance)
    assert not result.success
    volume = _checks(result)["raw_bookings_volume"]
    assert not volume.passed
    assert f"2 rows against {SYNTHETIC_ROWS:,}" in volume.description
    assert "refused, it shrinks by 100.0%, more than the 20% allowed" in volume.description
    assert "--accept-shrink" in volume.description
    assert volume.metadata["rows"].value == 2
    assert len(volume.metadata["content_sha256"].value) == 64
    assert "accepted_bookings" not in materialized_assets(result)
    assert _published(settings) == accepted


def test_an_export_whose_every_row_is_invalid_is_refused(
    tmp_path: Path, settings: Settings, instance: dg.DagsterInstance, accepted: dict
) -> None:
    frame = make_bookings(SYNTHETIC_ROWS)
    frame["adr"] = -1.0
    result = _run(replace(settings, source=str(write_csv(frame, tmp_path / "bad.csv"))), instance)
    assert not result.success
    checks = _checks(result)
    assert checks["raw_bookings_volume"].passed
    assert not checks["cleaned_bookings_volume"].passed
    assert "cleaned_bookings: the export has no rows: refused" in (
        checks["cleaned_bookings_volume"].description
    )
    assert _published(settings) == accepted


def test_an_intended_shrink_is_published_with_the_tag(
    tmp_path: Path, settings: Settings, instance: dg.DagsterInstance, accepted: dict
) -> None:
    smaller = write_csv(make_bookings(SYNTHETIC_ROWS).head(8000), tmp_path / "smaller.csv")
    shrunk = replace(settings, source=str(smaller))
    refused = _run(shrunk, instance)
    assert not refused.success and not _checks(refused)["raw_bookings_volume"].passed
    assert _published(settings) == accepted

    result = _run(shrunk, instance, tags={ACCEPT_SHRINK_TAG: "true"})
    assert result.success
    volume = _checks(result)["raw_bookings_volume"]
    assert volume.passed and "accepted as intended" in volume.description
    with warehouse.connect(settings.warehouse_path, read_only=True) as connection:
        assert connection.execute(f"SELECT count(*) FROM {RAW_BOOKINGS.name}").fetchone() == (8000,)
        assert connection.execute(
            f"SELECT raw_rows, run_id FROM {ACCEPTED_EXPORTS.name}"
        ).fetchone() == (
            8000,
            result.run_id,
        )
        # nothing is left staged once published
        assert connection.execute("SELECT count(*) FROM raw_bookings__staged").fetchone() == (0,)


@pytest.mark.parametrize(
    ("as_of", "problem"),
    [
        (date(1990, 1, 1), "no booking arrived before it"),
        (date(2030, 1, 1), "no booking arrives on or after it"),
    ],
)
def test_an_as_of_outside_the_data_fails_before_writing_a_row(
    settings: Settings, instance: dg.DagsterInstance, as_of: date, problem: str
) -> None:
    result = _run(replace(settings, as_of=as_of), instance)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert failure.step_key == "raw_bookings"
    message = failure.step_failure_data.error.cause.message
    assert f"as-of date {as_of} is outside the data" in message and problem in message
    assert "arrivals run 2015-07-01 .. 2017-08-" in message
    assert not settings.warehouse_path.exists() or _no_rows(settings)


def _no_rows(settings: Settings) -> bool:
    with warehouse.connect(settings.warehouse_path, read_only=True) as connection:
        tables = [t for (t,) in connection.execute("SHOW TABLES").fetchall()]
        return all(
            connection.execute(f"SELECT count(*) FROM {t}").fetchone() == (0,) for t in tables
        )


def test_an_export_arriving_in_2030_is_refused_as_of_2017(
    tmp_path: Path, settings: Settings, instance: dg.DagsterInstance, accepted: dict
) -> None:
    frame = make_bookings(SYNTHETIC_ROWS)
    frame["arrival_date_year"] = 2030
    result = _run(replace(settings, source=str(write_csv(frame, tmp_path / "2030.csv"))), instance)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert (
        "as-of date 2017-05-01 is outside the data" in failure.step_failure_data.error.cause.message
    )
    assert _published(settings) == accepted


def test_the_read_copy_follows_each_successful_run(
    settings: Settings, instance: dg.DagsterInstance
) -> None:
    definitions = build_definitions(settings)
    sensor = definitions.resolve_sensor_def("read_copy_sensor")

    def tick(cursor: str | None):  # noqa: ANN202 (the tick's result)
        context = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=definitions)
        return sensor.evaluate_tick(context)

    started = tick(None)  # a run status sensor starts from now
    assert _run(settings, instance).success
    assert not settings.read_copy_path.exists()
    tick(started.cursor)
    with warehouse.connect(settings.read_copy_path, read_only=True) as connection:
        assert connection.execute(f"SELECT count(*) FROM {RAW_BOOKINGS.name}").fetchone() == (
            SYNTHETIC_ROWS,
        )
