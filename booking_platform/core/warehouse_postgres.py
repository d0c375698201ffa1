"""The warehouse tables in PostgreSQL, behind the same functions as the DuckDB file.

`core/warehouse.py` is the interface: its functions take a connection, and this module registers
their PostgreSQL versions for `PostgresConnection`. The promise is the same on both: an as-of
slice (or a whole table) is replaced in one transaction, so a failed run keeps the good rows,
and a reader gets the same pandas types back from either store (the same predictions on both
profiles depend on it).

Bulk rows move by COPY in CSV written and parsed by Arrow (C++), typed by the table's columns:
building Python objects row by row costs seconds for the 119k cleaned bookings.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from typing import Any

import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pa_csv
from psycopg import sql

from booking_platform.core import warehouse

# PostgreSQL's type names as DuckDB spells them, so checks compare one vocabulary.
PORTABLE_TYPES = {
    "bigint": "BIGINT",
    "integer": "INTEGER",
    "smallint": "SMALLINT",
    "double precision": "DOUBLE",
    "real": "FLOAT",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp without time zone": "TIMESTAMP",
    "text": "VARCHAR",
    "character varying": "VARCHAR",
}
_ARROW_TYPES = {
    "BIGINT": pa.int64(),
    "INTEGER": pa.int64(),
    "SMALLINT": pa.int64(),
    "DOUBLE": pa.float64(),
    "FLOAT": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "DATE": pa.date32(),
    "TIMESTAMP": pa.timestamp("us"),
    "VARCHAR": pa.string(),
}
_COPY_CHUNK = 1 << 20


class PostgresResult:
    """A statement's rows, answered the way DuckDB's connection answers (`df`, `fetchone`)."""

    def __init__(self, cursor: psycopg.Cursor) -> None:
        self._cursor = cursor

    def fetchone(self) -> tuple | None:
        return self._cursor.fetchone()

    def fetchall(self) -> list[tuple]:
        return self._cursor.fetchall()

    def df(self) -> pd.DataFrame:
        description = self._cursor.description or []
        names = [column.name for column in description]
        frame = pd.DataFrame.from_records(self._cursor.fetchall(), columns=names)
        types = {
            column.name: _portable_type_of_oid(self._cursor.connection, column.type_code)
            for column in description
        }
        return _like_duckdb(frame, types)


class PostgresConnection:
    """One psycopg connection whose search path is the warehouse's schema.

    `execute` takes DuckDB's `?` placeholders so that the platform's few SQL statements are
    written once for both stores.
    """

    def __init__(self, connection: psycopg.Connection, schema: str) -> None:
        self.connection = connection
        self.schema = schema

    def execute(
        self, statement: str | sql.Composable, parameters: Sequence[Any] | None = None
    ) -> PostgresResult:
        cursor = self.connection.cursor()
        if isinstance(statement, str) and parameters is not None:
            statement = statement.replace("%", "%%").replace("?", "%s")
        cursor.execute(statement, None if parameters is None else list(parameters))
        return PostgresResult(cursor)

    @contextmanager
    def transaction(self, tables: Sequence[str]) -> Iterator[None]:
        """One transaction that holds each table's writer lock (readers are never blocked)."""
        with self.connection.transaction():
            for name in sorted(tables):
                self.connection.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(%s))", [f"{self.schema}.{name}"]
                )
            yield


def is_postgres_url(location: str) -> bool:
    return location.startswith(("postgresql://", "postgres://", "postgresql+"))


def libpq_url(location: str) -> str:
    """SQLAlchemy-style `postgresql+psycopg2://` URLs name a driver; libpq wants the plain form."""
    scheme, _, rest = location.partition("://")
    return f"postgresql://{rest}" if scheme.startswith("postgresql+") else location


@contextmanager
def connect(location: str, schema: str, read_only: bool = False) -> Iterator[PostgresConnection]:
    """Open the warehouse schema (created on first write) on the server at `location`."""
    connection = psycopg.connect(libpq_url(location), autocommit=True)
    try:
        if not read_only:
            connection.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))
            )
        connection.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        if read_only:
            connection.execute("SET default_transaction_read_only = on")
        yield PostgresConnection(connection, schema)
    finally:
        connection.close()


@warehouse.replace_tables.register
def _replace_tables(connection: PostgresConnection, tables: dict[str, pd.DataFrame]) -> None:
    with connection.transaction(list(tables)):
        for name, frame in tables.items():
            arrow = _to_arrow(frame)
            connection.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))
            _create_table(connection, name, arrow)
            _copy_in(connection, name, arrow)


@warehouse.replace_slices.register
def _replace_slices(
    connection: PostgresConnection, as_of: date, tables: dict[str, pd.DataFrame]
) -> None:
    with connection.transaction(list(tables)):
        for name, frame in tables.items():
            arrow = _to_arrow(frame.drop(columns="as_of", errors="ignore"))
            # typed even when the frame is empty (an empty object column would make it TEXT)
            arrow = arrow.append_column("as_of", pa.array([as_of] * len(frame), pa.date32()))
            if not warehouse.table_exists(connection, name):
                _create_table(connection, name, arrow)
            connection.execute(
                sql.SQL("DELETE FROM {} WHERE as_of = %s").format(sql.Identifier(name)), [as_of]
            )
            _copy_in(connection, name, arrow)


@warehouse.read_table.register
def _read_table(connection: PostgresConnection, name: str) -> pd.DataFrame:
    return _copy_out(connection, name, sql.SQL("SELECT * FROM {}").format(sql.Identifier(name)))


@warehouse.read_slice.register
def _read_slice(connection: PostgresConnection, name: str, as_of: date) -> pd.DataFrame:
    query = sql.SQL("SELECT * FROM {} WHERE as_of = {}").format(
        sql.Identifier(name), sql.Literal(as_of)
    )
    return _copy_out(connection, name, query).drop(columns="as_of")


@warehouse.column_types.register
def _column_types(connection: PostgresConnection, name: str) -> dict[str, str]:
    rows = connection.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position",
        [name],
    ).fetchall()
    return {column: PORTABLE_TYPES.get(kind, kind.upper()) for column, kind in rows}


def _portable_type_of_oid(connection: psycopg.Connection, oid: int) -> str:
    info = connection.adapters.types.get(oid)
    name = info.name if info else ""
    return {
        "int8": "BIGINT",
        "int4": "INTEGER",
        "int2": "SMALLINT",
        "float8": "DOUBLE",
        "float4": "FLOAT",
        "bool": "BOOLEAN",
        "date": "DATE",
        "timestamp": "TIMESTAMP",
    }.get(name, "VARCHAR")


def _to_arrow(frame: pd.DataFrame) -> pa.Table:
    """Arrow columns as the table will type them; NaN is NULL, as DuckDB reads pandas."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    columns = []
    for field, column in zip(table.schema, table.columns, strict=True):
        if pa.types.is_timestamp(field.type):
            column = column.cast(pa.timestamp("us", tz=field.type.tz), safe=False)
        elif pa.types.is_dictionary(field.type):
            column = column.cast(field.type.value_type)
        elif pa.types.is_null(field.type):
            column = column.cast(pa.string())
        columns.append(column)
    return pa.Table.from_arrays(columns, names=table.column_names)


def _postgres_type(kind: pa.DataType) -> str:
    if pa.types.is_integer(kind):
        return "BIGINT"
    if pa.types.is_floating(kind):
        return "DOUBLE PRECISION"
    if pa.types.is_boolean(kind):
        return "BOOLEAN"
    if pa.types.is_date(kind):
        return "DATE"
    if pa.types.is_timestamp(kind):
        return "TIMESTAMP WITH TIME ZONE" if kind.tz else "TIMESTAMP"
    return "TEXT"


def _create_table(connection: PostgresConnection, name: str, arrow: pa.Table) -> None:
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(field.name), sql.SQL(_postgres_type(field.type)))
        for field in arrow.schema
    )
    connection.execute(sql.SQL("CREATE TABLE {} ({})").format(sql.Identifier(name), columns))


def _copy_in(connection: PostgresConnection, name: str, arrow: pa.Table) -> None:
    buffer = io.BytesIO()
    # strings always quoted, NULL an empty unquoted field: the two stay apart
    pa_csv.write_csv(arrow, buffer, pa_csv.WriteOptions(include_header=False))
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
        sql.Identifier(name), sql.SQL(", ").join(map(sql.Identifier, arrow.column_names))
    )
    view = buffer.getbuffer()
    with connection.connection.cursor().copy(statement) as copy:
        for start in range(0, len(view), _COPY_CHUNK):
            copy.write(view[start : start + _COPY_CHUNK])


def _copy_out(connection: PostgresConnection, name: str, query: sql.Composable) -> pd.DataFrame:
    types = warehouse.column_types(connection, name)
    buffer = io.BytesIO()
    statement = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv, HEADER)").format(query)
    with connection.connection.cursor().copy(statement) as copy:
        for chunk in copy:
            buffer.write(chunk)
    buffer.seek(0)
    if buffer.getbuffer().nbytes == 0:
        return pd.DataFrame({column: [] for column in types})
    arrow = pa_csv.read_csv(
        buffer,
        convert_options=pa_csv.ConvertOptions(
            column_types={c: _ARROW_TYPES.get(t, pa.string()) for c, t in types.items()},
            true_values=["t"],
            false_values=["f"],
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )
    frame = arrow.to_pandas(date_as_object=False, types_mapper={pa.int64(): pd.Int64Dtype()}.get)
    return _like_duckdb(frame, types)


def _like_duckdb(frame: pd.DataFrame, types: dict[str, str]) -> pd.DataFrame:
    """The pandas types DuckDB's `.df()` gives: int64 (Int64 with NULLs), bool (nullable
    boolean with NULLs), float64, object strings with None, dates as datetime64[us] and
    timestamps as datetime64[ns] (DuckDB stores a pandas column as TIMESTAMP_NS)."""
    for column, kind in types.items():
        values = frame[column]
        if kind in ("BIGINT", "INTEGER", "SMALLINT"):
            nullable = values.isna().any()
            frame[column] = values.astype("Int64" if nullable else "int64")
        elif kind in ("DATE", "TIMESTAMP"):
            unit = "us" if kind == "DATE" else "ns"
            frame[column] = pd.to_datetime(values).astype(f"datetime64[{unit}]")
        elif kind == "BOOLEAN":
            frame[column] = values.astype("boolean" if values.isna().any() else "bool")
        elif kind in ("DOUBLE", "FLOAT"):
            frame[column] = values.astype("float64")
        else:
            frame[column] = values.astype(object).where(values.notna(), None)
    return frame


@warehouse.publish_slices.register
def _publish_slices(
    connection: PostgresConnection, as_of: date, names: list[str]
) -> dict[str, int]:
    """Each staged slice goes through COPY like any slice (an INSERT ... SELECT would not keep
    the export's row order in the heap), all in one transaction under the tables' writer locks."""
    staged = [warehouse.staged_name(name) for name in names]
    published = {}
    with connection.transaction([*names, *staged]):
        for name, staged_table in zip(names, staged, strict=True):
            if not warehouse.table_exists(connection, staged_table):
                raise ValueError(f"no staging table {staged_table}: nothing to publish")
            frame = _read_slice(connection, staged_table, as_of)
            _replace_slices(connection, as_of, {name: frame})
            connection.execute(
                sql.SQL("DELETE FROM {} WHERE as_of = %s").format(sql.Identifier(staged_table)),
                [as_of],
            )
            published[name] = len(frame)
    return published
