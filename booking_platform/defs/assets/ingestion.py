"""raw_bookings and cleaned_bookings: the source as read, then typed with a quarantine."""

from datetime import date

import dagster as dg
import duckdb
import pandas as pd

from booking_platform.core.cleaning import clean_bookings
from booking_platform.core.snapshots import snapshot_path
from booking_platform.core.source import read_bookings, resolve_source
from booking_platform.core.warehouse import read_slice, replace_slices
from booking_platform.defs.assets.catalog_tags import stage
from booking_platform.defs.partitions import as_of_partitions, partition_as_of
from booking_platform.defs.resources import PlatformSettings, Warehouse
from booking_platform.defs.retries import passing_errors_retried

RAW_TABLE = "raw_bookings"
OUTCOME_FIELDS = ["booking_id", "arrival_date", "is_canceled"]
CLEANED_TABLE = "cleaned_bookings"
QUARANTINE_TABLE = "quarantined_bookings"


@dg.asset(**stage("ingestion"), kinds={"duckdb"}, partitions_def=as_of_partitions)
@passing_errors_retried  # a URL source
def raw_bookings(
    context: dg.AssetExecutionContext, platform: PlatformSettings, warehouse: Warehouse
) -> dg.MaterializeResult:
    """The export as of the partition's date (all columns as text), with a stable booking_id.

    The snapshot landed for that date when there is one, else the configured source. A file
    that cannot be used as a whole raises before any row is replaced.
    """
    settings = platform.settings
    as_of = partition_as_of(context)
    landed = snapshot_path(settings.landing_dir, as_of)
    path = landed or resolve_source(settings.source, settings.cache_dir)
    source = read_bookings(path)
    with warehouse.connect() as connection:
        replace_slices(connection, as_of, {RAW_TABLE: source.frame})
    context.log.info(f"read {len(source.frame):,} rows from {path}")
    return dg.MaterializeResult(
        metadata={
            "rows": len(source.frame),
            "sha256": source.sha256,
            "source": dg.MetadataValue.path(str(path)),
            "landed_snapshot": landed is not None,
            "columns": len(source.frame.columns),
        }
    )


@dg.asset(
    **stage("ingestion"),
    kinds={"duckdb"},
    deps=[raw_bookings],
    partitions_def=as_of_partitions,
)
def cleaned_bookings(
    context: dg.AssetExecutionContext, warehouse: Warehouse
) -> dg.MaterializeResult:
    """Typed bookings with real dates; invalid rows go to `quarantined_bookings` with a reason."""
    as_of = partition_as_of(context)
    with warehouse.connect() as connection:
        raw = read_slice(connection, RAW_TABLE, as_of)
        result = clean_bookings(raw, as_of)
        replace_slices(
            connection, as_of, {CLEANED_TABLE: result.cleaned, QUARANTINE_TABLE: result.quarantined}
        )
    reasons = result.quarantined["reason"].value_counts().to_dict()
    context.log.info(f"cleaned {len(result.cleaned):,}, quarantined {len(result.quarantined):,}")
    return dg.MaterializeResult(
        metadata={
            "raw_rows": len(raw),
            "rows": len(result.cleaned),
            "quarantined_rows": len(result.quarantined),
            "quarantine_reasons": dg.MetadataValue.json(reasons),
            "arrivals": f"{result.cleaned['arrival_date'].min():%Y-%m-%d} .. "
            f"{result.cleaned['arrival_date'].max():%Y-%m-%d}",
        }
    )


def latest_outcomes(connection: duckdb.DuckDBPyConnection) -> tuple[date, pd.DataFrame]:
    """The newest export's as-of date and outcomes (booking_id, arrival_date, is_canceled).

    Predictions made on any earlier date are graded on what is known now.
    """
    (as_of,) = connection.execute(f"SELECT max(as_of) FROM {CLEANED_TABLE}").fetchone()
    return as_of, read_slice(connection, CLEANED_TABLE, as_of)[OUTCOME_FIELDS]
