from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from booking_platform.core import warehouse
from booking_platform.core.cleaning import clean_bookings
from booking_platform.core.source import read_bookings
from booking_platform_tests.postgres import fresh_database
from booking_platform_tests.synthetic import make_bookings, write_csv


@pytest.fixture(params=["duckdb", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The same promises on both stores: a DuckDB file and a fresh PostgreSQL database."""
    if request.param == "duckdb":
        yield str(tmp_path / "w.duckdb")
    else:
        with fresh_database() as url:
            yield url


def _predictions(as_of: date, ids: list[int], probability: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "booking_id": ids,
            "cancel_probability": probability,
            "predicted_cancel": probability >= 0.5,
            "threshold": 0.5,
            "model_version": "1",
            "as_of": as_of,
            "scored_at": pd.Timestamp("2026-01-01"),
        }
    )


def test_predictions_for_an_as_of_are_replaced_and_others_kept(location: str) -> None:
    path = location
    may, june = date(2017, 5, 1), date(2017, 6, 1)
    with warehouse.connect(path) as connection:
        warehouse.replace_predictions(connection, may, _predictions(may, [1, 2, 3], 0.2))
        warehouse.replace_predictions(connection, june, _predictions(june, [4, 5], 0.7))
        warehouse.replace_predictions(connection, may, _predictions(may, [1, 2], 0.9))
        rows = connection.execute(
            "SELECT as_of, count(*), max(cancel_probability) FROM predictions "
            "GROUP BY as_of ORDER BY as_of"
        ).fetchall()
    assert rows == [(may, 2, 0.9), (june, 2, 0.7)]
    with warehouse.connect(path, read_only=True) as connection:
        latest = warehouse.latest_predictions(connection, limit=10)
    assert latest["booking_id"].tolist() == [4, 5]


def test_a_failed_replacement_keeps_the_old_rows(location: str) -> None:
    path = location
    may = date(2017, 5, 1)
    with warehouse.connect(path) as connection:
        warehouse.replace_predictions(connection, may, _predictions(may, [1, 2, 3], 0.2))
        broken = _predictions(may, [7, 8], 0.4).assign(booking_id=[None, None])  # NOT NULL
        with pytest.raises(Exception, match="(?i)not.null"):
            warehouse.replace_predictions(connection, may, broken)
        kept = connection.execute("SELECT booking_id FROM predictions ORDER BY 1").fetchall()
    assert kept == [(1,), (2,), (3,)]


def test_tables_are_replaced_together_or_not_at_all(location: str) -> None:
    with warehouse.connect(location) as connection:
        warehouse.replace_tables(
            connection, {"a": pd.DataFrame({"x": [1]}), "b": pd.DataFrame({"y": [1]})}
        )
        # the second statement fails (a name no SQL can hold) after the first succeeded
        with pytest.raises(Exception, match="(?i)zero-length"):
            warehouse.replace_tables(
                connection, {"a": pd.DataFrame({"x": [2]}), "": pd.DataFrame({"y": [2]})}
            )
        assert connection.execute("SELECT x FROM a").fetchall() == [(1,)]
        assert connection.execute("SELECT y FROM b").fetchall() == [(1,)]


def test_latest_predictions_before_any_run_is_empty(location: str) -> None:
    with warehouse.connect(location) as connection:
        assert warehouse.latest_predictions(connection, limit=5).empty


def test_both_stores_give_back_the_same_frames(tmp_path: Path) -> None:
    """Cleaned bookings (every column type the platform stores) and a table with NULLs read
    back identically from DuckDB and PostgreSQL: the profile must not change what is computed."""
    raw = read_bookings(write_csv(make_bookings(800), tmp_path / "bookings.csv")).frame
    cleaned = clean_bookings(raw, date(2017, 5, 1)).cleaned
    with_nulls = pd.DataFrame(
        {
            "n": pd.array([1, None], dtype="Int64"),
            "x": [0.5, float("nan")],
            "text": ["", None],
            "flag": [True, None],
            "at": [pd.Timestamp("2017-05-01 10:00:01.5"), pd.NaT],
        }
    )
    read_back = []
    with fresh_database() as url:
        for location in (str(tmp_path / "w.duckdb"), url):
            with warehouse.connect(location) as connection:
                warehouse.replace_slices(connection, date(2017, 5, 1), {"cleaned": cleaned})
                warehouse.replace_tables(connection, {"with_nulls": with_nulls})
                read_back.append(
                    (
                        warehouse.read_slice(connection, "cleaned", date(2017, 5, 1)),
                        warehouse.read_table(connection, "with_nulls"),
                        warehouse.column_types(connection, "cleaned"),
                    )
                )
    (duck_cleaned, duck_nulls, duck_types), (pg_cleaned, pg_nulls, pg_types) = read_back
    assert len(pg_cleaned) == len(cleaned) > 0
    pd.testing.assert_frame_equal(pg_cleaned, duck_cleaned)
    pd.testing.assert_frame_equal(pg_nulls, duck_nulls)
    assert pg_types == duck_types
    # one object per distinct text on both (core/shared_strings.py: what 10x the data needs)
    for frame in (duck_cleaned, pg_cleaned):
        assert len({id(hotel) for hotel in frame["hotel"]}) == frame["hotel"].nunique() == 2


def test_a_predictions_table_from_before_reasons_gains_the_columns(tmp_path: Path) -> None:
    # DuckDB only: the warehouses of the first release were DuckDB files
    path = tmp_path / "old.duckdb"
    may, june = date(2017, 5, 1), date(2017, 6, 1)
    with warehouse.connect(path) as connection:
        # the table as the first release created it: no reason columns
        connection.execute(warehouse.PREDICTIONS_DDL)
        connection.register("old_rows", _predictions(may, [1, 2], 0.3))
        connection.execute("INSERT INTO predictions SELECT * FROM old_rows")
        explained = _predictions(june, [3], 0.8).assign(
            reason_1="lead_time = 300 raises risk (+1.20)",
            reason_2=None,
            reason_3=None,
            reasons='[{"feature": "lead_time", "value": "300", "direction": "raises", '
            '"contribution": 1.2}]',
        )
        warehouse.replace_predictions(connection, june, explained)
        rows = connection.execute(
            "SELECT booking_id, reason_1, json_extract_string(reasons, '$[0].feature') "
            "FROM predictions ORDER BY booking_id"
        ).fetchall()
    assert rows == [
        (1, None, None),
        (2, None, None),
        (3, "lead_time = 300 raises risk (+1.20)", "lead_time"),
    ]
