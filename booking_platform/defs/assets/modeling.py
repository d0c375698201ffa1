"""candidate_model (trained and logged to MLflow), registered_model (the champion alias) and
model_search (model families and a tuned LightGBM; its best configuration feeds the candidate)."""

import json
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd

from booking_platform.config import DEFAULT_CHAMPION_MAX_AGE_DAYS
from booking_platform.core import registry
from booking_platform.core.champions import trained_on_newer_data
from booking_platform.core.features import FeatureSet
from booking_platform.core.plots import (
    CANDIDATE_PLOT_TITLES,
    candidate_plots,
    markdown_image,
    monthly_roc_auc,
)
from booking_platform.core.search import (
    SEARCH_PLOT_TITLES,
    SearchBudget,
    leaderboard,
    run_search,
    search_plots,
)
from booking_platform.core.tables import MODEL_LEADERBOARD
from booking_platform.core.training import (
    DEFAULT_PARAMS,
    SEED,
    ValidatedModel,
    train_and_validate,
)
from booking_platform.core.warehouse import replace_slices
from booking_platform.defs import metadata_keys as keys
from booking_platform.defs.assets.catalog_tags import stage
from booking_platform.defs.executors import PROMOTION_POOL
from booking_platform.defs.jobs import RETRAIN_REASON_TAG
from booking_platform.defs.partitions import as_of_partitions
from booking_platform.defs.resources import MlflowRegistry, Warehouse
from booking_platform.defs.retries import passing_errors_retried
from booking_platform.defs.table_metadata import table_metadata


class CandidateConfig(dg.Config):
    """LightGBM parameters to override, as JSON (e.g. '{"num_leaves": 15}'), on top of the
    newest model search's best configuration (or the defaults without one)."""

    params_json: str = "{}"
    # off: the booster's own probabilities, as before calibration existed (for comparisons)
    calibrate: bool = True


@dataclass
class Candidate:
    """What the promotion gate judges and registered_model registers."""

    run_id: str
    model_uri: str
    as_of: str
    validated: ValidatedModel


@dg.asset(
    **stage("modeling"),
    kinds={"lightgbm", "mlflow"},
    partitions_def=as_of_partitions,
    pool=PROMOTION_POOL,
)
@passing_errors_retried  # the MLflow store
def candidate_model(
    context: dg.AssetExecutionContext,
    config: CandidateConfig,
    booking_features: FeatureSet,
    mlflow_registry: MlflowRegistry,
) -> dg.Output[Candidate]:
    """LightGBM trained on history, validated out of time on its latest months, calibrated,
    one MLflow run. Trains with the best configuration of the newest model_search as of this
    date or earlier (recorded: which search, which trial), else with the defaults."""
    overrides = json.loads(config.params_json)
    as_of = str(booking_features.as_of)
    mlflow_registry.experiment_id()
    search = registry.latest_search(Path(mlflow_registry.artifact_root), as_of)
    params = {**search.params, **overrides}
    # no reference to the history's rows here, and its features taken after the fits: at ten
    # times the data the copies held at once were the job's memory peak (docs/design.md)
    validated = train_and_validate(
        booking_features.bookings_of("history"),
        booking_features.builder,
        booking_features.as_of,
        params,
        calibrate=config.calibrate,
    )
    plots = candidate_plots(validated)
    reason = context.run.tags.get(RETRAIN_REASON_TAG, "")
    training_features = booking_features.features_of("history")
    run_id, model_uri = registry.log_candidate(
        mlflow_registry.experiment_id(),
        validated,
        training_features=training_features,
        params={
            **DEFAULT_PARAMS,
            **params,
            "as_of": as_of,
            "holdout_start": str(validated.holdout_start.date()),
            "search_run_id": search.run_id or "none",
            "search_trial": "none" if search.trial is None else search.trial,
            "calibration": validated.calibration.method,
        },
        tags={
            registry.DAGSTER_RUN_TAG: context.run_id,
            registry.AS_OF_TAG: as_of,
            "configuration": search.describe(),
        },
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
            "configuration": search.describe(),
            "calibration": f"{validated.model.calibrator.describe()}: "
            f"{validated.calibration.reason}",
            "trained_on_rows": len(training_features),
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
    pool=PROMOTION_POOL,
    # reported in Dagit; champion_staleness_sensor is what retrains (on the as-of clock)
    freshness_policy=dg.FreshnessPolicy.time_window(
        fail_window=timedelta(days=DEFAULT_CHAMPION_MAX_AGE_DAYS)
    ),
)
@passing_errors_retried  # the MLflow store
def registered_model(
    context: dg.AssetExecutionContext, candidate_model: Candidate, mlflow_registry: MlflowRegistry
) -> dg.MaterializeResult:
    """Registers the gated candidate and moves alias `champion` to it in one step.

    A candidate with no data newer than the champion as of its date (the gate kept the champion)
    is not registered; one trained on older data than the current champion's (a backfill of
    earlier dates) is registered for those dates and the alias stays (core/champions.py).
    """
    mlflow_registry.experiment_id()
    name = mlflow_registry.model_name
    as_of = date.fromisoformat(candidate_model.as_of)
    champion_then = registry.champion_version_as_of(name, as_of)
    if not trained_on_newer_data(as_of, champion_then and champion_then.as_of):
        kept = (
            f"not registered: champion v{champion_then.version} was trained as of "
            f"{champion_then.as_of}, the candidate as of {as_of} has no newer data"
        )
        context.log.info(kept)
        return dg.MaterializeResult(
            metadata=_champion_metadata(name, champion_then)
            | {"registered_version": "none", "kept_because": kept}
        )
    registration = registry.promote(
        name,
        candidate_model.model_uri,
        as_of,
        tags={
            registry.DAGSTER_RUN_TAG: context.run_id,
            "mlflow_run_id": candidate_model.run_id,
            "holdout_roc_auc": f"{candidate_model.validated.metrics['roc_auc']:.4f}",
        },
    )
    if registration.moved_alias:
        context.log.info(
            f"champion is now version {registration.version} (was {registration.previous_champion})"
        )
    else:
        context.log.info(
            f"registered version {registration.version} for as-of {as_of}; champion stays "
            f"v{registration.champion}, trained on newer data"
        )
    return dg.MaterializeResult(
        metadata=_champion_metadata(name, None)
        | {
            "registered_version": registration.version,
            "moved_champion_alias": registration.moved_alias,
            "previous_champion_version": registration.previous_champion or "none",
            keys.MLFLOW_RUN_ID: candidate_model.run_id,
            "model_version_url": dg.MetadataValue.url(
                mlflow_registry.version_url(registration.version)
            ),
            "mlflow_run": dg.MetadataValue.url(mlflow_registry.run_url(candidate_model.run_id)),
            "promoted_at": pd.Timestamp.now(tz="UTC").isoformat(),
        }
    )


def _champion_metadata(
    model_name: str, champion: registry.TrainedVersion | None
) -> dict[str, object]:
    """Who holds `champion` after the step; the staleness sensor reads its training date."""
    holder = registry.alias_holder(model_name) or champion
    return {
        "model_name": model_name,
        keys.CHAMPION_VERSION: holder.version if holder else "none",
        keys.TRAINED_AS_OF: str(holder.as_of) if holder else "none",
    }


class ModelSearchConfig(dg.Config):
    """The search's budget: Optuna stops at whichever of trials and seconds comes first."""

    trials: int = SearchBudget.trials
    seconds: float = SearchBudget.seconds
    seed: int = SEED


@dg.asset(
    **stage("modeling"),
    kinds={"optuna", "mlflow", "duckdb"},
    partitions_def=as_of_partitions,
)
def model_search(
    context: dg.AssetExecutionContext,
    config: ModelSearchConfig,
    booking_features: FeatureSet,
    mlflow_registry: MlflowRegistry,
    warehouse: Warehouse,
) -> dg.MaterializeResult:
    """Model families and a tuned LightGBM on the candidate's own out-of-time validation: one
    MLflow parent run, a nested run per family and trial, the leaderboard in `model_leaderboard`.
    The next candidate_model trains with its best LightGBM configuration; it promotes nothing."""
    if config.trials < 1 or config.seconds <= 0:
        raise ValueError(f"model_search budget: trials {config.trials}, seconds {config.seconds}")
    history, _ = booking_features.part("history")
    result = run_search(
        history,
        booking_features.builder,
        booking_features.as_of,
        SearchBudget(trials=config.trials, seconds=config.seconds),
        config.seed,
        log=context.log.info,
    )
    table = leaderboard(result)
    plots = search_plots(result.study)
    mlflow_registry.experiment_id()
    run_id = registry.log_search(
        Path(mlflow_registry.artifact_root),
        result,
        table,
        plots,
        tags={"dagster_run_id": context.run_id},
    )
    with warehouse.connect() as connection:
        replace_slices(
            connection,
            booking_features.as_of,
            {MODEL_LEADERBOARD.name: table.assign(search_run_id=run_id)},
        )
        stored = table_metadata(connection, MODEL_LEADERBOARD, booking_features.as_of)
    best = table[table["state"] == "complete"].iloc[0]
    families = table[table["trial"].isna()].set_index("family")["roc_auc"]
    tuned = table[table["family"] == "lightgbm_tuned"]
    context.log.info(
        f"model search {run_id}: {len(tuned)} trials in {result.seconds:.0f} s; "
        f"best {best['family']} {best['roc_auc']:.4f}"
    )
    return dg.MaterializeResult(
        metadata={
            **stored,
            "mlflow_run_id": run_id,
            "holdout": f"arrivals {result.holdout_start.date()} .. "
            f"{booking_features.as_of} (excl.)",
            "best_lightgbm_trial": result.best_trial,
            "best_lightgbm_params": dg.MetadataValue.json(result.best_params),
            "notes": "; ".join(result.notes) or "none",
            "trials": len(tuned),
            "pruned_trials": int((tuned["state"] == "pruned").sum()),
            "search_seconds": float(result.seconds),
            **{f"roc_auc_{family}": float(auc) for family, auc in families.items()},
            "tuned_lightgbm_roc_auc": float(tuned["roc_auc"].max()),
            "leaderboard": dg.MetadataValue.md(table.to_markdown(index=False, floatfmt=".4f")),
            **{
                f"plot_{name}": dg.MetadataValue.md(markdown_image(SEARCH_PLOT_TITLES[name], png))
                for name, png in plots.items()
            },
        }
    )
