"""The one Definitions object Dagit, the daemon, the CLI and the tests load."""

import warnings

import dagster as dg

from booking_platform.config import Settings, load_settings
from booking_platform.defs import checks, schedules
from booking_platform.defs.assets import (
    analysis,
    demand,
    features,
    ingestion,
    modeling,
    monitoring,
    predictions,
    serving,
)
from booking_platform.defs.dead_runs import dead_run_sensor
from booking_platform.defs.executors import build_executor
from booking_platform.defs.failures import run_failure_recorder
from booking_platform.defs.jobs import (
    booking_platform_job,
    model_search_job,
    retraining_job,
    scoring_job,
)
from booking_platform.defs.read_copy import build_read_copy_sensor
from booking_platform.defs.resources import build_resources
from booking_platform.defs.sensors import (
    build_landing_sensor,
    build_staleness_sensor,
    drift_sensor,
    predictions_level_sensor,
    realised_performance_sensor,
)


def _assets() -> list[dg.AssetsDefinition]:
    """Every asset, each linked to its source in Dagit ("Code references")."""
    # beta in Dagster 1.13: its warning would be printed by every command that loads these
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        return dg.with_source_code_references(
            dg.load_assets_from_modules(
                [ingestion, analysis, features, modeling, monitoring, predictions, serving, demand]
            )
        )


def build_definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=_assets(),
        asset_checks=dg.load_asset_checks_from_modules([checks]),
        jobs=[booking_platform_job, scoring_job, retraining_job, model_search_job],
        schedules=[
            schedules.daily_scoring_schedule,
            schedules.weekly_retraining_schedule,
            schedules.monthly_model_search_schedule,
        ],
        sensors=[
            build_staleness_sensor(settings.champion_max_age_days),
            realised_performance_sensor,
            drift_sensor,
            build_landing_sensor(settings.landing_dir),
            predictions_level_sensor,
            # a DuckDB file needs the analysts' copy; PostgreSQL readers never block its writers
            *(
                []
                if settings.warehouse_url
                else [
                    build_read_copy_sensor(
                        settings.warehouse_path, settings.warehouse_lock_wait_seconds
                    )
                ]
            ),
            dead_run_sensor,
            run_failure_recorder,
        ],
        resources=build_resources(settings),
        executor=build_executor(settings),
    )


defs = build_definitions(load_settings())
