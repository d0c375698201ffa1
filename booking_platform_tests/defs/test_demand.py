"""net_demand and estimated_performance on a real Dagster instance and DuckDB file (synthetic
data): the table, its realised companion, one-transaction slices, the plot, the CLI command."""

from dataclasses import replace
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest

from booking_platform.cli import main
from booking_platform.config import Settings
from booking_platform.core import warehouse
from booking_platform.core.cleaning import clean_bookings
from booking_platform.core.net_demand import (
    CHOICE_FLAGS,
    DEFAULT_HORIZON_DAYS,
    DEFAULT_SHOCK_SD,
    SHOCK_GRID,
    choose_shock,
    graded_grids,
    mark_choices,
    realised_occupancy,
    shock_record,
    taken_from_grid,
)
from booking_platform.core.source import read_bookings
from booking_platform.core.tables import NET_DEMAND, NET_DEMAND_REALISED, NET_DEMAND_SHOCK_GRID
from booking_platform_tests.conftest import SYNTHETIC_ROWS, run_main_job
from booking_platform_tests.postgres import fresh_database
from booking_platform_tests.synthetic import make_bookings, write_csv

MAY, JULY = date(2017, 5, 1), date(2017, 7, 1)


@pytest.fixture(scope="module")
def demand_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, list]:
    """The main job as of 2017-05-01, then as of 2017-07-01 (whose export grades May's nights);
    returns the settings and the net_demand materialisation metadata of May's run and July's."""
    root = tmp_path_factory.mktemp("demand")
    source = write_csv(make_bookings(SYNTHETIC_ROWS), root / "bookings.csv")
    settings = Settings(home=root / "home", source=str(source), as_of=MAY)
    runs = []
    with dg.instance_for_test() as instance:
        for as_of in (MAY, JULY):
            runs.append(run_main_job(replace(settings, as_of=as_of), instance))
            assert runs[-1].success
    metadata = [
        e.step_materialization_data.materialization.metadata
        for run in runs
        for e in run.get_asset_materialization_events()
        if e.step_materialization_data.materialization.asset_key == dg.AssetKey("net_demand")
    ]
    return settings, metadata


def _slice(settings: Settings, table: str, as_of: date) -> pd.DataFrame:
    with warehouse.connect(settings.warehouse_path, read_only=True) as connection:
        return warehouse.read_slice(connection, table, as_of)


def test_net_demand_holds_every_night_of_the_horizon_per_hotel(demand_home: tuple) -> None:
    settings, _ = demand_home
    nights = _slice(settings, NET_DEMAND.name, MAY)
    assert len(nights) == 2 * DEFAULT_HORIZON_DAYS
    assert set(nights["hotel"]) == {"City Hotel", "Resort Hotel"}
    first = pd.to_datetime(nights["night"]).min()
    assert first == pd.Timestamp(MAY)
    assert (nights["expected_occupied"] <= nights["rooms_booked"] + 1e-9).all()
    assert np.allclose(
        nights["expected_occupied"] + nights["expected_cancellations"], nights["rooms_booked"]
    )
    assert (nights["occupied_95_low"] <= nights["occupied_80_low"]).all()
    assert (nights["occupied_80_low"] <= nights["occupied_80_high"]).all()
    assert (nights["occupied_80_high"] <= nights["occupied_95_high"]).all()
    assert (nights["occupied_95_high"] <= nights["rooms_booked"]).all()
    assert (nights["headroom"] >= 0).all() and (nights["model_version"] == "1").all()
    # a night's expected cancellations: the sum of the stored probabilities of its bookings
    scores = _slice(settings, "predictions", MAY)
    cleaned = clean_bookings(read_bookings(Path(settings.source)).frame).cleaned
    scored = scores.merge(cleaned, on="booking_id")
    staying = scored[
        (scored["hotel"] == "City Hotel")
        & (scored["arrival_date"] == pd.Timestamp(MAY))
        & (scored["stays_in_weekend_nights"] + scored["stays_in_week_nights"] > 0)
    ]
    night = nights[(nights["hotel"] == "City Hotel") & (pd.to_datetime(nights["night"]) == first)]
    assert night["expected_cancellations"].item() == pytest.approx(
        staying["cancel_probability"].sum()
    )


def test_a_later_export_fills_in_the_realised_rooms(demand_home: tuple) -> None:
    settings, _ = demand_home
    realised = _slice(settings, NET_DEMAND_REALISED.name, MAY)
    nights = pd.to_datetime(realised["night"])
    # July's export knows every night of May and June: 61 nights per hotel
    assert len(realised) == 2 * 61 and nights.max() == pd.Timestamp("2017-06-30")
    final = clean_bookings(read_bookings(Path(settings.source)).frame).cleaned
    expected = realised_occupancy(final, MAY, pd.Timestamp(JULY))
    merged = realised.assign(night=nights).merge(
        expected, on=["hotel", "night"], how="left", suffixes=("", "_expected")
    )
    assert (merged["realised_occupied"] == merged["realised_occupied_expected"].fillna(0)).all()
    assert merged["realised_occupied"].sum() > 0
    # the July forecast's own nights are not known yet, and May's forecast is kept beside it
    assert _slice(settings, NET_DEMAND_REALISED.name, JULY).empty
    assert len(_slice(settings, NET_DEMAND.name, MAY)) == 2 * DEFAULT_HORIZON_DAYS
    assert len(_slice(settings, NET_DEMAND.name, JULY)) == 2 * DEFAULT_HORIZON_DAYS


def test_each_hotel_takes_the_shocks_its_earlier_forecasts_realised_nights_chose(
    demand_home: tuple,
) -> None:
    settings, (may_metadata, july_metadata) = demand_home
    may, july = (_slice(settings, NET_DEMAND_SHOCK_GRID.name, d) for d in (MAY, JULY))
    for grid in (may, july):
        assert len(grid) == 2 * DEFAULT_HORIZON_DAYS * len(SHOCK_GRID)
        assert sorted(grid["shock_sd"].unique()) == list(SHOCK_GRID)
    # May had no earlier forecast: the default, and the materialisation says so
    for flag in CHOICE_FLAGS:
        assert (may.loc[may[flag], "shock_sd"] == DEFAULT_SHOCK_SD).all()
    assert may_metadata["shared_shock"].value["City Hotel"]["how"].startswith("default")
    # July chose on May's nights that had passed by July 1 (61 per hotel and shock)
    realised = _slice(settings, NET_DEMAND_REALISED.name, MAY)
    graded = may.merge(realised, on=["hotel", "night"])
    choices = {
        hotel: choose_shock(graded[graded["hotel"] == hotel])
        for hotel in ("City Hotel", "Resort Hotel")
    }
    for hotel, choice in choices.items():
        # the synthetic bookings' nights choose another shock than the default
        assert choice.nights == 61 and choice.intervals != DEFAULT_SHOCK_SD
        # the materialisation says how the chosen shocks did on those nights
        note = july_metadata["shared_shock"].value[hotel]
        record = shock_record(graded[graded["hotel"] == hotel])
        assert note["intervals_shock_sd"] == choice.intervals
        assert note["headroom_shock_sd"] == choice.headroom
        assert note["on_those_nights"] == {
            "inside_80_interval": pytest.approx(record.loc[choice.intervals, "covered_80"]),
            "inside_95_interval": pytest.approx(record.loc[choice.intervals, "covered_95"]),
            "headroom_walked_a_guest": pytest.approx(record.loc[choice.headroom, "walked"]),
        }
    expected = mark_choices(july.drop(columns=list(CHOICE_FLAGS)), choices)
    pd.testing.assert_frame_equal(july, expected)
    # the table holds the chosen shocks' rows of the grid
    pd.testing.assert_frame_equal(
        _slice(settings, NET_DEMAND.name, JULY).drop(columns="model_version"),
        taken_from_grid(july),
    )


def test_postgresql_grades_the_same_nights_as_duckdb(demand_home: tuple) -> None:
    """The query the shocks are chosen on, on the cluster profile's warehouse."""
    settings, _ = demand_home
    with warehouse.connect(settings.warehouse_path, read_only=True) as duck:
        expected = graded_grids(duck, JULY)
        stored = [NET_DEMAND_SHOCK_GRID.name, NET_DEMAND_REALISED.name]
        slices = {name: warehouse.read_slice(duck, name, MAY) for name in stored}
    with fresh_database() as url, warehouse.connect(url) as postgres:
        assert graded_grids(postgres, JULY).empty  # nothing stored yet
        warehouse.replace_slices(postgres, MAY, slices)
        graded = graded_grids(postgres, JULY)
    assert len(expected) == 2 * 61 * len(SHOCK_GRID)
    pd.testing.assert_frame_equal(graded, expected, check_dtype=False)


def test_a_failed_replacement_keeps_the_old_slice(demand_home: tuple, tmp_path: Path) -> None:
    settings, _ = demand_home
    copy = tmp_path / "warehouse.duckdb"
    copy.write_bytes(settings.warehouse_path.read_bytes())
    with warehouse.connect(copy) as connection:
        before = warehouse.read_slice(connection, NET_DEMAND.name, MAY)
        good = before.assign(expected_occupied=0.0)
        bad = before.assign(night="not a date")
        with pytest.raises(duckdb.Error):
            # the good half of the replacement is rolled back with the bad half
            warehouse.replace_slices(
                connection, MAY, {NET_DEMAND_REALISED.name: good.head(3), NET_DEMAND.name: bad}
            )
        after = warehouse.read_slice(connection, NET_DEMAND.name, MAY)
        pd.testing.assert_frame_equal(after, before)
        assert len(warehouse.read_slice(connection, NET_DEMAND_REALISED.name, MAY)) == 2 * 61
        # a rerun of the same as-of replaces its rows, it does not add to them
        warehouse.replace_slices(connection, MAY, {NET_DEMAND.name: good})
        again = warehouse.read_slice(connection, NET_DEMAND.name, MAY)
        assert len(again) == len(before) and (again["expected_occupied"] == 0).all()
        assert len(warehouse.read_slice(connection, NET_DEMAND.name, JULY)) == len(before)


def test_the_materialisation_shows_a_plot_per_hotel(demand_home: tuple) -> None:
    _, (metadata, _) = demand_home
    for hotel in ("City Hotel", "Resort Hotel"):
        plot = metadata[f"plot_{hotel}"].value
        assert "data:image/png;base64," in plot and "rooms_booked" in plot
    assert "bookings made later are not counted" in metadata["scope"].value


def test_estimated_performance_per_arrival_month(demand_home: tuple) -> None:
    settings, _ = demand_home
    table = _slice(settings, "estimated_performance", MAY)
    assert table["arrival_month"].iloc[0] == "2017-05"
    assert table["estimated_roc_auc"].between(0.5, 1).all()
    assert (table["estimated_roc_auc_low"] <= table["estimated_roc_auc_high"]).all()
    scores = _slice(settings, "predictions", MAY)
    assert table["bookings"].sum() == len(scores)
    assert table["expected_cancellations"].sum() == pytest.approx(
        scores["cancel_probability"].sum()
    )


@pytest.fixture
def demand_env(demand_home: tuple, monkeypatch: pytest.MonkeyPatch) -> Settings:
    settings, _ = demand_home
    monkeypatch.setenv("BOOKING_PLATFORM_HOME", str(settings.home))
    monkeypatch.setenv("BOOKINGS_SOURCE", settings.source)
    monkeypatch.setenv("COLUMNS", "200")
    return settings


def test_demand_command_prints_the_nights(
    demand_env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["demand", "--hotel", "City Hotel", "--from", "2017-05-01", "--to", "2017-05-31"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "Mon 2017-05-01" in out and "Wed 2017-05-31" in out and "Thu 2017-06-01" not in out
    # realised rooms are shown: July's export graded May's nights
    nights = _slice(demand_env, NET_DEMAND_REALISED.name, MAY)
    first = nights[(nights["hotel"] == "City Hotel")].sort_values("night").iloc[0]
    row = next(line for line in out.splitlines() if "Mon 2017-05-01" in line)
    cells = [cell.strip() for cell in row.strip().strip("│").split("│")]
    assert cells[-1] == str(first["realised_occupied"])
    # May's forecast took the default
    default = f"{DEFAULT_SHOCK_SD:g}"
    caption = f"shared shock sd {default} for the intervals, {default} for the headroom"
    assert caption in " ".join(out.split())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--hotel", "Beach Hotel", "--from", "2017-05-01", "--to", "2017-05-31"], "unknown hotel"),
        (["--hotel", "City Hotel", "--from", "2017-05-31", "--to", "2017-05-01"], "is after"),
        (["--hotel", "City Hotel", "--from", "2016-01-01", "--to", "2016-01-31"], "no net demand"),
    ],
)
def test_demand_command_refuses_in_one_line(
    demand_env: Settings, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["demand", *args]) == 2
    out = capsys.readouterr().out.strip()
    assert message in out and len(out.splitlines()) == 1


def test_demand_says_when_a_forecast_predates_the_shock_grid(
    demand_env: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # a warehouse written before the grid was kept: the same forecast, no grid table
    older = replace(demand_env, home=tmp_path)
    older.warehouse_path.write_bytes(demand_env.warehouse_path.read_bytes())
    with duckdb.connect(str(older.warehouse_path)) as connection:
        connection.execute(f"DROP TABLE {NET_DEMAND_SHOCK_GRID.name}")
    monkeypatch.setenv("BOOKING_PLATFORM_HOME", str(tmp_path))
    args = ["demand", "--hotel", "City Hotel", "--from", "2017-05-01", "--to", "2017-05-03"]
    assert main(args) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "Mon 2017-05-01" in out
    assert "shared shock not recorded (the forecast predates the shock grid)" in out
    assert "nan" not in out
