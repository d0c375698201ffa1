"""What Dagit shows of a table an asset wrote: dagster/table_name, dagster/row_count (and the
partition's, for a table sliced by as-of date) and dagster/column_schema.

The columns and their types are read back from the warehouse after the write, so they are the
table's own (the predictions table keeps columns older rows were written with); where a data
contract exists (core/contracts.py), each column carries its constraints and the table the
contract's row rules, as dagster-pandera states them.
"""

import warnings
from datetime import date
from typing import TYPE_CHECKING, Any

import dagster as dg

from booking_platform.core.tables import Table
from booking_platform.core.warehouse import column_types, count_rows
from booking_platform.defs import metadata_keys as keys

if TYPE_CHECKING:
    import pandera.pandas as pa


def table_schema(
    connection: Any, name: str, contract: "pa.DataFrameSchema | None" = None
) -> dg.TableSchema:
    """The columns of table `name` as stored, with the contract's constraints where it has one."""
    stated: dict[str, dg.TableColumn] = {}
    constraints = None
    if contract is not None:
        from dagster_pandera import pandera_schema_to_dagster_type  # noqa: PLC0415 (pandera)

        # dagster-pandera's converter is marked beta; its warning on every run would land in
        # the middle of `make run`'s progress (the pins hold the version this was built on)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", dg.BetaWarning)
            schema = pandera_schema_to_dagster_type(contract).metadata["schema"].schema
        stated = {column.name: column for column in schema.columns}
        constraints = schema.constraints
    columns = [
        dg.TableColumn(
            name=column,
            type=kind,
            description=stated[column].description if column in stated else None,
            constraints=stated[column].constraints if column in stated else None,
        )
        for column, kind in column_types(connection, name).items()
    ]
    return dg.TableSchema(columns=columns, constraints=constraints)


def table_metadata(
    connection: Any,
    table: Table,
    as_of: date | None = None,
    contract: "pa.DataFrameSchema | None" = None,
    name: str | None = None,
) -> dict[str, object]:
    """The table metadata of `table` once written (under `name` when it is not the table's
    own, e.g. its staging table); `as_of`: the slice the run wrote, for a sliced table."""
    name = name or table.name
    metadata: dict[str, object] = {
        keys.TABLE_NAME: name,
        keys.ROW_COUNT: count_rows(connection, name),
        keys.COLUMN_SCHEMA: dg.MetadataValue.table_schema(table_schema(connection, name, contract)),
    }
    if table.sliced and as_of is not None:
        metadata[keys.PARTITION_ROW_COUNT] = count_rows(connection, name, as_of)
    return metadata
