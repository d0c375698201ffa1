from datetime import date
from pathlib import Path

import pytest

from booking_platform.config import DEFAULT_AS_OF, PUBLIC_SOURCE_URL, load_settings


def test_everything_lives_under_the_home(tmp_path: Path) -> None:
    settings = load_settings({"BOOKING_PLATFORM_HOME": str(tmp_path / "h")})
    home = tmp_path / "h"
    assert settings.home == home
    for path in (
        settings.warehouse_path,
        settings.mlflow_artifact_root,
        settings.dagster_home,
        settings.reports_dir,
        settings.cache_dir,
    ):
        assert home in path.parents
    assert settings.mlflow_tracking_uri == f"sqlite:///{home}/mlflow/mlflow.db"
    assert settings.as_of == date.fromisoformat(DEFAULT_AS_OF)


def test_source_defaults_to_a_local_copy_then_the_public_url(tmp_path: Path) -> None:
    assert load_settings({"BOOKING_PLATFORM_HOME": str(tmp_path)}).source == PUBLIC_SOURCE_URL
    (tmp_path / "raw").mkdir()
    local = tmp_path / "raw" / "hotel_bookings.csv.zip"
    local.write_bytes(b"")
    assert load_settings({"BOOKING_PLATFORM_HOME": str(tmp_path)}).source == str(local)
    chosen = load_settings({"BOOKING_PLATFORM_HOME": str(tmp_path), "BOOKINGS_SOURCE": "x.csv"})
    assert chosen.source == str(Path("x.csv").resolve())


def test_a_bad_as_of_date_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="BOOKINGS_AS_OF must be YYYY-MM-DD, got '2017-13-01'"):
        load_settings({"BOOKINGS_AS_OF": "2017-13-01"})


def test_champion_max_age_is_configurable() -> None:
    assert load_settings({}).champion_max_age_days == 60
    assert load_settings({"CHAMPION_MAX_AGE_DAYS": "30"}).champion_max_age_days == 30
