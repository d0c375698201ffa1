"""drift_report: Evidently data drift of the open bookings against the champion's reference."""

import dagster as dg

from booking_platform.core import registry
from booking_platform.core.drift import compute_drift, reference_sample
from booking_platform.core.features import FeatureSet
from booking_platform.defs.resources import MlflowRegistry, PlatformSettings


@dg.asset(group_name="monitoring", kinds={"evidently"})
def drift_report(
    context: dg.AssetExecutionContext,
    booking_features: FeatureSet,
    platform: PlatformSettings,
    mlflow_registry: MlflowRegistry,
) -> dg.MaterializeResult:
    """HTML report under the data home; drift share and drifted columns as metadata.

    Reference: the training-feature sample logged with the champion; before any champion exists,
    the history of this as-of date.
    """
    _, history_features = booking_features.part("history")
    _, open_features = booking_features.part("open")
    champion = mlflow_registry.champion()
    if champion is not None:
        reference, reference_name = (
            registry.reference_features(champion.run_id),
            f"champion v{champion.version} training sample",
        )
    else:
        reference = reference_sample(history_features)
        reference_name = "sample of this as-of date's history (no champion yet)"
    if open_features.empty:
        raise ValueError(f"no open bookings as of {booking_features.as_of}: nothing to compare")
    as_of = booking_features.as_of
    path = platform.settings.reports_dir / f"drift_report_{as_of}.html"
    summary = compute_drift(reference, open_features, path)
    context.log.info(f"drift share {summary.drift_share:.2f}: {summary.drifted_columns}")
    return dg.MaterializeResult(
        metadata={
            "as_of": str(as_of),
            "reference": reference_name,
            "reference_rows": len(reference),
            "current_rows": len(open_features),
            "drift_share": summary.drift_share,
            "drifted_columns": dg.MetadataValue.json(summary.drifted_columns),
            "column_scores": dg.MetadataValue.json(summary.column_scores),
            "report": dg.MetadataValue.path(str(summary.html_path)),
            "report_url": dg.MetadataValue.url(summary.html_path.as_uri()),
        }
    )
