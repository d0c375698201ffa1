"""raw_bookings and cleaned_bookings: the source as read, then typed with a quarantine."""

import dagster as dg

from booking_platform.core.cleaning import clean_bookings
from booking_platform.core.source import read_bookings, resolve_source
from booking_platform.core.warehouse import read_table, replace_tables
from booking_platform.defs.resources import PlatformSettings, Warehouse

RAW_TABLE = "raw_bookings"
CLEANED_TABLE = "cleaned_bookings"
QUARANTINE_TABLE = "quarantined_bookings"


@dg.asset(group_name="ingestion", kinds={"duckdb"})
def raw_bookings(
    context: dg.AssetExecutionContext, platform: PlatformSettings, warehouse: Warehouse
) -> dg.MaterializeResult:
    """The bookings source as read (all columns as text), with a stable booking_id.

    A source that cannot be used as a whole raises before the table is replaced.
    """
    settings = platform.settings
    path = resolve_source(settings.source, settings.cache_dir)
    source = read_bookings(path)
    with warehouse.connect() as connection:
        replace_tables(connection, {RAW_TABLE: source.frame})
    context.log.info(f"read {len(source.frame):,} rows from {path}")
    return dg.MaterializeResult(
        metadata={
            "rows": len(source.frame),
            "sha256": source.sha256,
            "source": dg.MetadataValue.path(str(path)),
            "columns": len(source.frame.columns),
        }
    )


@dg.asset(group_name="ingestion", kinds={"duckdb"}, deps=[raw_bookings])
def cleaned_bookings(
    context: dg.AssetExecutionContext, warehouse: Warehouse
) -> dg.MaterializeResult:
    """Typed bookings with real dates; invalid rows go to `quarantined_bookings` with a reason."""
    with warehouse.connect() as connection:
        raw = read_table(connection, RAW_TABLE)
        result = clean_bookings(raw)
        replace_tables(
            connection, {CLEANED_TABLE: result.cleaned, QUARANTINE_TABLE: result.quarantined}
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
