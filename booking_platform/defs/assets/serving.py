"""ab_test_report: the HTTP service's champion and challenger compared on realised outcomes."""

import dagster as dg

from booking_platform.core import ab_test
from booking_platform.core.prediction_log import read_prediction_log
from booking_platform.core.tables import AB_TEST_REPORT
from booking_platform.core.warehouse import replace_tables
from booking_platform.defs.assets.catalog_tags import stage
from booking_platform.defs.assets.ingestion import accepted_bookings, latest_outcomes
from booking_platform.defs.resources import MlflowRegistry, PlatformSettings, Warehouse
from booking_platform.defs.table_metadata import table_metadata


@dg.asset(**stage("monitoring"), deps=[accepted_bookings], kinds={"sqlite", "duckdb"})
def ab_test_report(
    context: dg.AssetExecutionContext,
    platform: PlatformSettings,
    warehouse: Warehouse,
    mlflow_registry: MlflowRegistry,
) -> dg.MaterializeResult:
    """Per arm of the online A/B test (or shadow run): predictions, latency, labelled bookings
    and realised ROC AUC. Read it before moving `champion` to the challenger."""
    settings = platform.settings
    log = read_prediction_log(settings.online_predictions_path)
    with warehouse.connect() as connection:
        as_of, outcomes = latest_outcomes(connection)
        table = ab_test.ab_test_report(log, outcomes, as_of)
        replace_tables(connection, {AB_TEST_REPORT.name: table})
        stored = table_metadata(connection, AB_TEST_REPORT)
    metadata: dict[str, object] = {
        **stored,
        "as_of": str(as_of),
        "log": dg.MetadataValue.path(str(settings.online_predictions_path)),
        "logged_predictions": len(log),
        "arms": dg.MetadataValue.md(
            table.to_markdown(index=False, floatfmt=".3f")
            if len(table)
            else "no online predictions logged yet: start `booking-platform serve` and send traffic"
        ),
    }
    # the registry only when there is traffic: the main job runs this before any model exists
    champion = None if log.empty else mlflow_registry.champion_entry()
    challenger = None if log.empty else mlflow_registry.challenger_entry()
    if champion is not None and challenger is not None:
        champion_version, challenger_version = str(champion.version), str(challenger.version)
        metadata |= {"champion_version": champion_version, "challenger_version": challenger_version}
        for role, version in (("champion", champion_version), ("challenger", challenger_version)):
            arm = table[(table["variant"] == role) & (table["model_version"] == version)]
            if len(arm) and arm["roc_auc"].notna().iloc[0]:
                metadata[f"{role}_roc_auc"] = float(arm["roc_auc"].iloc[0])
                metadata[f"{role}_labelled"] = int(arm["labelled"].iloc[0])
        paired = ab_test.paired_comparison(
            log, outcomes, as_of, champion_version, challenger_version
        )
        metadata |= {k: v for k, v in paired.items() if v == v}  # NaN: no AUC, note says why
    context.log.info(f"{len(log):,} logged online predictions over {len(table)} arm(s)")
    return dg.MaterializeResult(metadata=metadata)
