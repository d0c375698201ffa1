"""Training and out-of-time validation of the cancellation model (LightGBM)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import (
    roc_auc_score,
)

from booking_platform.core.calibration import IDENTITY, METHODS, NONE, Calibrator, fit_calibrator
from booking_platform.core.features import (
    SCORED_ON,
    FeatureBuilder,
    booking_columns,
    feature_matrix,
)
from booking_platform.core.metrics import (
    DECISION_THRESHOLD,
    calibration_error,
    classification_metrics,
)

if TYPE_CHECKING:
    import lleaves

SEED = 42
N_JOBS = 2  # the machine has 2 cores; LightGBM's default can oversubscribe badly
DEFAULT_PARAMS: dict[str, float | int | str | bool] = {
    # Compared on the validation holdout among a handful of settings: smaller, faster models
    # did as well as 800-tree ones (within 0.002 AUC) at a third of the fit time; stronger
    # smoothing of the many-level categoricals (agent, company, country) added 0.001.
    "objective": "binary",
    "learning_rate": 0.1,
    "n_estimators": 250,
    "num_leaves": 31,
    "min_child_samples": 20,
    "max_bin": 63,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.7,
    "reg_lambda": 1.0,
    "cat_smooth": 20,
    "cat_l2": 20,
    "max_cat_to_onehot": 8,
    "random_state": SEED,
    "n_jobs": N_JOBS,
    "deterministic": True,
    "force_col_wise": True,
    "verbose": -1,
}
HOLDOUT_MONTHS = 2
# Share of bookings a model learns at their booking date; the others, on the 1st of a month
# while they were open. Chosen against other recipes on the backtest's months
# (docs/measurements.md, "Retraining backtest"): it keeps the booking-time ROC AUC floor
# (test_real_data) that drawing one moment per booking among all of them did not.
AT_BOOKING_SHARE = 0.5
# The validation model's calibrator learns from the months just before the holdout, scored by a
# model fit on the months before them (docs/design.md, "Calibration").
CALIBRATION_MONTHS = 2
MIN_CALIBRATION_ROWS = 200
# A calibrator must lower the holdout calibration error by this much to be kept: below it the
# difference is noise, and the identity keeps the booster's ranking untouched.
MIN_CALIBRATION_GAIN = 0.002


@dataclass
class CancellationModel:
    """What gets registered: the fitted feature builder, the booster and its calibrator."""

    builder: FeatureBuilder
    classifier: lgb.LGBMClassifier
    threshold: float = DECISION_THRESHOLD
    train_end: str = ""  # arrivals before this date trained the model
    # a class-level default, so models pickled before calibration existed load as uncalibrated
    calibrator: Calibrator = IDENTITY

    def calibrated(self, raw: np.ndarray) -> np.ndarray:
        """The reported probabilities for the booster's own (`scores` below)."""
        return self.calibrator.apply(raw)

    def scores(
        self, matrix: np.ndarray, trees: lleaves.Model | None = None, n_jobs: int = N_JOBS
    ) -> np.ndarray:
        """Probabilities of encoded bookings (FeatureBuilder.encode), calibrated: the one scoring
        path of batch predictions, `predict`, the backtests and the HTTP service. `trees`: the
        booster compiled (core/compiled_trees.py), when it was: the same probabilities (to
        ~1e-15), faster (docs/measurements.md, issue 15)."""
        if trees is not None:
            return self.calibrated(trees.predict(matrix, n_jobs=n_jobs))
        return self.calibrated(self.classifier.booster_.predict(matrix, num_threads=n_jobs))

    def predict_proba(
        self,
        bookings: pd.DataFrame,
        features: pd.DataFrame | None = None,
        trees: lleaves.Model | None = None,
    ) -> np.ndarray:
        """`features`: builder.transform(bookings), when the caller has built them already."""
        if features is None:
            return self.scores(self.builder.encode(booking_columns(bookings)), trees)
        return self.scores(feature_matrix(features), trees)


def holdout_start(as_of: date, months: int = HOLDOUT_MONTHS) -> pd.Timestamp:
    """First day of the out-of-time holdout: the latest `months` whole months before as-of."""
    return (pd.Timestamp(as_of) - pd.DateOffset(months=months)).normalize()


def _month_index(dates: pd.Series) -> np.ndarray:
    return (dates.dt.year * 12 + dates.dt.month - 1).to_numpy(dtype="int64")


def training_questions(history: pd.DataFrame, seed: int = SEED) -> pd.DataFrame:
    """History, each booking once, with the date the model is asked about it (SCORED_ON).

    A scoring run on the 1st of a month asks about bookings still open that day, and there the
    cancellation rate is a third of the rate at booking time: a model that only ever saw
    bookings at their booking date answers the wrong question (docs/design.md, "Features and the
    question scoring asks"). So each booking is asked at its booking date with probability
    AT_BOOKING_SHARE, else on a 1st of a month, drawn at random, between its booking and its
    arrival on which it was still open.
    Bookings never open on a 1st stay at their booking date. One row per booking keeps the fit
    as fast as before; the label is the booking's final outcome either way.
    """
    rng = np.random.default_rng(seed)
    first = _month_index(history["booking_date"]) + 1  # the 1st after the booking date
    last = _month_index(history["arrival_date"])  # the 1st on or before arrival
    cancelled = history["reservation_status"].eq("Canceled").to_numpy()
    status_month = _month_index(history["reservation_status_date"].fillna(history["arrival_date"]))
    last = np.where(cancelled, np.minimum(last, status_month), last)
    months_open = np.maximum(last - first + 1, 0)
    landmark = first + np.floor(rng.random(len(history)) * months_open).astype("int64")
    at_booking = (rng.random(len(history)) < AT_BOOKING_SHARE) | (months_open == 0)
    month_starts = (landmark - 1970 * 12).astype("datetime64[M]").astype("datetime64[ns]")
    scored_on = np.where(at_booking, history["booking_date"].to_numpy(), month_starts)
    return history.assign(**{SCORED_ON: scored_on})


def fit_classifier(
    features: pd.DataFrame, labels: np.ndarray, params: dict | None = None
) -> lgb.LGBMClassifier:
    classifier = lgb.LGBMClassifier(**{**DEFAULT_PARAMS, **(params or {})})
    return classifier.fit(features, labels)


def fit_classifiers(
    features: pd.DataFrame,
    labels: np.ndarray,
    subsets: dict[str, np.ndarray],
    params: dict | None = None,
) -> dict[str, lgb.LGBMClassifier]:
    """Fit one classifier per named subset of the rows (a boolean mask), side by side on one
    thread each.

    On these sizes LightGBM gains little from a second thread (one thread is 1.36x slower, not
    2x), so two fits side by side finish sooner than one after the other on both threads
    (docs/design.md, "Three fits side by side"). The models equal the ones fit on N_JOBS
    threads: the histograms are built column-wise and deterministically, whatever the thread
    count. The largest subset starts first so that the smaller ones fill the other thread; each
    subset's rows are copied out only while it is being fit (memory at ten times the data).
    """
    threads = {**DEFAULT_PARAMS, **(params or {})}["n_jobs"]
    one_thread = {**(params or {}), "n_jobs": 1}

    def fit(rows: np.ndarray) -> lgb.LGBMClassifier:
        subset = features if rows.all() else features[rows]
        return fit_classifier(subset, labels[rows], one_thread)

    largest_first = sorted(subsets, key=lambda name: -subsets[name].sum())
    with ThreadPoolExecutor(max_workers=N_JOBS, thread_name_prefix="fit") as pool:
        futures = {name: pool.submit(fit, subsets[name]) for name in largest_first}
    # the fitted models score on as many threads as asked, like any other
    return {name: futures[name].result().set_params(n_jobs=threads) for name in subsets}


@dataclass(frozen=True)
class CalibrationChoice:
    """Which calibrator the candidate got, and the holdout calibration error of each method."""

    method: str
    holdout_error_by_method: dict[str, float] = field(default_factory=dict)
    reason: str = ""


@dataclass(frozen=True)
class ValidatedModel:
    model: CancellationModel  # refit on all history: what gets registered
    metrics: dict[str, float]  # earned on the holdout by the same recipe fit before it
    holdout: pd.DataFrame  # cleaned holdout rows, so the gate can score the champion on them
    holdout_proba: np.ndarray  # calibrated as the registered model calibrates
    holdout_start: pd.Timestamp
    calibration: CalibrationChoice = CalibrationChoice(NONE)


def _choose_calibration(
    earlier: lgb.LGBMClassifier,
    features: pd.DataFrame,
    labels: np.ndarray,
    in_slice: np.ndarray,
    holdout_labels: np.ndarray,
    holdout_raw: np.ndarray,
) -> tuple[CalibrationChoice, Calibrator]:
    """Fit each method on the calibration slice as scored by `earlier` (a model that never saw
    it) and keep the one with the lowest calibration error on the holdout, or none when no
    method gains MIN_CALIBRATION_GAIN. Returns the choice and the calibrator the holdout metrics
    are computed with."""
    slice_raw = earlier.predict_proba(features[in_slice])[:, 1]
    fitted = {m: fit_calibrator(m, labels[in_slice], slice_raw) for m in METHODS}
    errors = {m: calibration_error(holdout_labels, c.apply(holdout_raw)) for m, c in fitted.items()}
    best = min(errors, key=errors.get)
    if errors[NONE] - errors[best] < MIN_CALIBRATION_GAIN:
        best = NONE
    reason = (
        f"lowest holdout calibration error ({errors[best]:.4f}; uncalibrated {errors[NONE]:.4f})"
    )
    return CalibrationChoice(best, errors, reason), fitted[best]


def train_and_validate(
    history: pd.DataFrame,
    builder: FeatureBuilder,
    as_of: date,
    params: dict | None = None,
    seed: int = SEED,
    calibrate: bool = True,
) -> ValidatedModel:
    """Validate out of time, calibrate, then refit on all history.

    `builder` was fit on `history`. Each booking is asked about once (training_questions). The
    recipe is fit on bookings that arrived before the holdout (the latest HOLDOUT_MONTHS months)
    and scored on the holdout's; those are the reported metrics. The registered model is the same
    recipe refit on all history, because the most recent months matter most for bookings about
    to arrive (see docs/design.md). The point-in-time rates mean no row's features contain its
    own or any later outcome. `seed` draws the questions and LightGBM's row and column samples.

    Calibration (`calibrate`): a model fit on arrivals before the CALIBRATION_MONTHS preceding
    the holdout scores those months; isotonic and Platt maps are fit there and the method is
    chosen on the holdout (_choose_calibration), whose reported metrics use that calibrator. The
    registered model's calibrator is the chosen method refit on the holdout as the validation
    model scored it: the newest months a model had not seen, which is the relation the
    registered model has to the bookings it will score.
    """
    history = training_questions(history, seed)
    params = {"random_state": seed, **(params or {})}
    features = builder.transform(history)
    start = holdout_start(as_of)
    arrival = history["arrival_date"]
    in_holdout = (arrival >= start).to_numpy()
    labels = history["is_canceled"].to_numpy()
    if not in_holdout.any() or len(np.unique(labels[in_holdout])) < 2:
        raise ValueError(f"no usable holdout: arrivals from {start.date()} to {as_of}")
    if in_holdout.all():
        raise ValueError(f"no history before the holdout start {start.date()}")
    slice_start = holdout_start(start.date(), CALIBRATION_MONTHS)
    before_slice = (arrival < slice_start).to_numpy()
    in_slice = ~before_slice & ~in_holdout
    choice, holdout_calibrator = CalibrationChoice(NONE, reason="not asked"), IDENTITY
    if calibrate and (
        in_slice.sum() < MIN_CALIBRATION_ROWS
        or len(np.unique(labels[in_slice])) < 2
        or len(np.unique(labels[before_slice])) < 2
    ):
        calibrate = False
        choice = CalibrationChoice(
            NONE,
            reason=f"too little history for a calibration slice ({int(in_slice.sum())} "
            f"arrivals {slice_start.date()}..{start.date()}, need {MIN_CALIBRATION_ROWS})",
        )
    subsets = {"final": np.ones(len(labels), dtype=bool), "validation": ~in_holdout}
    if calibrate:
        subsets["earlier"] = before_slice
    fitted = fit_classifiers(features, labels, subsets, params)
    raw = fitted["validation"].predict_proba(features[in_holdout])[:, 1]
    holdout_labels = labels[in_holdout]
    if calibrate:
        choice, holdout_calibrator = _choose_calibration(
            fitted["earlier"], features, labels, in_slice, holdout_labels, raw
        )
    proba = holdout_calibrator.apply(raw)
    metrics = classification_metrics(holdout_labels, proba)
    metrics["uncalibrated_roc_auc"] = float(roc_auc_score(holdout_labels, raw))
    metrics["uncalibrated_calibration_error"] = calibration_error(holdout_labels, raw)
    final = CancellationModel(
        builder=builder,
        classifier=fitted["final"],
        train_end=str(as_of),
        calibrator=fit_calibrator(choice.method, holdout_labels, raw),
    )
    return ValidatedModel(
        model=final,
        metrics=metrics,
        holdout=history[in_holdout],
        holdout_proba=proba,
        holdout_start=start,
        calibration=choice,
    )
