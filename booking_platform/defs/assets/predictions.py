"""batch_predictions: the champion's scores for the open bookings, in DuckDB `predictions`."""

from datetime import timedelta

import dagster as dg
import pandas as pd

from booking_platform.core.compiled_trees import compiled_trees
from booking_platform.core.contracts import predictions_contract
from booking_platform.core.explanations import REASONS_PER_BOOKING
from booking_platform.core.features import FeatureSet
from booking_platform.core.scoring import score_bookings
from booking_platform.core.tables import PREDICTIONS
from booking_platform.core.warehouse import replace_predictions
from booking_platform.defs.assets.catalog_tags import stage
from booking_platform.defs.assets.modeling import registered_model
from booking_platform.defs.partitions import as_of_partitions
from booking_platform.defs.resources import MlflowRegistry, PlatformSettings, Warehouse
from booking_platform.defs.retries import passing_errors_retried
from booking_platform.defs.table_metadata import table_metadata


@dg.asset(
    **stage("predictions"),
    deps=[registered_model],
    partitions_def=as_of_partitions,
    kinds={"duckdb"},
    # reported in Dagit; the daily scoring schedule is what keeps it fresh
    freshness_policy=dg.FreshnessPolicy.time_window(
        fail_window=timedelta(days=1), warn_window=timedelta(hours=20)
    ),
)
@passing_errors_retried  # the MLflow store
def batch_predictions(
    context: dg.AssetExecutionContext,
    booking_features: FeatureSet,
    platform: PlatformSettings,
    warehouse: Warehouse,
    mlflow_registry: MlflowRegistry,
) -> dg.MaterializeResult:
    """Scores open bookings with the model that was champion as of the run's date (the newest
    promoted model trained as of a date not after it; core/champions.py), so a backfill never
    scores a date with a model that saw later arrivals; a rerun for the same as-of replaces its
    rows, and brings them level with a champion promoted after they were written."""
    as_of = booking_features.as_of
    champion = mlflow_registry.champion_as_of(as_of)
    if champion is None:
        raise ValueError(
            f"no model was champion as of {as_of}: every registered model was trained on later "
            f"arrivals (or none exists); run booking_platform_job or retraining_job as of {as_of} "
            "to train one for that date"
        )
    open_rows, _ = booking_features.part("open")
    # the service's compiled trees when it compiled this champion; LightGBM's own otherwise
    trees = compiled_trees(
        champion.model.classifier.booster_, platform.settings.compiled_models_path
    )
    predictions = score_bookings(
        champion.model, open_rows, champion.version, reasons=REASONS_PER_BOOKING, trees=trees
    ).assign(as_of=as_of, scored_at=pd.Timestamp.now(tz="UTC").tz_localize(None))
    contract = predictions_contract()
    # a probability outside [0, 1] or a booking without reasons never reaches the table
    contract.validate(predictions, lazy=True)
    with warehouse.connect() as connection:
        replace_predictions(connection, as_of, predictions)
        table = table_metadata(connection, PREDICTIONS, as_of, contract)
    context.log.info(
        f"wrote {len(predictions):,} predictions as of {as_of} with v{champion.version}"
    )
    return dg.MaterializeResult(
        metadata={
            "table": f"{platform.settings.warehouse_location}::{PREDICTIONS.name}",
            "rows": len(predictions),
            "as_of": str(as_of),
            "model_version": champion.version,
            "compiled_trees": trees is not None,
            "model_version_url": dg.MetadataValue.url(
                mlflow_registry.version_url(champion.version)
            ),
            "predicted_cancellations": int(predictions["predicted_cancel"].sum()),
            "mean_cancel_probability": round(float(predictions["cancel_probability"].mean()), 4),
            "top_risk": dg.MetadataValue.md(
                predictions.nlargest(10, "cancel_probability")[
                    ["booking_id", "cancel_probability", "reason_1", "reason_2", "reason_3"]
                ].to_markdown(index=False, floatfmt=".3f")
            ),
            **table,
        }
    )
