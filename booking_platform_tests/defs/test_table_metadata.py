"""Every asset that writes a warehouse table tells Dagit its name, its rows and its columns, as
the table holds them in DuckDB; the catalogue's keys and slicing hold for every table written
(one main-job run: a real Dagster instance, DuckDB file and MLflow store, synthetic data)."""

import dagster as dg

from booking_platform.config import Settings
from booking_platform.core import warehouse
from booking_platform.core.tables import (
    AB_TEST_REPORT,
    CATALOGUE,
    CLEANED_BOOKINGS,
    ESTIMATED_PERFORMANCE,
    NET_DEMAND,
    PREDICTIONS,
    RAW_BOOKINGS,
    REALISED_PERFORMANCE,
)
from booking_platform.defs import metadata_keys as keys
from booking_platform_tests.conftest import run_main_job

# the table each asset of the main job writes (its staging table before the audit), and the
# published table that holds the same rows once the run is over
WRITTEN = {
    "raw_bookings": (warehouse.staged_name(RAW_BOOKINGS.name), RAW_BOOKINGS),
    "cleaned_bookings": (warehouse.staged_name(CLEANED_BOOKINGS.name), CLEANED_BOOKINGS),
    "accepted_bookings": (CLEANED_BOOKINGS.name, CLEANED_BOOKINGS),
    "batch_predictions": (PREDICTIONS.name, PREDICTIONS),
    "realised_performance": (REALISED_PERFORMANCE.name, REALISED_PERFORMANCE),
    "ab_test_report": (AB_TEST_REPORT.name, AB_TEST_REPORT),
    "net_demand": (NET_DEMAND.name, NET_DEMAND),
    "estimated_performance": (ESTIMATED_PERFORMANCE.name, ESTIMATED_PERFORMANCE),
}
# a contract's constraints, as the column schema states them (core/contracts.py, core/bounds.py)
CONSTRAINED = {
    "cleaned_bookings": ("adults", [">= 0", "<= 100", "whole number"]),
    "accepted_bookings": ("adults", [">= 0", "<= 100", "whole number"]),
    "batch_predictions": ("cancel_probability", ["in [0, 1]"]),
}


def test_each_table_asset_states_its_table_rows_and_columns_as_stored(
    settings: Settings, instance: dg.DagsterInstance
) -> None:
    result = run_main_job(settings, instance)
    assert result.success
    stated = {
        event.asset_key.to_user_string(): event.metadata
        for event in (
            e.step_materialization_data.materialization
            for e in result.get_asset_materialization_events()
        )
    }
    assert set(WRITTEN) <= set(stated)
    with warehouse.connect(settings.warehouse_path, read_only=True) as connection:
        for asset, (name, table) in WRITTEN.items():
            metadata = stated[asset]
            assert metadata[keys.TABLE_NAME].value == name, asset
            schema = metadata[keys.COLUMN_SCHEMA].value
            stored = warehouse.column_types(connection, table.name)
            assert {c.name: c.type for c in schema.columns} == stored, asset
            assert set(table.keys) <= set(stored), asset
            # the staged rows moved to the published table when the run accepted the export
            assert metadata[keys.ROW_COUNT].value == warehouse.count_rows(connection, table.name)
            if table.sliced:
                assert metadata[keys.PARTITION_ROW_COUNT].value == warehouse.count_rows(
                    connection, table.name, settings.as_of
                )
            if asset in CONSTRAINED:
                column, constraints = CONSTRAINED[asset]
                (described,) = [c for c in schema.columns if c.name == column]
                assert described.constraints.other == constraints, asset
                assert not described.constraints.nullable, asset

        # the catalogue's word on every table the run wrote: its keys identify a row, and a
        # table replaced one as-of slice at a time has an as_of column
        written = [t for t in CATALOGUE.values() if warehouse.table_exists(connection, t.name)]
        assert {t.name for t in written} >= {table.name for _, table in WRITTEN.values()}
        for table in written:
            columns = warehouse.column_types(connection, table.name)
            assert ("as_of" in columns) == table.sliced, table.name
            keyed = ", ".join(f'"{k}"' for k in table.keys)
            ((rows, distinct),) = connection.execute(
                f'SELECT count(*), count(DISTINCT ({keyed})) FROM "{table.name}"'
            ).fetchall()
            assert rows == distinct, table.name
