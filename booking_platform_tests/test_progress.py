"""Progress lines and bar from a real Dagster run's events (synthetic data)."""

import io
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import dagster as dg
from rich.console import Console

from booking_platform.config import Settings
from booking_platform.defs.assets.ingestion import cleaned_bookings, raw_bookings
from booking_platform.defs.partitions import as_of_partitions
from booking_platform.defs.resources import build_resources
from booking_platform.progress import job_step_count, run_progress, task_progress

AS_OF = "2017-05-01"


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=100, force_terminal=False), out


def test_a_run_shows_each_step_as_it_finishes(
    settings: Settings, instance: dg.DagsterInstance
) -> None:
    definitions = dg.Definitions(
        assets=[raw_bookings, cleaned_bookings],
        jobs=[dg.define_asset_job("ingest", executor_def=dg.in_process_executor)],
        resources=build_resources(settings),
    )
    job = definitions.resolve_job_def("ingest")
    console, out = _console()
    run_id = str(uuid.uuid4())
    assert job_step_count(job) == 2
    instance.add_dynamic_partitions(as_of_partitions.name, [AS_OF])
    with run_progress(instance, run_id, job_step_count(job), console) as listener:
        assert job.execute_in_process(instance=instance, run_id=run_id, partition_key=AS_OF).success
    text = out.getvalue()
    assert text.index("done raw_bookings (") < text.index("done cleaned_bookings (")
    assert "2/2" in text and listener.failed == []


def test_a_failed_step_is_named(
    settings: Settings, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    missing = replace(settings, source=str(tmp_path / "nowhere.csv"))
    definitions = dg.Definitions(
        assets=[raw_bookings],
        jobs=[dg.define_asset_job("ingest", executor_def=dg.in_process_executor)],
        resources=build_resources(missing),
    )
    job = definitions.resolve_job_def("ingest")
    console, out = _console()
    run_id = str(uuid.uuid4())
    instance.add_dynamic_partitions(as_of_partitions.name, [AS_OF])
    with run_progress(instance, run_id, 1, console) as listener:
        result = job.execute_in_process(
            instance=instance, run_id=run_id, partition_key=AS_OF, raise_on_error=False
        )
    assert not result.success
    assert listener.failed == ["raw_bookings"]
    assert "FAILED raw_bookings (" in out.getvalue()


def test_task_progress_counts_units_of_work() -> None:
    console, out = _console()
    with task_progress("replaying", total=3, console=console) as advance:
        for month in ("2017-01", "2017-02", "2017-03"):
            advance(f"as of {month}")
    text = out.getvalue()
    assert [line for line in text.splitlines() if line.startswith("done")] == [
        "done as of 2017-01",
        "done as of 2017-02",
        "done as of 2017-03",
    ]
    assert "3/3" in text


def test_checks_of_one_multi_asset_check_count_as_one_step(instance: dg.DagsterInstance) -> None:
    """The main job's bar ended at 20/23: batch_predictions_checks holds several checks in one
    step, and each check was counted as a step."""

    @dg.asset
    def rows() -> int:
        return 3

    @dg.multi_asset_check(
        specs=[dg.AssetCheckSpec("positive", asset=rows), dg.AssetCheckSpec("small", asset=rows)]
    )
    def rows_checks() -> Iterator[dg.AssetCheckResult]:
        yield dg.AssetCheckResult(check_name="positive", asset_key="rows", passed=True)
        yield dg.AssetCheckResult(check_name="small", asset_key="rows", passed=True)

    job = dg.Definitions(
        assets=[rows],
        asset_checks=[rows_checks],
        jobs=[dg.define_asset_job("checked", executor_def=dg.in_process_executor)],
    ).resolve_job_def("checked")
    console, out = _console()
    run_id = str(uuid.uuid4())
    with run_progress(instance, run_id, job_step_count(job), console):
        assert job.execute_in_process(instance=instance, run_id=run_id).success
    assert job_step_count(job) == 2 and "2/2" in out.getvalue()
