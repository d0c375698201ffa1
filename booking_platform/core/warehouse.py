"""The warehouse: every replacement is one transaction, so a failure keeps the old rows.

Two stores answer the same functions: a DuckDB file (the embedded default) and a schema of a
PostgreSQL database (the cluster profile, `core/warehouse_postgres.py`, which registers its own
versions of the functions below for its connections). `connect` picks the store from the
location: a file path or a `postgresql://` URL. SQL written outside this module and that one is
the portable kind both run, with `?` placeholders.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from functools import singledispatch
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pandas as pd

from booking_platform.core.shared_strings import share_repeated_strings
from booking_platform.core.tables import PREDICTIONS

T = TypeVar("T")
DEFAULT_SCHEMA = "warehouse"

PREDICTIONS_DDL = f"""
CREATE TABLE IF NOT EXISTS {PREDICTIONS.name} (
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


# How long a run waits for another process's lock on the warehouse before failing: longer than
# any write of the platform's own (seconds) and than publishing the read copy.
DEFAULT_LOCK_WAIT_SECONDS = 60.0


class WarehouseLocked(RuntimeError):
    """Another process holds the warehouse file's lock for longer than the run may wait."""


def _when_unlocked(path: Path, open_database: Callable[[], T], lock_wait_seconds: float) -> T:
    """`open_database()`, retried while another process holds the file's lock, up to
    `lock_wait_seconds`; then WarehouseLocked naming the holder (DuckDB reports its PID)."""
    deadline = time.monotonic() + lock_wait_seconds
    while True:
        try:
            return open_database()
        except duckdb.IOException as error:
            if "lock" not in str(error).lower():
                raise
            if time.monotonic() >= deadline:
                holder = str(error).split("Conflicting lock is held in", 1)[-1].strip()
                raise WarehouseLocked(
                    f"could not lock the warehouse {path} within {lock_wait_seconds:g} s: another "
                    f"process holds its lock ({holder}). Analysts read {read_copy_path(path)} "
                    "instead, which never blocks a run (README, 'Reading the warehouse')"
                ) from error
            time.sleep(0.25)


@contextmanager
def connect(
    location: Path | str,
    read_only: bool = False,
    lock_wait_seconds: float = DEFAULT_LOCK_WAIT_SECONDS,
    schema: str = DEFAULT_SCHEMA,
) -> Iterator[Any]:
    """Open the warehouse at a DuckDB file path or a PostgreSQL URL (tables in `schema`)."""
    if str(location).startswith(("postgresql://", "postgres://", "postgresql+")):
        from booking_platform.core import warehouse_postgres

        with warehouse_postgres.connect(str(location), schema, read_only) as connection:
            yield connection
        return
    with _connect_duckdb(Path(location), read_only, lock_wait_seconds) as connection:
        yield connection


@contextmanager
def _connect_duckdb(
    path: Path, read_only: bool, lock_wait_seconds: float
) -> Iterator[duckdb.DuckDBPyConnection]:
    """DuckDB allows one writer process (and no reader beside it), so wait up to
    `lock_wait_seconds` for the lock, then raise WarehouseLocked naming its holder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = _when_unlocked(
        path, lambda: duckdb.connect(str(path), read_only=read_only), lock_wait_seconds
    )
    try:
        yield connection
    finally:
        connection.close()


def read_copy_path(path: Path) -> Path:
    """Where analysts read: a copy of the warehouse replaced whole after each successful run."""
    return path.with_name(f"{path.stem}_read{path.suffix}")


def _quoted(path: Path) -> str:
    """A path as an SQL string literal (ATTACH takes no parameters)."""
    return "'" + str(path).replace("'", "''") + "'"


def publish_read_copy(path: Path, lock_wait_seconds: float = DEFAULT_LOCK_WAIT_SECONDS) -> Path:
    """Copy the warehouse to `read_copy_path(path)` atomically and return the copy's path.

    The copy is written beside it and renamed over it: a reader holding the old copy open keeps
    reading it undisturbed (and never locks the warehouse itself); the next connection sees the
    new one. The warehouse is attached read-only, so the copy is a committed state.
    """
    target = read_copy_path(path)
    partial = target.with_name(f".{target.name}.{os.getpid()}.part")
    partial.unlink(missing_ok=True)
    copier = duckdb.connect()
    try:
        copier.execute("SET enable_progress_bar = false")
        _when_unlocked(
            path,
            lambda: copier.execute(f"ATTACH {_quoted(path)} AS source (READ_ONLY)"),
            lock_wait_seconds,
        )
        copier.execute(f"ATTACH {_quoted(partial)} AS target")
        copier.execute("COPY FROM DATABASE source TO target")
        copier.execute("DETACH target")
        copier.execute("DETACH source")
    finally:
        copier.close()
    os.replace(partial, target)
    return target


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
    return share_repeated_strings(connection.execute(f'SELECT * FROM "{name}"').df())


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
            # typed, so that a table first created from an empty frame still has a DATE as_of
            dated = pd.Series(as_of, index=frame.index, dtype="date32[pyarrow]")
            connection.register("incoming", _text_when_empty(frame).assign(as_of=dated))
            connection.execute(
                f'CREATE TABLE IF NOT EXISTS "{name}" AS SELECT * FROM incoming LIMIT 0'
            )
            connection.execute(f'DELETE FROM "{name}" WHERE as_of = ?', [as_of])
            if len(frame):  # an empty frame's columns have no types to cast from
                connection.execute(f'INSERT INTO "{name}" BY NAME SELECT * FROM incoming')
            connection.unregister("incoming")
        connection.execute("COMMIT")
    except Exception:
        connection.execute("ROLLBACK")
        raise


@singledispatch
def read_slice(connection: duckdb.DuckDBPyConnection, name: str, as_of: date) -> pd.DataFrame:
    """One as-of date's rows of a table, without the `as_of` column."""
    return share_repeated_strings(
        connection.execute(f'SELECT * FROM "{name}" WHERE as_of = ?', [as_of])
        .df()
        .drop(columns="as_of")
    )


def replace_predictions(connection: Any, as_of: date, predictions: pd.DataFrame) -> None:
    """Replace the rows of one as-of date in `predictions`; other dates are kept."""
    connection.execute(PREDICTIONS_DDL)
    for column in PREDICTION_REASON_COLUMNS:
        connection.execute(
            f"ALTER TABLE {PREDICTIONS.name} ADD COLUMN IF NOT EXISTS {column} VARCHAR"
        )
    replace_slices(
        connection, as_of, {PREDICTIONS.name: predictions.drop(columns="as_of", errors="ignore")}
    )


def latest_predictions(connection: Any, limit: int) -> pd.DataFrame:
    """The newest as-of date's predictions, riskiest first (empty before the first run)."""
    if not table_exists(connection, PREDICTIONS.name):
        return pd.DataFrame()
    return connection.execute(
        f"""
        SELECT * FROM {PREDICTIONS.name}
        WHERE as_of = (SELECT max(as_of) FROM {PREDICTIONS.name})
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


def count_rows(connection: Any, name: str, as_of: date | None = None) -> int:
    """Rows of a table, or of its `as_of` slice."""
    where, parameters = (" WHERE as_of = ?", [as_of]) if as_of is not None else ("", [])
    return connection.execute(f'SELECT count(*) FROM "{name}"{where}', parameters).fetchone()[0]


def booking_rows(connection: Any, table: str, booking_id: int, order_by: str = "") -> pd.DataFrame:
    """The rows of one booking in a table (empty when the table or the booking is missing)."""
    if not table_exists(connection, table):
        return pd.DataFrame()
    order = f" ORDER BY {order_by}" if order_by else ""
    return connection.execute(
        f'SELECT * FROM "{table}" WHERE booking_id = ?{order}', [booking_id]
    ).df()


def staged_name(name: str) -> str:
    """The staging table of `name`: an export is written there, audited, then published."""
    return f"{name}__staged"


def staged_rows(connection: Any, name: str, as_of: date) -> int:
    """How many rows of one as-of date wait in `name`'s staging table (0 when none)."""
    staged = staged_name(name)
    if not table_exists(connection, staged):
        return 0
    return connection.execute(
        f'SELECT count(*) FROM "{staged}" WHERE as_of = ?', [as_of]
    ).fetchone()[0]


@singledispatch
def publish_slices(
    connection: duckdb.DuckDBPyConnection, as_of: date, names: list[str]
) -> dict[str, int]:
    """Move one as-of date's staged rows of each table into the table, replacing that date's
    slice, all in one transaction; the staged rows are removed. Returns rows published per table.

    Each table's slice must have been staged (written with `replace_slices` into
    `staged_name(name)`, zero rows included); whether it may replace the published one is the
    caller's audit. A table that does not exist yet is created with the staged columns.
    """
    connection.execute("BEGIN TRANSACTION")
    try:
        published = move_staged(connection, as_of, names)
        connection.execute("COMMIT")
    except Exception:
        connection.execute("ROLLBACK")
        raise
    return published


def move_staged(connection: Any, as_of: date, names: list[str]) -> dict[str, int]:
    """`publish_slices`' statements (portable SQL), inside the caller's transaction; DuckDB
    keeps the rows in the export's order (it preserves insertion order)."""
    published = {}
    for name in names:
        staged = staged_name(name)
        if not table_exists(connection, staged):
            raise ValueError(f"no staging table {staged}: nothing to publish")
        rows = staged_rows(connection, name, as_of)
        names_in_order = [
            column
            for (column,) in connection.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = ? "
                "ORDER BY ordinal_position",
                [staged],
            ).fetchall()
        ]
        columns = ", ".join(f'"{column}"' for column in names_in_order)
        connection.execute(
            f'CREATE TABLE IF NOT EXISTS "{name}" AS SELECT {columns} FROM "{staged}" WHERE 1 = 0'
        )
        connection.execute(f'DELETE FROM "{name}" WHERE as_of = ?', [as_of])
        connection.execute(
            f'INSERT INTO "{name}" ({columns}) SELECT {columns} FROM "{staged}" WHERE as_of = ?',
            [as_of],
        )
        connection.execute(f'DELETE FROM "{staged}" WHERE as_of = ?', [as_of])
        published[name] = rows
    return published
