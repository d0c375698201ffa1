"""Shared fixtures: a synthetic source, a temporary data home, and the real data when present."""

import os
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from booking_platform.config import Settings
from booking_platform.definitions import build_definitions
from booking_platform.defs.jobs import MAIN_JOB_NAME
from booking_platform.runtime import execute_as_of
from booking_platform_tests.synthetic import make_bookings, write_csv

REPO_ROOT = Path(__file__).resolve().parent.parent
SYNTHETIC_AS_OF = date(2017, 5, 1)
# the seven assets of the design card, the step publishing the audited export (write-audit-
# publish), and the upstream assets of each (its lineage)
SEVEN_ASSETS_UPSTREAM = {
    "raw_bookings": set(),
    "cleaned_bookings": {"raw_bookings"},
    "accepted_bookings": {"cleaned_bookings"},
    "booking_features": {"accepted_bookings"},
    "drift_report": {"booking_features"},
    "candidate_model": {"booking_features"},
    "registered_model": {"candidate_model"},
    "batch_predictions": {"booking_features", "registered_model"},
}
SEVEN_ASSETS = set(SEVEN_ASSETS_UPSTREAM)
# the seven of the design card, the realised performance of past scores, the analysis, and
# what the revenue team plans with (net demand) and the estimate of quality before labels
ALL_ASSETS = SEVEN_ASSETS | {
    "realised_performance",
    "eda_report",
    "ab_test_report",
    "net_demand",
    "estimated_performance",
}
# launched on its own (model_search_job), never by the main job
MODEL_SEARCH_ASSET = "model_search"
SYNTHETIC_ROWS = 12000  # enough for a 2-month holdout of ~900 rows and a calibrated model


@pytest.fixture
def synthetic_source(tmp_path: Path) -> Path:
    return write_csv(make_bookings(SYNTHETIC_ROWS), tmp_path / "bookings.csv")


@pytest.fixture
def settings(tmp_path: Path, synthetic_source: Path) -> Settings:
    return Settings(home=tmp_path / "home", source=str(synthetic_source), as_of=SYNTHETIC_AS_OF)


def run_job_as_of(
    settings: Settings,
    instance: dg.DagsterInstance,
    job_name: str = MAIN_JOB_NAME,
    assets: list[str] | None = None,
    tags: dict[str, str] | None = None,
    run_config: dict | None = None,
) -> dg.ExecuteInProcessResult:
    """Run a job (or some of its assets: a run that died after them) as of the settings' date,
    its partition added first, as the CLI does."""
    job = build_definitions(settings).resolve_job_def(job_name)
    return execute_as_of(
        instance, job, str(settings.as_of), tags=tags, run_config=run_config, assets=assets
    )


def run_main_job(
    settings: Settings,
    instance: dg.DagsterInstance,
    params_json: str = "{}",
    calibrate: bool = True,
) -> dg.ExecuteInProcessResult:
    """Run the main job as of the settings' date, as `make run` does (LightGBM overrides and
    calibration on or off too)."""
    config = {"params_json": params_json, "calibrate": calibrate}
    return run_job_as_of(
        settings, instance, run_config={"ops": {"candidate_model": {"config": config}}}
    )


def materialized_assets(result: dg.ExecuteInProcessResult) -> set[str]:
    return {
        e.step_materialization_data.materialization.asset_key.to_user_string()
        for e in result.get_asset_materialization_events()
    }


@pytest.fixture
def instance() -> dg.DagsterInstance:
    with dg.instance_for_test() as test_instance:
        yield test_instance


@pytest.fixture(scope="session")
def real_source() -> Path:
    """The real Hotel Booking Demand file; missing it fails under REQUIRE_REAL_DATA=1."""
    candidates = [
        os.environ.get("BOOKINGS_SOURCE", ""),
        str(REPO_ROOT.parent / "shared" / "data" / "hotel_bookings.csv.zip"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    message = f"real data not found (BOOKINGS_SOURCE or {candidates[1]})"
    if os.environ.get("REQUIRE_REAL_DATA") == "1":
        pytest.fail(message)
    pytest.skip(message)
