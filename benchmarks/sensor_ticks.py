"""Cost of one sensor tick against a data home where the platform has run on the real data.

Sensors must stay cheap (target: 1 s a tick): they read file names and materialisation metadata,
never recompute a report. Run `make run` first (or point BOOKING_PLATFORM_HOME at a home that has
runs); this prints the median and worst of several ticks per sensor.
"""

from __future__ import annotations

import os
import time

import dagster as dg
from _common import median
from rich.console import Console
from rich.table import Table

from booking_platform.config import load_settings
from booking_platform.definitions import build_definitions
from booking_platform.runtime import prepare_dagster_home

TICK_TARGET_SECONDS = 1.0
REPEATS = 7


def main() -> None:
    settings = load_settings()
    prepare_dagster_home(settings)
    definitions = build_definitions(settings)
    table = Table(title=f"sensor ticks against {settings.home} ({REPEATS} each)")
    for column in ("sensor", "median s", "worst s", "result of the last tick"):
        table.add_column(column)
    with dg.DagsterInstance.get() as instance:
        if not instance.get_runs(limit=1):
            raise SystemExit(f"no runs in {os.environ['DAGSTER_HOME']}: run `make run` first")
        for sensor in definitions.sensors:
            seconds, result = [], None
            for _ in range(REPEATS):
                context = dg.build_sensor_context(instance=instance, definitions=definitions)
                started = time.perf_counter()
                with dg.partition_loading_context(dynamic_partitions_store=instance):
                    result = sensor.evaluate_tick(context)
                seconds.append(time.perf_counter() - started)
            outcome = (
                f"{len(result.run_requests)} run request(s)"
                if result.run_requests
                else f"skip: {result.skip_message}"
            )
            table.add_row(sensor.name, f"{median(seconds):.3f}", f"{max(seconds):.3f}", outcome)
    Console().print(table)
    print(f"target: a tick under {TICK_TARGET_SECONDS} s")


if __name__ == "__main__":
    main()
