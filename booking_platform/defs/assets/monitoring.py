"""drift_report (Evidently data drift) and realised_performance (how past scores held up)."""

import dagster as dg

from booking_platform.core import performance, registry
from booking_platform.core.drift import (
    NO_RETRAINING,
    compute_drift,
    drift_verdict,
    reference_sample,
    seasonal_reference,
    year_earlier,
)
from booking_platform.core.features import FeatureSet
from booking_platform.core.retraining import RetrainingPolicy, recent_performance
from booking_platform.core.tables import PREDICTIONS, REALISED_PERFORMANCE
from booking_platform.core.warehouse import replace_tables
from booking_platform.defs import metadata_keys as keys
from booking_platform.defs.assets.catalog_tags import stage
from booking_platform.defs.assets.ingestion import accepted_bookings, latest_outcomes
from booking_platform.defs.assets.predictions import batch_predictions
from booking_platform.defs.partitions import as_of_partitions
from booking_platform.defs.resources import MlflowRegistry, PlatformSettings, Warehouse
from booking_platform.defs.retries import passing_errors_retried
from booking_platform.defs.table_metadata import table_metadata


@dg.asset(**stage("monitoring"), kinds={"evidently"}, partitions_def=as_of_partitions)
@passing_errors_retried  # the MLflow store
def drift_report(
    context: dg.AssetExecutionContext,
    booking_features: FeatureSet,
    platform: PlatformSettings,
    mlflow_registry: MlflowRegistry,
) -> dg.MaterializeResult:
    """HTML report under the data home; drift share and per-column scores as metadata.

    Reference: the bookings open on the same date a year earlier (like with like, see
    core/drift.py). An export that does not reach back a year falls back to the champion's
    training sample (or this date's history), marked `seasonal_reference: false`, which the drift
    sensor does not act on: against that reference every season looks like drift.
    """
    _, open_features = booking_features.part("open")
    reference = seasonal_reference(booking_features)
    seasonal = reference is not None
    reference_name = f"bookings open on {year_earlier(booking_features.as_of)}"
    if not seasonal:
        # the drift reference is an artifact of the champion's run: no need to load the model;
        # the champion as of the run's date, as batch_predictions scores with
        champion = mlflow_registry.champion_entry_as_of(booking_features.as_of)
        if champion is not None:
            reference = registry.reference_features(champion.run_id)
            reference_name = f"champion v{champion.version} training sample"
        else:
            reference = reference_sample(booking_features.part("history")[1])
            reference_name = "sample of this as-of date's history (no champion yet)"
    if open_features.empty:
        raise ValueError(f"no open bookings as of {booking_features.as_of}: nothing to compare")
    as_of = booking_features.as_of
    path = platform.settings.reports_dir / f"drift_report_{as_of}.html"
    summary = compute_drift(reference, open_features, path)
    verdict = drift_verdict(summary.drift_share, summary.column_scores)
    context.log.info(f"drift share {summary.drift_share:.2f}: {summary.drifted_columns}")
    return dg.MaterializeResult(
        metadata={
            keys.AS_OF: str(as_of),
            "reference": reference_name,
            keys.SEASONAL_REFERENCE: seasonal,
            # what the drift sensor acts on; against a non-seasonal reference it never acts
            keys.RETRAIN_VERDICT: (verdict if seasonal else None) or NO_RETRAINING,
            "reference_rows": len(reference),
            "current_rows": len(open_features),
            keys.DRIFT_SHARE: round(summary.drift_share, 4),
            "drifted_columns": dg.MetadataValue.json(summary.drifted_columns),
            "column_scores": dg.MetadataValue.json(summary.column_scores),
            "report": dg.MetadataValue.path(str(summary.html_path)),
            "report_url": dg.MetadataValue.url(summary.html_path.as_uri()),
        }
    )


@dg.asset(**stage("monitoring"), deps=[accepted_bookings, batch_predictions], kinds={"duckdb"})
def realised_performance(
    context: dg.AssetExecutionContext, warehouse: Warehouse
) -> dg.MaterializeResult:
    """Realised ROC AUC and calibration per arrival month, once scored bookings have arrived."""
    with warehouse.connect() as connection:
        as_of, outcomes = latest_outcomes(connection)
        predictions = connection.execute(
            f"SELECT booking_id, cancel_probability, model_version, as_of FROM {PREDICTIONS.name}"
        ).df()
        table = performance.realised_performance(predictions, outcomes, as_of)
        replace_tables(connection, {REALISED_PERFORMANCE.name: table})
        stored = table_metadata(connection, REALISED_PERFORMANCE)
    # the months the retraining policy acts on, chosen by the policy itself
    recent = recent_performance(table, RetrainingPolicy())
    context.log.info(f"realised performance over {len(table)} month(s); recent: {recent}")
    metadata: dict[str, object] = {
        keys.AS_OF: str(as_of),
        "months": len(table),
        "table": dg.MetadataValue.md(table.to_markdown(index=False, floatfmt=".3f")),
        **stored,
    }
    if recent is not None:
        metadata[keys.WORST_RECENT_ROC_AUC] = round(recent.worst_roc_auc, 4)
        metadata[keys.RECENT_MONTHS] = dg.MetadataValue.json(recent.months)
    return dg.MaterializeResult(metadata=metadata)
