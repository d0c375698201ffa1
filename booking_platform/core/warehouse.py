"""The DuckDB warehouse: every replacement is one transaction, so a failure keeps the old rows."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

PREDICTIONS_DDL = """
CREATE TABLE IF NOT EXISTS predictions (
    booking_id BIGINT NOT NULL,
    cancel_probability DOUBLE NOT NULL,
    predicted_cancel BOOLEAN NOT NULL,
    threshold DOUBLE NOT NULL,
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
    path: Path, read_only: bool = False, attempts: int = 20
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse; DuckDB allows one writer process, so wait briefly for the lock."""
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


def replace_tables(connection: duckdb.DuckDBPyConnection, tables: dict[str, pd.DataFrame]) -> None:
    """Replace whole tables together, atomically."""
    connection.execute("BEGIN TRANSACTION")
    try:
        for name, frame in tables.items():
            connection.register("incoming", frame)
            connection.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM incoming')
            connection.unregister("incoming")
        connection.execute("COMMIT")
    except Exception:
        connection.execute("ROLLBACK")
        raise


def read_table(connection: duckdb.DuckDBPyConnection, name: str) -> pd.DataFrame:
    return connection.execute(f'SELECT * FROM "{name}"').df()


def replace_slices(
    connection: duckdb.DuckDBPyConnection, as_of: date, tables: dict[str, pd.DataFrame]
) -> None:
    """Replace one as-of date's rows in each table, atomically; other dates are kept.

    Each frame gets an `as_of` column; a table that does not exist yet is created from its frame.
    """
    connection.execute("BEGIN TRANSACTION")
    try:
        for name, frame in tables.items():
            connection.register("incoming", frame.assign(as_of=as_of))
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


def read_slice(connection: duckdb.DuckDBPyConnection, name: str, as_of: date) -> pd.DataFrame:
    """One as-of date's rows of a table, without the `as_of` column."""
    return (
        connection.execute(f'SELECT * FROM "{name}" WHERE as_of = ?', [as_of])
        .df()
        .drop(columns="as_of")
    )


def replace_predictions(
    connection: duckdb.DuckDBPyConnection, as_of: date, predictions: pd.DataFrame
) -> None:
    """Replace the rows of one as-of date in `predictions`; other dates are kept."""
    connection.execute(PREDICTIONS_DDL)
    for column in PREDICTION_REASON_COLUMNS:
        connection.execute(f"ALTER TABLE predictions ADD COLUMN IF NOT EXISTS {column} VARCHAR")
    replace_slices(
        connection, as_of, {"predictions": predictions.drop(columns="as_of", errors="ignore")}
    )


def latest_predictions(connection: duckdb.DuckDBPyConnection, limit: int) -> pd.DataFrame:
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


def table_exists(connection: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(
        connection.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
        ).fetchone()[0]
    )


def booking_rows(
    connection: duckdb.DuckDBPyConnection, table: str, booking_id: int, order_by: str = ""
) -> pd.DataFrame:
    """The rows of one booking in a table (empty when the table or the booking is missing)."""
    if not table_exists(connection, table):
        return pd.DataFrame()
    order = f" ORDER BY {order_by}" if order_by else ""
    return connection.execute(
        f'SELECT * FROM "{table}" WHERE booking_id = ?{order}', [booking_id]
    ).df()
