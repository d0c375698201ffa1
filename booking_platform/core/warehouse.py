"""The warehouse: every replacement is one transaction, so a failure keeps the old rows.

Two stores answer the same functions: a DuckDB file (the embedded default) and a schema of a
PostgreSQL database (the cluster profile, `core/warehouse_postgres.py`, which registers its own
versions of the functions below for its connections). `connect` picks the store from the
location: a file path or a `postgresql://` URL. SQL written outside this module and that one is
the portable kind both run, with `?` placeholders.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from functools import singledispatch
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

DEFAULT_SCHEMA = "warehouse"

PREDICTIONS_DDL = """
CREATE TABLE IF NOT EXISTS predictions (
    booking_id BIGINT NOT NULL,
    cancel_probability DOUBLE PRECISION NOT NULL,
    predicted_cancel BOOLEAN NOT NULL,
    threshold DOUBLE PRECISION NOT NULL,
    model_version VARCHAR NOT NULL,
    as_of DATE NOT NULL,
    scored_at TIMESTAMP NOT NULL
)
"""
# Added after the first release: warehouses created before get them (NULL in old rows).
# reason_1..3 are text for reading; `reasons` is the same as JSON for json_extract.
PREDICTION_REASON_COLUMNS = ("reason_1", "reason_2", "reason_3", "reasons")


@contextmanager
def connect(
    location: Path | str,
    read_only: bool = False,
    attempts: int = 20,
    schema: str = DEFAULT_SCHEMA,
) -> Iterator[Any]:
    """Open the warehouse at a DuckDB file path or a PostgreSQL URL (tables in `schema`)."""
    if str(location).startswith(("postgresql://", "postgres://", "postgresql+")):
        from booking_platform.core import warehouse_postgres

        with warehouse_postgres.connect(str(location), schema, read_only) as connection:
            yield connection
        return
    with _connect_duckdb(Path(location), read_only, attempts) as connection:
        yield connection


@contextmanager
def _connect_duckdb(
    path: Path, read_only: bool, attempts: int
) -> Iterator[duckdb.DuckDBPyConnection]:
    """DuckDB allows one writer process, so wait briefly for the lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(attempts):
        try:
            connection = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.IOException as error:
            if "lock" not in str(error).lower() or attempt == attempts - 1:
                raise
            time.sleep(0.25)
    try:
        yield connection
    finally:
        connection.close()


@singledispatch
def replace_tables(connection: duckdb.DuckDBPyConnection, tables: dict[str, pd.DataFrame]) -> None:
    """Replace whole tables together, atomically."""
    connection.execute("BEGIN TRANSACTION")
    try:
        for name, frame in tables.items():
            connection.register("incoming", _text_when_empty(frame))
            connection.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM incoming')
            connection.unregister("incoming")
        connection.execute("COMMIT")
    except Exception:
        connection.execute("ROLLBACK")
        raise


def _text_when_empty(frame: pd.DataFrame) -> pd.DataFrame:
    """A text column without a value stays text: DuckDB would type it INTEGER (and PostgreSQL
    TEXT), so a raw export whose `company` is NULL on every row would clean differently."""
    empty = [c for c in frame.columns if frame[c].dtype == object and frame[c].isna().all()]
    return frame.astype(dict.fromkeys(empty, "string")) if empty else frame


@singledispatch
def read_table(connection: duckdb.DuckDBPyConnection, name: str) -> pd.DataFrame:
    return connection.execute(f'SELECT * FROM "{name}"').df()


@singledispatch
def replace_slices(
    connection: duckdb.DuckDBPyConnection, as_of: date, tables: dict[str, pd.DataFrame]
) -> None:
    """Replace one as-of date's rows in each table, atomically; other dates are kept.

    Each frame gets an `as_of` column; a table that does not exist yet is created from its frame.
    """
    connection.execute("BEGIN TRANSACTION")
    try:
        for name, frame in tables.items():
            connection.register("incoming", _text_when_empty(frame).assign(as_of=as_of))
            connection.execute(
                f'CREATE TABLE IF NOT EXISTS "{name}" AS SELECT * FROM incoming LIMIT 0'
            )
            connection.execute(f'DELETE FROM "{name}" WHERE as_of = ?', [as_of])
            connection.execute(f'INSERT INTO "{name}" BY NAME SELECT * FROM incoming')
            connection.unregister("incoming")
        connection.execute("COMMIT")
    except Exception:
        connection.execute("ROLLBACK")
        raise


@singledispatch
def read_slice(connection: duckdb.DuckDBPyConnection, name: str, as_of: date) -> pd.DataFrame:
    """One as-of date's rows of a table, without the `as_of` column."""
    return (
        connection.execute(f'SELECT * FROM "{name}" WHERE as_of = ?', [as_of])
        .df()
        .drop(columns="as_of")
    )


def replace_predictions(connection: Any, as_of: date, predictions: pd.DataFrame) -> None:
    """Replace the rows of one as-of date in `predictions`; other dates are kept."""
    connection.execute(PREDICTIONS_DDL)
    for column in PREDICTION_REASON_COLUMNS:
        connection.execute(f"ALTER TABLE predictions ADD COLUMN IF NOT EXISTS {column} VARCHAR")
    replace_slices(
        connection, as_of, {"predictions": predictions.drop(columns="as_of", errors="ignore")}
    )


def latest_predictions(connection: Any, limit: int) -> pd.DataFrame:
    """The newest as-of date's predictions, riskiest first (empty before the first run)."""
    if not table_exists(connection, "predictions"):
        return pd.DataFrame()
    return connection.execute(
        """
        SELECT * FROM predictions
        WHERE as_of = (SELECT max(as_of) FROM predictions)
        ORDER BY cancel_probability DESC, booking_id
        LIMIT ?
        """,
        [limit],
    ).df()


def table_exists(connection: Any, name: str) -> bool:
    return bool(
        connection.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_name = ?",
            [name],
        ).fetchone()[0]
    )


@singledispatch
def column_types(connection: duckdb.DuckDBPyConnection, name: str) -> dict[str, str]:
    """Each column's type in DuckDB's words (any timestamp is TIMESTAMP), in table order."""
    rows = connection.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position",
        [name],
    ).fetchall()
    return {
        column: "TIMESTAMP" if kind.startswith("TIMESTAMP") and "TIME ZONE" not in kind else kind
        for column, kind in rows
    }


def booking_rows(connection: Any, table: str, booking_id: int, order_by: str = "") -> pd.DataFrame:
    """The rows of one booking in a table (empty when the table or the booking is missing)."""
    if not table_exists(connection, table):
        return pd.DataFrame()
    order = f" ORDER BY {order_by}" if order_by else ""
    return connection.execute(
        f'SELECT * FROM "{table}" WHERE booking_id = ?{order}', [booking_id]
    ).df()
