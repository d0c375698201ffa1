"""eda_report: the exploratory analysis of the cleaned bookings, as pictures in Dagit and HTML."""

import dagster as dg

from booking_platform.core.eda import build_eda, write_report
from booking_platform.core.plots import markdown_image
from booking_platform.core.tables import CLEANED_BOOKINGS
from booking_platform.core.warehouse import read_slice
from booking_platform.defs.assets.catalog_tags import stage
from booking_platform.defs.assets.ingestion import accepted_bookings
from booking_platform.defs.partitions import as_of_partitions, partition_as_of
from booking_platform.defs.resources import PlatformSettings, Warehouse


@dg.asset(
    **stage("analysis"),
    deps=[accepted_bookings],
    kinds={"matplotlib"},
    partitions_def=as_of_partitions,
)
def eda_report(
    context: dg.AssetExecutionContext, platform: PlatformSettings, warehouse: Warehouse
) -> dg.MaterializeResult:
    """Cancellation rates by hotel, season, lead time, deposit, segment, customer type, ADR,
    requests and parking; a correlation heatmap; the duplicate rows. One PNG per view and a
    self-contained eda.html under reports/; each picture inline in this materialisation.
    """
    settings, as_of = platform.settings, partition_as_of(context)
    with warehouse.connect(read_only=True) as connection:
        cleaned = read_slice(connection, CLEANED_BOOKINGS.name, as_of)
    report = build_eda(cleaned, as_of)
    try:
        paths = write_report(report, settings.reports_dir / f"eda_{as_of}")
        pictures = {
            f"plot_{v.name}": dg.MetadataValue.md(markdown_image(v.title, v.png, v.note))
            for v in report.views
        }
    finally:
        report.close()
    context.log.info(f"EDA of {report.history_bookings:,} bookings: {paths['html']}")
    return dg.MaterializeResult(
        metadata={
            "as_of": str(as_of),
            "bookings": report.bookings,
            "history_bookings": report.history_bookings,
            "cancel_rate": report.cancel_rate,
            "duplicate_rows": report.duplicate_rows,
            "duplicate_groups": report.duplicate_groups,
            "report": dg.MetadataValue.path(str(paths["html"])),
            "report_url": dg.MetadataValue.url(paths["html"].as_uri()),
            **pictures,
        }
    )
