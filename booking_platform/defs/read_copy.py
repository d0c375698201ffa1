"""The analysts' read copy of the warehouse, published after each successful run.

DuckDB lets no process open a file another process writes, and no writer open one that another
process reads: an analyst's open connection on warehouse.duckdb would fail every run. Analysts
read `warehouse_read.duckdb` instead, replaced whole (written beside it, then renamed) after
each successful run, so it always shows a run's complete state and never blocks the next run.
`booking-platform run` and `backfill` publish it themselves; this sensor does it for runs the
daemon launches (and for any other run it sees succeed).
"""

from pathlib import Path

import dagster as dg

from booking_platform.core.warehouse import publish_read_copy


def build_read_copy_sensor(warehouse_path: Path, lock_wait_seconds: float) -> dg.SensorDefinition:
    @dg.run_status_sensor(
        name="read_copy_sensor",
        run_status=dg.DagsterRunStatus.SUCCESS,
        minimum_interval_seconds=10,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"After each successful run, replace the analysts' copy of {warehouse_path}.",
    )
    def read_copy_sensor(context: dg.RunStatusSensorContext) -> dg.SkipReason | None:
        if not warehouse_path.exists():
            return dg.SkipReason(f"run {context.dagster_run.run_id} wrote no warehouse yet")
        copy = publish_read_copy(warehouse_path, lock_wait_seconds)
        context.log.info(f"published {copy} after run {context.dagster_run.run_id}")
        return None

    return read_copy_sensor
