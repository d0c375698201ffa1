"""Ingestion as write-audit-publish: raw_bookings and cleaned_bookings write staging tables, the
blocking checks in defs/checks.py audit them, and accepted_bookings publishes them together."""

from datetime import date

import dagster as dg
import duckdb
import pandas as pd

from booking_platform.core.cleaning import clean_bookings
from booking_platform.core.contracts import bookings_contract
from booking_platform.core.export_audit import check_as_of_inside
from booking_platform.core.snapshots import snapshot_path
from booking_platform.core.source import read_bookings, resolve_source
from booking_platform.core.tables import (
    ACCEPTED_EXPORTS,
    CLEANED_BOOKINGS,
    PUBLISHED_TOGETHER,
    QUARANTINED_BOOKINGS,
    RAW_BOOKINGS,
)
from booking_platform.core.warehouse import (
    column_types,
    publish_slices,
    read_slice,
    replace_slices,
    staged_name,
)
from booking_platform.defs.assets.catalog_tags import stage
from booking_platform.defs.partitions import as_of_partitions, partition_as_of
from booking_platform.defs.resources import PlatformSettings, Warehouse
from booking_platform.defs.retries import passing_errors_retried
from booking_platform.defs.table_metadata import table_metadata

OUTCOME_FIELDS = ["booking_id", "arrival_date", "is_canceled"]
# a run tagged with it may publish an export that shrinks by more than the allowed share
ACCEPT_SHRINK_TAG = "booking_platform/accept_shrink"
SNAPSHOT_TAG = "booking_platform/snapshot"


def staging_run(context: dg.AssetExecutionContext) -> str:
    """The run that owns a staged export: re-executions of a run (from failure) share it."""
    return context.run.root_run_id or context.run_id


@dg.asset(**stage("ingestion"), kinds={"duckdb"}, partitions_def=as_of_partitions)
@passing_errors_retried  # a URL source
def raw_bookings(
    context: dg.AssetExecutionContext, platform: PlatformSettings, warehouse: Warehouse
) -> dg.MaterializeResult:
    """The export as of the partition's date (all columns as text), with a stable booking_id,
    written to staging (`raw_bookings__staged`): `accepted_bookings` publishes it once audited.

    The snapshot landed for that date when there is one, else the configured source. A file
    that cannot be used as a whole, or an as-of date outside its data, raises before any row is
    written.
    """
    settings = platform.settings
    as_of = partition_as_of(context)
    landed = snapshot_path(settings.landing_dir, as_of)
    requested = context.run.tags.get(SNAPSHOT_TAG)
    if landed is None and requested:
        raise dg.Failure(f"{settings.landing_dir / requested}: landed, but gone before it was read")
    path = landed or resolve_source(settings.source, settings.cache_dir)
    source = read_bookings(path)
    check_as_of_inside(source.frame, as_of, path)
    manifest = pd.DataFrame(
        {
            "raw_rows": [len(source.frame)],
            "source": [str(path)],
            "sha256": [source.sha256],
            "run_id": [staging_run(context)],
            "staged_at": [pd.Timestamp.now(tz="UTC").tz_localize(None)],
        }
    )
    with warehouse.connect() as connection:
        replace_slices(
            connection,
            as_of,
            {
                staged_name(RAW_BOOKINGS.name): source.frame,
                staged_name(ACCEPTED_EXPORTS.name): manifest,
            },
        )
        stored = table_metadata(
            connection, RAW_BOOKINGS, as_of, name=staged_name(RAW_BOOKINGS.name)
        )
    context.log.info(f"staged {len(source.frame):,} rows from {path}")
    return dg.MaterializeResult(
        metadata={
            "rows": len(source.frame),
            "sha256": source.sha256,
            "source": dg.MetadataValue.path(str(path)),
            "landed_snapshot": landed is not None,
            "columns": len(source.frame.columns),
            "table": staged_name(RAW_BOOKINGS.name),
            **stored,
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
    """Typed bookings with real dates; invalid rows go to the quarantine with a reason. Both are
    staged (`cleaned_bookings__staged`, `quarantined_bookings__staged`) until accepted."""
    as_of = partition_as_of(context)
    with warehouse.connect() as connection:
        raw = read_slice(connection, staged_name(RAW_BOOKINGS.name), as_of)
    result = clean_bookings(raw, as_of)
    # text stays text when the quarantine is empty (an empty object column would become INTEGER)
    quarantined = result.quarantined.astype(
        {c: "string" for c in result.quarantined.columns if c != "booking_id"}
    )
    with warehouse.connect() as connection:
        replace_slices(
            connection,
            as_of,
            {
                staged_name(CLEANED_BOOKINGS.name): result.cleaned,
                staged_name(QUARANTINED_BOOKINGS.name): quarantined,
            },
        )
        stored = table_metadata(
            connection,
            CLEANED_BOOKINGS,
            as_of,
            bookings_contract(result.cleaned.columns, as_of),
            name=staged_name(CLEANED_BOOKINGS.name),
        )
    reasons = result.quarantined["reason"].value_counts().to_dict()
    context.log.info(f"cleaned {len(result.cleaned):,}, quarantined {len(result.quarantined):,}")
    arrivals = (
        f"{result.cleaned['arrival_date'].min():%Y-%m-%d} .. "
        f"{result.cleaned['arrival_date'].max():%Y-%m-%d}"
        if len(result.cleaned)
        else "none"
    )
    return dg.MaterializeResult(
        metadata={
            "raw_rows": len(raw),
            "rows": len(result.cleaned),
            "quarantined_rows": len(result.quarantined),
            "quarantine_reasons": dg.MetadataValue.json(reasons),
            "arrivals": arrivals,
            "table": staged_name(CLEANED_BOOKINGS.name),
            **stored,
        }
    )


@dg.asset(
    **stage("ingestion"),
    kinds={"duckdb"},
    deps=[cleaned_bookings],
    partitions_def=as_of_partitions,
)
def accepted_bookings(
    context: dg.AssetExecutionContext, platform: PlatformSettings, warehouse: Warehouse
) -> dg.MaterializeResult:
    """The audited export, published: the staged slices of raw_bookings, cleaned_bookings,
    quarantined_bookings and accepted_exports replace that date's slices in one transaction.

    Runs only when every blocking check on raw_bookings and cleaned_bookings passed in the same
    run, and publishes only what this run (or a re-execution of it) staged.
    """
    as_of = partition_as_of(context)
    with warehouse.connect() as connection:
        manifest = read_slice(connection, staged_name(ACCEPTED_EXPORTS.name), as_of)
        if manifest.empty or manifest["run_id"].iloc[0] != staging_run(context):
            staged_by = "nothing" if manifest.empty else f"run {manifest['run_id'].iloc[0]}"
            raise dg.Failure(
                f"nothing staged by this run as of {as_of} ({staged_by} is staged): "
                "materialise raw_bookings and cleaned_bookings in the same run"
            )
        published = publish_slices(connection, as_of, [table.name for table in PUBLISHED_TOGETHER])
        # the cleaned bookings stand for the four: what every later asset reads
        contract = bookings_contract(column_types(connection, CLEANED_BOOKINGS.name), as_of)
        stored = table_metadata(connection, CLEANED_BOOKINGS, as_of, contract)
    context.log.info(f"published as of {as_of}: {published}")
    return dg.MaterializeResult(
        metadata={
            "as_of": str(as_of),
            **{f"{table}_rows": rows for table, rows in published.items()},
            "source": dg.MetadataValue.path(str(manifest["source"].iloc[0])),
            "sha256": str(manifest["sha256"].iloc[0]),
            "warehouse": dg.MetadataValue.path(str(platform.settings.warehouse_path)),
            **stored,
        }
    )


def latest_outcomes(connection: duckdb.DuckDBPyConnection) -> tuple[date, pd.DataFrame]:
    """The newest export's as-of date and outcomes (booking_id, arrival_date, is_canceled).

    Predictions made on any earlier date are graded on what is known now.
    """
    (as_of,) = connection.execute(f"SELECT max(as_of) FROM {CLEANED_BOOKINGS.name}").fetchone()
    return as_of, read_slice(connection, CLEANED_BOOKINGS.name, as_of)[OUTCOME_FIELDS]
