"""candidate_model (trained and logged to MLflow) and registered_model (the champion alias)."""

import json
from dataclasses import dataclass
from datetime import timedelta

import dagster as dg
import pandas as pd

from booking_platform.config import DEFAULT_CHAMPION_MAX_AGE_DAYS
from booking_platform.core import registry
from booking_platform.core.features import FeatureSet
from booking_platform.core.plots import (
    CANDIDATE_PLOT_TITLES,
    candidate_plots,
    markdown_image,
    monthly_roc_auc,
)
from booking_platform.core.training import DEFAULT_PARAMS, ValidatedModel, train_and_validate
from booking_platform.defs import metadata_keys as keys
from booking_platform.defs.assets.catalog_tags import stage
from booking_platform.defs.jobs import RETRAIN_REASON_TAG
from booking_platform.defs.partitions import as_of_partitions
from booking_platform.defs.resources import MlflowRegistry
from booking_platform.defs.retries import passing_errors_retried


class CandidateConfig(dg.Config):
    """LightGBM parameters to override, as JSON (e.g. '{"num_leaves": 15}')."""

    params_json: str = "{}"


@dataclass
class Candidate:
    """What the promotion gate judges and registered_model registers."""

    run_id: str
    model_uri: str
    as_of: str
    validated: ValidatedModel


@dg.asset(**stage("modeling"), kinds={"lightgbm", "mlflow"}, partitions_def=as_of_partitions)
@passing_errors_retried  # the MLflow store
def candidate_model(
    context: dg.AssetExecutionContext,
    config: CandidateConfig,
    booking_features: FeatureSet,
    mlflow_registry: MlflowRegistry,
) -> dg.Output[Candidate]:
    """LightGBM trained on history, validated out of time on its latest months, one MLflow run."""
    overrides = json.loads(config.params_json)
    history, features = booking_features.part("history")
    validated = train_and_validate(
        history, booking_features.builder, booking_features.as_of, overrides
    )
    plots = candidate_plots(validated)
    as_of = booking_features.as_of
    reason = context.run.tags.get(RETRAIN_REASON_TAG, "")
    run_id, model_uri = registry.log_candidate(
        mlflow_registry.experiment_id(),
        validated,
        training_features=features,
        params={
            **DEFAULT_PARAMS,
            **overrides,
            "as_of": str(as_of),
            "holdout_start": str(validated.holdout_start.date()),
        },
        tags={"dagster_run_id": context.run_id, "as_of": str(as_of)},
        plots=plots,
        run_name=f"candidate {as_of}",
        description=f"LightGBM trained on the arrivals before {as_of}, validated out of time on "
        f"those from {validated.holdout_start.date()}; Dagster run {context.run_id} "
        f"({context.run.job_name}{f', retrain reason: {reason}' if reason else ''}). The "
        "promotion gate's verdict is in tags gate.verdict and gate.comparisons.",
        parent_run_id=mlflow_registry.dagster_parent_run(context),
    )
    metrics = validated.metrics
    context.log.info(f"candidate run {run_id}: holdout ROC AUC {metrics['roc_auc']:.4f}")
    return dg.Output(
        Candidate(
            run_id=run_id,
            model_uri=model_uri,
            as_of=str(booking_features.as_of),
            validated=validated,
        ),
        metadata={
            keys.MLFLOW_RUN_ID: run_id,
            "mlflow_run": dg.MetadataValue.url(mlflow_registry.run_url(run_id)),
            "trained_on_rows": len(history),
            "holdout": f"arrivals {validated.holdout_start.date()} .. {booking_features.as_of}"
            f" (excl.), {int(metrics['rows']):,} rows",
            **{f"holdout_{k}": round(float(v), 4) for k, v in metrics.items() if k != "rows"},
            "holdout_roc_auc_by_month": dg.MetadataValue.md(
                monthly_roc_auc(validated.holdout, validated.holdout_proba).to_markdown(
                    index=False, floatfmt=".3f"
                )
            ),
            **{
                f"plot_{name}": dg.MetadataValue.md(
                    markdown_image(CANDIDATE_PLOT_TITLES[name], png)
                )
                for name, png in plots.items()
            },
        },
    )


@dg.asset(
    **stage("modeling"),
    kinds={"mlflow"},
    partitions_def=as_of_partitions,
    # reported in Dagit; champion_staleness_sensor is what retrains (on the as-of clock)
    freshness_policy=dg.FreshnessPolicy.time_window(
        fail_window=timedelta(days=DEFAULT_CHAMPION_MAX_AGE_DAYS)
    ),
)
@passing_errors_retried  # the MLflow store
def registered_model(
    context: dg.AssetExecutionContext, candidate_model: Candidate, mlflow_registry: MlflowRegistry
) -> dg.MaterializeResult:
    """Registers the gated candidate and moves alias `champion` to it in one step."""
    mlflow_registry.experiment_id()
    version, previous = registry.promote(
        mlflow_registry.model_name,
        candidate_model.model_uri,
        tags={
            "dagster_run_id": context.run_id,
            "as_of": candidate_model.as_of,
            "mlflow_run_id": candidate_model.run_id,
            "holdout_roc_auc": f"{candidate_model.validated.metrics['roc_auc']:.4f}",
        },
    )
    context.log.info(f"champion is now version {version} (was {previous})")
    return dg.MaterializeResult(
        metadata={
            "model_name": mlflow_registry.model_name,
            keys.CHAMPION_VERSION: version,
            keys.TRAINED_AS_OF: candidate_model.as_of,
            "previous_champion_version": previous or "none",
            keys.MLFLOW_RUN_ID: candidate_model.run_id,
            "model_version_url": dg.MetadataValue.url(mlflow_registry.version_url(version)),
            "mlflow_run": dg.MetadataValue.url(mlflow_registry.run_url(candidate_model.run_id)),
            "promoted_at": pd.Timestamp.now(tz="UTC").isoformat(),
        }
    )
