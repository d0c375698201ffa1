"""MLflow tracking and registry: one run per candidate, alias `champion` for production."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.data.digest_utils import MAX_ROWS, get_normalized_md5_digest
from mlflow.data.pandas_dataset import PandasDataset
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from booking_platform.core.champions import TrainedVersion, champion_as_of, trained_on_newer_data
from booking_platform.core.cleaning import type_bookings
from booking_platform.core.drift import reference_sample
from booking_platform.core.local_registry import AS_OF_TAG, CHAMPION
from booking_platform.core.source import FEATURE_SOURCE_COLUMNS
from booking_platform.core.training import CancellationModel, ValidatedModel

if TYPE_CHECKING:  # the search's libraries (optuna, xgboost) stay out of the service's imports
    from booking_platform.core.search import SearchResult

EXPERIMENT_NAME = "booking_cancellation"
CHALLENGER = "challenger"  # set by a person to A/B test or shadow a model in the HTTP service
DAGSTER_RUN_TAG = "dagster_run_id"  # on a candidate's MLflow run: the Dagster run that opened it
REFERENCE_ARTIFACT = "reference/features.parquet"
# Listed by hand: inferring requirements costs seconds per model and lists unrelated packages.
PIP_REQUIREMENTS = ["lightgbm", "pandas<3", "scikit-learn", "booking_platform"]


class CancellationPyfunc(mlflow.pyfunc.PythonModel):
    """Scores bookings in the source schema; returns probabilities, not labels."""

    def __init__(self, model: CancellationModel) -> None:
        self.model = model

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:  # noqa: ARG002
        bookings = type_bookings(model_input)
        return pd.DataFrame({"cancel_probability": self.model.predict_proba(bookings)})


@dataclass(frozen=True)
class RegisteredVersion:
    version: str
    run_id: str
    model: CancellationModel


def is_tracking_server(tracking_uri: str) -> bool:
    """A tracking server proxies artifacts itself: clients on any host need no shared folder."""
    return tracking_uri.startswith(("http://", "https://"))


def use_store(tracking_uri: str, artifact_root: Path) -> str:
    """Point MLflow at the store and make sure the experiment keeps artifacts under the home
    (or, behind a tracking server, where the server's --artifacts-destination says)."""
    # set_tracking_uri and set_registry_uri also export MLFLOW_TRACKING_URI and
    # MLFLOW_REGISTRY_URI, which the settings (and every process started from this one) read as
    # the person's choice: put back what they had, or the next command in this process, or a
    # cluster worker started from it, would take this store for theirs
    chosen = {name: os.environ.get(name) for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    for name, value in chosen.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    client = MlflowClient()
    experiment = client.get_experiment_by_name(EXPERIMENT_NAME)
    if experiment is not None:
        return experiment.experiment_id
    location = None
    if not is_tracking_server(tracking_uri):
        artifact_root.mkdir(parents=True, exist_ok=True)
        location = artifact_root.as_uri()
    try:
        return client.create_experiment(EXPERIMENT_NAME, artifact_location=location)
    except MlflowException:
        # runs in other processes create it at the same moment (the cluster runs side by side)
        experiment = client.get_experiment_by_name(EXPERIMENT_NAME)
        if experiment is None:
            raise
        return experiment.experiment_id


SCHEMA_SAMPLE_ROWS = 1000


def pandas_digest(frame: pd.DataFrame) -> str:
    """MLflow's digest of a frame (`compute_pandas_digest`), without its cost: MLflow decides
    which columns are text by calling `type` on every value of the whole frame (not of the
    10,000 rows it hashes), 1.4 s of candidate_model; each column's distinct values say the same.
    """
    trimmed = frame.head(MAX_ROWS)
    text = [all(type(value) is str for value in frame[column].unique()) for column in frame]
    kept = trimmed.columns[text].union(trimmed.select_dtypes(include=[np.number]).columns)
    return get_normalized_md5_digest(
        [pd.util.hash_pandas_object(trimmed[kept]).values, np.int64(len(frame))]
        + [str(column).encode() for column in frame.columns]
    )


def dataset(frame: pd.DataFrame, name: str, targets: str | None = None) -> PandasDataset:
    """`frame` as an MLflow dataset, its schema inferred from a few rows of each kind.

    MLflow infers a dataset's schema by looking at every value of every column: for the training
    features and the holdout, 17 of the 39 s candidate_model took under cProfile (2026-12-02).
    A column's type is its dtype's, and whether it is required depends only on whether a value
    is missing: the first rows plus the first row missing each column give the same schema.
    """
    logged = mlflow.data.from_pandas(frame, name=name, targets=targets, digest=pandas_digest(frame))
    missing = frame.isna()
    rows = missing.index[missing.to_numpy().argmax(axis=0)[missing.any().to_numpy()]]
    sample = pd.concat([frame.head(SCHEMA_SAMPLE_ROWS), frame.loc[rows.unique()]])
    sampled = PandasDataset(sample, source=logged.source, digest=logged.digest)
    vars(logged)["schema"] = sampled.schema  # a cached_property: what to_dict() logs
    return logged


def log_candidate(
    experiment_id: str,
    validated: ValidatedModel,
    training_features: pd.DataFrame,
    params: dict,
    tags: dict[str, str],
    plots: dict[str, bytes],
    run_name: str | None = None,
    description: str | None = None,
    parent_run_id: str | None = None,
) -> tuple[str, str]:
    """Log one candidate as its own MLflow run; returns the run id and the logged model's URI.

    `plots`: PNG per name (core/plots.candidate_plots), logged as plots/<name>.png. The training
    features and the holdout are recorded as the run's datasets (contexts "training" and
    "holdout"); `parent_run_id` nests the run under another (the Dagster run's, see
    `parent_run`).
    """
    example = type_bookings(validated.holdout.head(5))[list(FEATURE_SOURCE_COLUMNS)]
    # numbers as doubles in the signature: a scoring request may leave any of them missing
    example = example.astype({c: "float64" for c in example.select_dtypes("number").columns})
    pyfunc = CancellationPyfunc(validated.model)
    signature = infer_signature(example, pyfunc.predict(None, example))
    with mlflow.start_run(
        experiment_id=experiment_id,
        run_name=run_name,
        description=description,
        parent_run_id=parent_run_id,
        tags=tags,
    ) as run:
        mlflow.log_params(params)
        mlflow.log_metrics({f"holdout_{k}": v for k, v in validated.metrics.items()})
        train_end = validated.model.train_end
        mlflow.log_input(
            dataset(training_features, name=f"history features to {train_end}"),
            context="training",
        )
        mlflow.log_input(
            dataset(
                validated.holdout,
                name=f"holdout arrivals {validated.holdout_start.date()} to {train_end}",
                targets="is_canceled",
            ),
            context="holdout",
        )
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / "features.parquet"
            reference_sample(training_features).to_parquet(path)
            mlflow.log_artifact(str(path), artifact_path="reference")
            pictures = Path(scratch) / "plots"
            pictures.mkdir()
            for name, png in plots.items():
                (pictures / f"{name}.png").write_bytes(png)
            mlflow.log_artifacts(str(pictures), artifact_path="plots")
        mlflow.log_dict(
            {"holdout_start": str(validated.holdout_start.date()), **validated.metrics},
            "holdout_metrics.json",
        )
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=pyfunc,
            signature=signature,
            input_example=example,
            pip_requirements=PIP_REQUIREMENTS,
        )
        return run.info.run_id, info.model_uri


PARENT_KIND_TAG = "booking_platform.kind"


def parent_run(experiment_id: str, dagster_run_id: str, name: str, note: str) -> str:
    """The MLflow run standing for one Dagster run (found by its tag, else created, finished at
    once so nothing is left RUNNING); candidates nest under it in the MLflow UI."""
    client = MlflowClient()
    found = client.search_runs(
        [experiment_id],
        filter_string=f"tags.{DAGSTER_RUN_TAG} = '{dagster_run_id}' "
        f"and tags.`{PARENT_KIND_TAG}` = 'dagster_run'",
        max_results=1,
    )
    if found:
        return found[0].info.run_id
    run = client.create_run(
        experiment_id,
        run_name=name,
        tags={
            DAGSTER_RUN_TAG: dagster_run_id,
            PARENT_KIND_TAG: "dagster_run",
            "mlflow.note.content": note,
        },
    )
    client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id


def record_gate(
    run_id: str, passed: bool, comparisons: list[str], metrics: dict[str, float]
) -> None:
    """The promotion gate's verdict on a candidate run, in MLflow's terms: tags and metrics."""
    client = MlflowClient()
    client.set_tag(run_id, "gate.verdict", "passed" if passed else "failed")
    client.set_tag(run_id, "gate.comparisons", "\n".join(comparisons))
    for key, value in metrics.items():
        client.log_metric(run_id, f"gate_{key}", value)


def run_url(ui_url: str, experiment_id: str, run_id: str) -> str:
    return f"{ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def model_version_url(ui_url: str, model_name: str, version: str) -> str:
    return f"{ui_url.rstrip('/')}/#/models/{model_name}/versions/{version}"


def alias_version(model_name: str, alias: str = CHAMPION) -> ModelVersion | None:
    """The registry entry behind an alias (version, run id), or None before the first one."""
    try:
        return MlflowClient().get_model_version_by_alias(model_name, alias)
    except MlflowException:
        return None


def load_alias_version(model_name: str, alias: str = CHAMPION) -> str | None:
    version = alias_version(model_name, alias)
    return None if version is None else str(version.version)


def load_alias(model_name: str, alias: str = CHAMPION) -> RegisteredVersion | None:
    """The model behind an alias, loaded, or None when the alias does not exist yet."""
    version = alias_version(model_name, alias)
    return None if version is None else load_version(model_name, version)


def load_version(model_name: str, version: ModelVersion) -> RegisteredVersion:
    """One registry version, loaded (by number, so a moving alias cannot switch it midway)."""
    pyfunc = mlflow.pyfunc.load_model(f"models:/{model_name}/{version.version}")
    return RegisteredVersion(
        version=str(version.version),
        run_id=version.run_id,
        model=pyfunc.unwrap_python_model().model,
    )


def reference_features(run_id: str) -> pd.DataFrame:
    """The training-feature sample logged with a candidate: the drift reference."""
    path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=REFERENCE_ARTIFACT)
    return pd.read_parquet(path)


def trained_version(version: ModelVersion) -> TrainedVersion | None:
    """A version and its training date: its own `as_of` tag, else its MLflow run's (a candidate
    a person registered by hand from the MLflow UI); None when neither says."""
    as_of = version.tags.get(AS_OF_TAG)
    if as_of is None and version.run_id:
        as_of = MlflowClient().get_run(version.run_id).data.tags.get(AS_OF_TAG)
    if as_of is None:
        return None
    return TrainedVersion(str(version.version), date.fromisoformat(as_of))


def trained_versions(model_name: str) -> list[TrainedVersion]:
    """Every registered version that says what it was trained as of (the gate's registrations)."""
    found = MlflowClient().search_model_versions(f"name='{model_name}'")
    return [trained for v in found if (trained := trained_version(v)) is not None]


def alias_holder(model_name: str) -> TrainedVersion | None:
    """The version behind `champion` and its training date (None: no alias, or a version that
    does not say what it was trained as of: it then counts as older than any dated one)."""
    entry = alias_version(model_name)
    return None if entry is None else trained_version(entry)


def champion_version_as_of(model_name: str, as_of: date) -> TrainedVersion | None:
    """The version that was champion as of `as_of` (core/champions.py) and its training date."""
    return champion_as_of(trained_versions(model_name), as_of, alias_holder(model_name))


def champion_entry_as_of(model_name: str, as_of: date) -> ModelVersion | None:
    """The registry entry of the model that was champion as of `as_of`."""
    chosen = champion_version_as_of(model_name, as_of)
    return None if chosen is None else MlflowClient().get_model_version(model_name, chosen.version)


def load_champion_as_of(model_name: str, as_of: date) -> RegisteredVersion | None:
    entry = champion_entry_as_of(model_name, as_of)
    return None if entry is None else load_version(model_name, entry)


@dataclass(frozen=True)
class Registration:
    version: str
    champion: str  # the version behind `champion` afterwards
    previous_champion: str | None  # behind `champion` before (None: the first model)

    @property
    def moved_alias(self) -> bool:
        return self.champion == self.version


def promote(model_name: str, model_uri: str, as_of: date, tags: dict[str, str]) -> Registration:
    """Register the gated model, trained as of `as_of`, and move `champion` to it when it was
    trained on newer data than the current champion's.

    A model trained on older data (a backfill of earlier dates) is registered for the dates it
    belongs to (champion_as_of) and the alias stays. The replaced champion stays in the registry,
    tagged as replaced.
    """
    client = MlflowClient()
    version = str(
        mlflow.register_model(model_uri, model_name, tags={**tags, AS_OF_TAG: str(as_of)}).version
    )
    # read after registering: a promotion that registered meanwhile is seen here
    holder = alias_holder(model_name)
    previous = load_alias_version(model_name)
    if previous is not None and not trained_on_newer_data(as_of, holder and holder.as_of):
        client.set_model_version_tag(
            model_name,
            version,
            "alias_kept_by",
            f"v{previous} trained as of {holder.as_of}: newer data than this version's",
        )
        return Registration(version, champion=previous, previous_champion=previous)
    client.set_registered_model_alias(model_name, CHAMPION, version)
    if previous is not None:
        client.set_model_version_tag(model_name, previous, "replaced_by_version", version)
        client.set_model_version_tag(model_name, previous, "previous_champion", "true")
    return Registration(version, champion=version, previous_champion=previous)


def close_orphaned_runs(experiment_id: str, finished: Callable[[str], bool]) -> list[str]:
    """Mark FAILED the experiment's MLflow runs left RUNNING by a Dagster run that has ended.

    A run killed while its candidate was being logged never closes its MLflow run. `finished`
    says whether a Dagster run id belongs to a run that is over (failed, succeeded, canceled or
    unknown to the instance); runs still going, on this host or another, are left alone.
    Returns the MLflow run ids closed.
    """
    client = MlflowClient()
    running = client.search_runs(
        [experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=1000
    )
    closed = []
    for run in running:
        dagster_run_id = run.data.tags.get(DAGSTER_RUN_TAG)
        if dagster_run_id is None or not finished(dagster_run_id):
            continue
        client.set_tag(
            run.info.run_id,
            "closed_because",
            f"Dagster run {dagster_run_id} ended while this run was open",
        )
        client.set_terminated(run.info.run_id, status="FAILED")
        closed.append(run.info.run_id)
    return closed


BACKTEST_EXPERIMENT = "booking_cancellation_backtest"


def log_backtest(
    tracking_uri: str, artifact_root: Path, result: dict, artifacts: list[Path]
) -> str:
    """One MLflow run per backtest: each policy's mean AUC, ECE and retrainings, and the files."""
    use_store(tracking_uri, artifact_root)
    client = MlflowClient()
    experiment = client.get_experiment_by_name(BACKTEST_EXPERIMENT)
    location = None if is_tracking_server(tracking_uri) else (artifact_root / "backtest").as_uri()
    experiment_id = (
        experiment.experiment_id
        if experiment is not None
        else client.create_experiment(BACKTEST_EXPERIMENT, artifact_location=location)
    )
    months = result["months"]
    with mlflow.start_run(
        experiment_id=experiment_id, run_name=f"backtest {months[0]}..{months[-1]}"
    ) as run:
        mlflow.log_params({"from": months[0], "to": months[-1], **result["rules"]})
        for name, policy in result["policies"].items():
            mlflow.log_metrics(
                {
                    f"{name}_mean_roc_auc": policy["mean_auc"],
                    f"{name}_mean_calibration_error": policy["mean_ece"],
                    f"{name}_retrainings": policy["retrainings"],
                }
            )
        for path in artifacts:
            mlflow.log_artifact(str(path))
    return run.info.run_id


SEARCH_EXPERIMENT = "booking_cancellation_search"
SEARCH_KIND_TAG = "booking_platform.kind"
SEARCH_AS_OF_TAG = "booking_platform.search_as_of"


def _experiment(name: str, artifact_root: Path) -> str:
    """The experiment named `name`, created with an absolute artifact location if missing."""
    client = MlflowClient()
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return client.create_experiment(name, artifact_location=artifact_root.as_uri())


@dataclass(frozen=True)
class SearchChoice:
    """The configuration candidate_model trains with: the newest search's best, or defaults."""

    params: dict[str, object]
    run_id: str | None = None  # the search's parent run
    trial: int | None = None
    as_of: str | None = None

    def describe(self) -> str:
        if self.run_id is None:
            return "defaults (no model search as of this date or before)"
        source = "defaults" if not self.params else f"trial {self.trial}"
        return f"{source} of search run {self.run_id} (as of {self.as_of})"


def log_search(
    artifact_root: Path,
    result: SearchResult,
    table: pd.DataFrame,
    plots: dict[str, bytes],
    tags: dict[str, str],
) -> str:
    """One parent run per search, a nested run per family and per Optuna trial; returns the
    parent's run id. The parent holds the best configuration (best_params.json), the leaderboard
    and the pictures; its tags say as of when it searched, which candidate_model reads."""
    experiment_id = _experiment(SEARCH_EXPERIMENT, artifact_root / "search")
    parent_tags = {
        **tags,
        SEARCH_KIND_TAG: "model_search",
        SEARCH_AS_OF_TAG: str(result.as_of),
        "best_trial": str(result.best_trial),
    }
    with mlflow.start_run(
        experiment_id=experiment_id, run_name=f"model search as of {result.as_of}", tags=parent_tags
    ) as parent:
        mlflow.log_params(
            {
                "as_of": str(result.as_of),
                "holdout_start": str(result.holdout_start.date()),
                "budget_trials": result.budget.trials,
                "budget_seconds": result.budget.seconds,
                "seed": result.seed,
            }
        )
        best = table[table["state"] == "complete"].iloc[0]
        mlflow.log_metrics(
            {
                "best_roc_auc": float(best["roc_auc"]),
                "trials": float((table["trial"].notna()).sum()),
                "pruned_trials": float((table["state"] == "pruned").sum()),
                "search_seconds": result.seconds,
            }
        )
        mlflow.log_dict(
            {"best_trial": result.best_trial, "params": result.best_params}, "best_params.json"
        )
        mlflow.log_text(table.to_csv(index=False), "leaderboard.csv")
        with tempfile.TemporaryDirectory() as scratch:
            for name, png in plots.items():
                (Path(scratch) / f"{name}.png").write_bytes(png)
            mlflow.log_artifacts(scratch, artifact_path="plots")
        for entry in result.entries:
            name = entry.family if entry.trial is None else f"{entry.family} trial {entry.trial}"
            with mlflow.start_run(
                experiment_id=experiment_id,
                run_name=name,
                nested=True,
                tags={"family": entry.family, "state": entry.state},
            ):
                mlflow.log_params({k: v for k, v in list(entry.params.items())[:100]})
                mlflow.log_metrics(
                    {
                        **{k: v for k, v in entry.metrics.items() if v == v},  # NaN: pruned
                        "fit_seconds": entry.fit_seconds,
                        "score_seconds": entry.score_seconds,
                    }
                )
        return parent.info.run_id


def latest_search(artifact_root: Path, as_of: str) -> SearchChoice:
    """The best configuration of the newest finished search as of `as_of` or earlier (a search
    as of a later date tuned on months this candidate must not see); defaults without one."""
    experiment_id = _experiment(SEARCH_EXPERIMENT, artifact_root / "search")
    runs = MlflowClient().search_runs(
        [experiment_id],
        filter_string=f"tags.`{SEARCH_KIND_TAG}` = 'model_search' "
        "and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1000,
    )
    # ISO dates compare as text; MLflow filters tags by equality only
    eligible = [r for r in runs if r.data.tags.get(SEARCH_AS_OF_TAG, "9999") <= as_of]
    if not eligible:
        return SearchChoice(params={})
    run = max(eligible, key=lambda r: (r.data.tags[SEARCH_AS_OF_TAG], r.info.start_time))
    best = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/best_params.json")
    return SearchChoice(
        params=best["params"],
        run_id=run.info.run_id,
        trial=int(best["best_trial"]),
        as_of=run.data.tags[SEARCH_AS_OF_TAG],
    )
