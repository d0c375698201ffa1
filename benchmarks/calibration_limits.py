"""How low can the calibration error go on one as-of date's arrivals, and do recency weights or
a seasonal calibrator lower it? (issue 17)

The floor: even a model whose probabilities are exactly right shows some calibration error on
the bookings of one date, because the outcomes are one draw. This script draws those outcomes
from the candidate's own probabilities (so the model is right by construction) and reports the
median and 90th percentile of the calibration error it would show: with independent bookings,
with identical rows cancelling together (issue 16's groups), and with a shared log-odds shock
per hotel and arrival month on top (issue 16's shock: the sd the net demand replay measured).
Beside it, the error the candidate really shows.

Recency weights: the same candidate refit with each training question weighted by
0.5 ** (days before the as-of date it was asked / half-life), a standard answer to drift.

Seasonal calibrators: Platt and isotonic maps fit on the arrivals of the same months a year
earlier (SEASON_MONTHS from the as-of date's month), scored by the candidate's recipe fit on the
rest of history, then applied to the candidate: a calibration that knows the season.

Candidate as `open_bookings_level.py` trains it (uncalibrated, seed 42). Sets as the model
search reports them: all arrivals from the as-of date asked at booking; the bookings open on it.

    .venv/bin/python benchmarks/calibration_limits.py --as-of 2016-09-01 2017-01-01 2017-05-01 \
        --half-lives 730 365 180
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import lightgbm as lgb
import numpy as np
import pandas as pd
from _common import DEFAULT_AS_OF, load_cleaned, source_parser
from rich.console import Console
from rich.table import Table
from scipy.special import expit, logit
from seed_model_comparison import test_sets
from sklearn.metrics import roc_auc_score

from booking_platform.core.calibration import METHODS, Calibrator, fit_calibrator
from booking_platform.core.features import SCORED_ON, FeatureBuilder, FeatureSet, build_feature_set
from booking_platform.core.metrics import calibration_error
from booking_platform.core.net_demand import cancellation_units
from booking_platform.core.performance_estimation import (
    calibration_error_per_draw,
    simulated_labels,
)
from booking_platform.core.training import (
    DEFAULT_PARAMS,
    SEED,
    CancellationModel,
    fit_classifier,
    train_and_validate,
    training_questions,
)

DRAWS = 200
SEASON_MONTHS = 4  # the months after the as-of date the sets mostly hold (May-August for May)
FLOOR_SHOCKS = (0.0, 0.5, 0.75)  # log-odds sd; issue 16's replay chose 0.5-1.0 for its intervals


def chance_errors(
    rows: pd.DataFrame, proba: np.ndarray, grouped: bool, shock_sd: float, rng: np.random.Generator
) -> np.ndarray:
    """Calibration error of DRAWS outcome draws from `proba` itself (a model right by
    construction). `grouped`: identical rows share one draw; `shock_sd`: every hotel and arrival
    month shares one log-odds shock ~ N(0, shock_sd) per draw."""
    units = cancellation_units(rows) if grouped else None
    cell = pd.factorize(rows["hotel"] + rows["arrival_date"].dt.strftime("%Y-%m"))[0]
    shock = rng.normal(0.0, shock_sd, (DRAWS, cell.max() + 1))[:, cell]
    drawn_from = expit(logit(np.clip(proba, 1e-9, 1 - 1e-9)) + shock) if shock_sd else proba
    labels = simulated_labels(drawn_from, DRAWS, int(rng.integers(2**32)), units)
    return calibration_error_per_draw(proba, labels)


@dataclass(frozen=True)
class Questions:
    """History asked as the candidate asks it (training_questions), encoded once per date."""

    frame: pd.DataFrame
    features: pd.DataFrame
    labels: np.ndarray


def asked(feature_set: FeatureSet, history: pd.DataFrame) -> Questions:
    frame = training_questions(history, SEED)
    return Questions(frame, feature_set.builder.transform(frame), frame["is_canceled"].to_numpy())


def recency_model(
    questions: Questions, builder: FeatureBuilder, as_of: date, half_life: float
) -> CancellationModel:
    """The candidate's final fit (all history, the same questions) with recency weights."""
    age = (pd.Timestamp(as_of) - pd.to_datetime(questions.frame[SCORED_ON])).dt.days.to_numpy()
    classifier = lgb.LGBMClassifier(**{**DEFAULT_PARAMS, "random_state": SEED}).fit(
        questions.features, questions.labels, sample_weight=0.5 ** (age / half_life)
    )
    return CancellationModel(builder=builder, classifier=classifier)


def seasonal_calibrators(questions: Questions, as_of: date) -> dict[str, Calibrator]:
    """Each calibration method fit on the arrivals of the SEASON_MONTHS months from a year
    before `as_of`, as scored by the candidate's recipe fit on the rest of history."""
    start = pd.Timestamp(as_of) - pd.DateOffset(years=1)
    end = start + pd.DateOffset(months=SEASON_MONTHS)
    season = questions.frame["arrival_date"].between(start, end, inclusive="left").to_numpy()
    features, labels = questions.features, questions.labels
    scorer = fit_classifier(features[~season], labels[~season], {"random_state": SEED})
    raw = scorer.predict_proba(features[season])[:, 1]
    return {method: fit_calibrator(method, labels[season], raw) for method in METHODS}


def _error_and_level(labels: np.ndarray, proba: np.ndarray) -> str:
    return f"{calibration_error(labels, proba):.4f} / {proba.mean() - labels.mean():+.3f}"


def main() -> None:
    parser = source_parser(__doc__.splitlines()[0])
    parser.add_argument("--as-of", nargs="+", type=date.fromisoformat, default=[DEFAULT_AS_OF])
    parser.add_argument("--half-lives", nargs="*", type=float, default=[730.0, 365.0, 180.0])
    args = parser.parse_args()
    cleaned = load_cleaned(args.source)
    rng = np.random.default_rng(SEED)
    floor = Table(title="Calibration error: the candidate's, and a right model's by chance")
    for column in ("as of", "set", "bookings", "candidate", "p - rate"):
        floor.add_column(column, justify="right")
    for shock in FLOOR_SHOCKS:
        for grouped in (False, True):
            floor.add_column(
                f"chance, {'groups' if grouped else 'independent'}, shock {shock}\nmedian / p90",
                justify="right",
            )
    seasonal = Table(title="Seasonal calibrators: calibration error / p - rate")
    for column in ("as of", "set", *METHODS):
        seasonal.add_column(column, justify="right")
    weighted = Table(title="Recency weights: ROC AUC / calibration error / p - rate")
    for column in ("as of", "set", "no weights", *(f"half-life {h:g} d" for h in args.half_lives)):
        weighted.add_column(column, justify="right")
    for as_of in args.as_of:
        feature_set = build_feature_set(cleaned, as_of)
        history, _ = feature_set.part("history")
        models = {
            "no weights": train_and_validate(
                history, feature_set.builder, as_of, seed=SEED, calibrate=False
            ).model
        }
        questions = asked(feature_set, history)
        for half_life in args.half_lives:
            models[half_life] = recency_model(questions, feature_set.builder, as_of, half_life)
        calibrators = seasonal_calibrators(questions, as_of)
        for name, rows in test_sets(cleaned, as_of).items():
            labels = rows["is_canceled"].to_numpy()
            cells = []
            for model in models.values():
                proba = model.predict_proba(rows)
                cells.append(
                    f"{roc_auc_score(labels, proba):.4f} / {_error_and_level(labels, proba)}"
                )
            weighted.add_row(str(as_of), name, *cells)
            proba = models["no weights"].predict_proba(rows)  # uncalibrated
            seasonal.add_row(
                str(as_of),
                name,
                *(_error_and_level(labels, c.apply(proba)) for c in calibrators.values()),
            )
            chances = [
                chance_errors(rows, proba, grouped, shock, rng)
                for shock in FLOOR_SHOCKS
                for grouped in (False, True)
            ]
            floor.add_row(
                str(as_of),
                name,
                f"{len(rows):,}",
                f"{calibration_error(labels, proba):.4f}",
                f"{proba.mean() - labels.mean():+.3f}",
                *(f"{np.median(c):.3f} / {np.quantile(c, 0.9):.3f}" for c in chances),
            )
    console = Console(width=200)
    console.print(floor)
    console.print(weighted)
    console.print(seasonal)


if __name__ == "__main__":
    main()
