"""Model search: other model families beside LightGBM, then LightGBM tuned with Optuna.

Everything is fit and judged on the candidate's own out-of-time validation (train_and_validate):
the same training questions drawn with the same seed, fit on arrivals before the holdout (the
latest HOLDOUT_MONTHS months of history), scored on the holdout. Nothing after the as-of date is
seen. The families are compared on the booster's own probabilities (calibration is a later,
separate step of training), all on the same features:

- lightgbm: the platform's DEFAULT_PARAMS;
- hist_gradient_boosting: scikit-learn's, native categories for the columns with few levels,
  the many-level ones (agent, company, country: more levels than its 255 bins) as their codes;
- logistic_regression: L2-regularised, one-hot categories (rare levels pooled), numbers imputed
  and standardised;
- xgboost: hist trees with native categories, sized like the LightGBM defaults.

Then Optuna (TPE, seeded) tunes LightGBM within a budget of trials and seconds, pruning a trial
whose holdout ROC AUC trails the median of earlier trials at the same boosting round. The first
trial is the defaults, so the best configuration is never worse than them on this holdout; when
no trial beats them, the defaults are the best configuration. Only LightGBM feeds candidate_model
(the HTTP service compiles LightGBM trees): the other families are there to show whether another
one would do better.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import lightgbm as lgb
import matplotlib

matplotlib.use("Agg")  # headless: plots are files, never windows
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402
import pandas as pd  # noqa: E402
import xgboost as xgb  # noqa: E402
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: E402
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import (  # noqa: E402
    average_precision_score,
    brier_score_loss,
    roc_auc_score,
)
from sklearn.pipeline import Pipeline, make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from booking_platform.core.features import CATEGORICAL_COLUMNS, FeatureBuilder  # noqa: E402
from booking_platform.core.metrics import calibration_error  # noqa: E402
from booking_platform.core.plots import figure_png  # noqa: E402
from booking_platform.core.training import (  # noqa: E402
    DEFAULT_PARAMS,
    N_JOBS,
    SEED,
    holdout_start,
    training_questions,
)

LIGHTGBM, TUNED = "lightgbm", "lightgbm_tuned"
FAMILIES = ("lightgbm", "hist_gradient_boosting", "logistic_regression", "xgboost")
# HistGradientBoosting bins a category per level and allows at most 255 bins
HGB_MAX_CATEGORIES = 255
PRUNE_EVERY_ROUNDS = 25
LEADERBOARD_COLUMNS = (
    "rank",
    "family",
    "trial",
    "state",
    "roc_auc",
    "pr_auc",
    "brier",
    "calibration_error",
    "fit_seconds",
    "score_seconds",
    "params",
)
SEARCH_PLOT_TITLES = {
    "optimization_history": "Optuna: holdout ROC AUC by trial",
    "param_importances": "Optuna: parameter importances (fANOVA)",
}


@dataclass(frozen=True)
class SearchBudget:
    """Defaults fitted to the 2-core machine: the families take about a minute, each LightGBM
    trial 2-8 s there, and the whole search stays under 10 minutes (docs/measurements.md)."""

    trials: int = 60
    seconds: float = 420.0


@dataclass(frozen=True)
class Entry:
    """One fitted configuration on the leaderboard: a family's defaults or an Optuna trial."""

    family: str
    params: dict[str, object]
    metrics: dict[str, float]  # roc_auc, pr_auc, brier, calibration_error (NaN when pruned)
    fit_seconds: float
    score_seconds: float
    trial: int | None = None
    state: str = "complete"


@dataclass
class SearchResult:
    as_of: date
    holdout_start: pd.Timestamp
    budget: SearchBudget
    seed: int
    entries: list[Entry]
    study: optuna.Study
    best_params: dict[str, object]  # LightGBM overrides of DEFAULT_PARAMS for candidate_model
    best_trial: int  # Optuna trial number; 0 is the defaults
    seconds: float
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Validation:
    """The candidate's validation split of one as-of date, features built once."""

    train: pd.DataFrame
    train_labels: np.ndarray
    holdout: pd.DataFrame
    holdout_labels: np.ndarray
    start: pd.Timestamp


def validation_split(
    history: pd.DataFrame, builder: FeatureBuilder, as_of: date, seed: int = SEED
) -> Validation:
    """train_and_validate's split: the same questions, the same holdout."""
    questions = training_questions(history, seed)
    features = builder.transform(questions)
    start = holdout_start(as_of)
    in_holdout = (questions["arrival_date"] >= start).to_numpy()
    labels = questions["is_canceled"].to_numpy()
    if not in_holdout.any() or in_holdout.all() or len(np.unique(labels[in_holdout])) < 2:
        raise ValueError(f"no usable holdout or no history before it: holdout from {start.date()}")
    return Validation(
        features[~in_holdout], labels[~in_holdout], features[in_holdout], labels[in_holdout], start
    )


def holdout_scores(labels: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    return {
        "roc_auc": float(roc_auc_score(labels, proba)),
        "pr_auc": float(average_precision_score(labels, proba)),
        "brier": float(brier_score_loss(labels, proba)),
        "calibration_error": calibration_error(labels, proba),
    }


def _codes_for_many_levels(features: pd.DataFrame, max_levels: int) -> pd.DataFrame:
    """Categorical columns with more than `max_levels` levels as their codes (NaN: unseen)."""
    many = [c for c in CATEGORICAL_COLUMNS if len(features[c].cat.categories) > max_levels]
    codes = {c: features[c].cat.codes.where(features[c].cat.codes >= 0).astype(float) for c in many}
    return features.assign(**codes)


def _family_model(family: str, seed: int):  # noqa: ANN202 - an sklearn-style estimator
    if family == "hist_gradient_boosting":
        return make_pipeline(
            FunctionTransformer(_codes_for_many_levels, kw_args={"max_levels": HGB_MAX_CATEGORIES}),
            HistGradientBoostingClassifier(
                max_iter=250,
                learning_rate=0.1,
                max_leaf_nodes=31,
                l2_regularization=1.0,
                categorical_features="from_dtype",
                early_stopping=False,
                random_state=seed,
            ),
        )
    if family == "logistic_regression":
        numbers = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
        categories = OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=50)
        columns = ColumnTransformer(
            [
                ("categories", categories, list(CATEGORICAL_COLUMNS)),
                ("numbers", numbers, _numeric_columns),
            ]
        )
        return Pipeline([("columns", columns), ("model", LogisticRegression(C=1.0, max_iter=2000))])
    if family == "xgboost":
        return xgb.XGBClassifier(
            n_estimators=250,
            learning_rate=0.1,
            max_depth=6,
            max_bin=63,
            subsample=0.8,
            colsample_bytree=0.7,
            reg_lambda=1.0,
            max_cat_to_onehot=8,
            tree_method="hist",
            enable_categorical=True,
            n_jobs=N_JOBS,
            random_state=seed,
        )
    if family == LIGHTGBM:
        return lgb.LGBMClassifier(**{**DEFAULT_PARAMS, "random_state": seed})
    raise ValueError(f"unknown model family {family!r}; expected one of {FAMILIES}")


def _numeric_columns(features: pd.DataFrame) -> list[str]:
    return [c for c in features.columns if c not in CATEGORICAL_COLUMNS]


def _timed_fit(model, validation: Validation, **fit_kwargs) -> tuple[np.ndarray, float, float]:  # noqa: ANN001, ANN003
    started = time.perf_counter()
    model.fit(validation.train, validation.train_labels, **fit_kwargs)
    fitted = time.perf_counter()
    proba = model.predict_proba(validation.holdout)[:, 1]
    return proba, fitted - started, time.perf_counter() - fitted


def _quiet(_: str) -> None:
    """The default `log`: say nothing."""


def compare_families(
    validation: Validation, seed: int = SEED, log: Callable[[str], None] = _quiet
) -> list[Entry]:
    """Each family with its defaults, fit and scored on the validation split."""
    entries = []
    for family in FAMILIES:
        model = _family_model(family, seed)
        # HistGradientBoosting has no n_jobs: it takes every core through OpenMP, whose threads
        # spin at each barrier: on the shared 2-core machine (load ~20) a fit on the real data
        # had not finished after 20 minutes on two threads and took 95 s on one
        threads = 1 if family == "hist_gradient_boosting" else N_JOBS
        with threadpool_limits(limits=threads, user_api="openmp"):
            proba, fit_seconds, score_seconds = _timed_fit(model, validation)
        estimator = model[-1] if isinstance(model, Pipeline) else model
        entries.append(
            Entry(
                family,
                _plain(estimator.get_params(deep=False)),
                holdout_scores(validation.holdout_labels, proba),
                fit_seconds,
                score_seconds,
            )
        )
        log(f"{family}: ROC AUC {entries[-1].metrics['roc_auc']:.4f}, fit {fit_seconds:.1f} s")
    return entries


def _plain(params: dict) -> dict[str, object]:
    """Parameters JSON and MLflow can hold (numbers, text, booleans; others as text)."""
    return {
        k: v if isinstance(v, int | float | str | bool) else str(v)
        for k, v in params.items()
        if v is not None
    }


def suggest_params(trial: optuna.Trial) -> dict[str, object]:
    """The tuned space around DEFAULT_PARAMS; max_bin and the rest stay at the defaults (trees
    beyond 600 rounds cost the service compile time for no gain seen here)."""
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.2, log=True),
        "n_estimators": trial.suggest_int("n_estimators", 100, 600, step=50),
        "num_leaves": trial.suggest_int("num_leaves", 15, 127, log=True),
        "min_child_samples": trial.suggest_int("min_child_samples", 5, 200, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 30.0, log=True),
        "reg_alpha": trial.suggest_float("reg_alpha", 1e-3, 10.0, log=True),
        "cat_smooth": trial.suggest_float("cat_smooth", 1.0, 100.0, log=True),
        "cat_l2": trial.suggest_float("cat_l2", 1.0, 100.0, log=True),
    }


# Trial 0: the defaults, expressed in the tuned space (reg_alpha 0 is its lower bound here)
DEFAULT_TRIAL = {
    **{k: DEFAULT_PARAMS[k] for k in ("learning_rate", "n_estimators", "num_leaves")},
    **{k: DEFAULT_PARAMS[k] for k in ("min_child_samples", "subsample", "colsample_bytree")},
    **{k: DEFAULT_PARAMS[k] for k in ("reg_lambda", "cat_smooth", "cat_l2")},
    "reg_alpha": 1e-3,
}


def _pruning_callback(trial: optuna.Trial) -> Callable[[lgb.callback.CallbackEnv], None]:
    """Report the holdout ROC AUC every PRUNE_EVERY_ROUNDS rounds; stop a trial Optuna prunes."""

    def callback(env: lgb.callback.CallbackEnv) -> None:
        if (env.iteration + 1) % PRUNE_EVERY_ROUNDS:
            return
        for _, metric, value, _ in env.evaluation_result_list:
            if metric == "auc":
                trial.report(value, env.iteration + 1)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"round {env.iteration + 1}: holdout AUC {value:.4f}")

    callback.order = 30  # after LightGBM's own evaluation
    return callback


def tune_lightgbm(
    validation: Validation,
    budget: SearchBudget,
    seed: int = SEED,
    log: Callable[[str], None] = _quiet,
) -> tuple[optuna.Study, list[Entry]]:
    """Optuna over suggest_params: TPE seeded, median pruning, the defaults as trial 0."""
    entries: list[Entry] = []

    def objective(trial: optuna.Trial) -> float:
        params = {**DEFAULT_PARAMS, "random_state": seed, **suggest_params(trial)}
        model = lgb.LGBMClassifier(**params)
        started = time.perf_counter()
        try:
            proba, fit_seconds, score_seconds = _timed_fit(
                model,
                validation,
                eval_X=validation.holdout,
                eval_y=validation.holdout_labels,
                eval_metric="auc",
                callbacks=[_pruning_callback(trial)],
            )
        except optuna.TrialPruned:
            entries.append(
                Entry(
                    TUNED,
                    _plain(trial.params),
                    dict.fromkeys(("roc_auc", "pr_auc", "brier", "calibration_error"), np.nan),
                    time.perf_counter() - started,
                    0.0,
                    trial.number,
                    "pruned",
                )
            )
            log(f"trial {trial.number}: pruned")
            raise
        metrics = holdout_scores(validation.holdout_labels, proba)
        entries.append(
            Entry(TUNED, _plain(trial.params), metrics, fit_seconds, score_seconds, trial.number)
        )
        log(f"trial {trial.number}: ROC AUC {metrics['roc_auc']:.4f}, fit {fit_seconds:.1f} s")
        return metrics["roc_auc"]

    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(
            n_startup_trials=5, n_warmup_steps=2 * PRUNE_EVERY_ROUNDS
        ),
    )
    study.enqueue_trial(DEFAULT_TRIAL)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(objective, n_trials=budget.trials, timeout=budget.seconds)
    return study, entries


def run_search(
    history: pd.DataFrame,
    builder: FeatureBuilder,
    as_of: date,
    budget: SearchBudget = SearchBudget(),
    seed: int = SEED,
    log: Callable[[str], None] = _quiet,
) -> SearchResult:
    """Compare the families, then tune LightGBM; `builder` was fit on `history`. `log` hears
    of each family and trial as it finishes."""
    started = time.perf_counter()
    validation = validation_split(history, builder, as_of, seed)
    entries = compare_families(validation, seed, log)
    study, trials = tune_lightgbm(validation, budget, seed, log)
    best = study.best_trial
    notes = []
    if best.number == 0:
        notes.append("no trial beat LightGBM's defaults on the holdout: the defaults stay")
    return SearchResult(
        as_of=as_of,
        holdout_start=validation.start,
        budget=budget,
        seed=seed,
        entries=entries + trials,
        study=study,
        best_params={} if best.number == 0 else dict(best.params),
        best_trial=best.number,
        seconds=time.perf_counter() - started,
        notes=notes,
    )


def leaderboard(result: SearchResult) -> pd.DataFrame:
    """One row per family and trial, best holdout ROC AUC first (pruned trials last)."""
    table = pd.DataFrame(
        [
            {
                "family": e.family,
                "trial": e.trial,
                "state": e.state,
                **e.metrics,
                "fit_seconds": e.fit_seconds,
                "score_seconds": e.score_seconds,
                "params": json.dumps(e.params, sort_keys=True),
            }
            for e in result.entries
        ]
    )
    table = table.sort_values(["roc_auc", "family"], ascending=[False, True], na_position="last")
    table.insert(0, "rank", range(1, len(table) + 1))
    table["trial"] = table["trial"].astype("Int64")
    return table.reset_index(drop=True)[list(LEADERBOARD_COLUMNS)]


def search_plots(study: optuna.Study) -> dict[str, bytes]:
    """PNG per picture: Optuna's own matplotlib views (importances need 2+ complete trials)."""
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    views = {"optimization_history": optuna.visualization.matplotlib.plot_optimization_history}
    if len(complete) >= 2:
        views["param_importances"] = optuna.visualization.matplotlib.plot_param_importances
    pictures = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        for name, view in views.items():
            axis = view(study)
            figure = axis.figure
            figure.set_size_inches(7, 4.5)
            figure.tight_layout()
            try:
                pictures[name] = figure_png(figure)
            finally:
                plt.close(figure)
    return pictures
