"""The searched-and-calibrated champion against today's defaults, in one run.

Three training recipes, each with several seeds (training questions and LightGBM's samples):
- defaults: DEFAULT_PARAMS, uncalibrated (the platform before model search);
- defaults + calibration: DEFAULT_PARAMS, calibrated as train_and_validate now does;
- searched + calibrated: the best configuration of a model search, calibrated.

(1) As of 2017-05-01 (search as of that date: tuned on the holdout 2017-03..04, never on the
arrivals graded): every booking arriving from it, asked at booking, and the bookings open at it,
asked on it as scoring asks (benchmarks/seed_model_comparison.test_sets).
(2) The retraining backtest (core/backtest.run_backtest, 2016-07..2017-08 by default): the search
runs as of the first backtest month, so no graded month was tuned on; every candidate of every
policy trains with each recipe.

ROC AUC, PR AUC, calibration error and Brier; means and spread (min..max) over the seeds.
Each phase's figures are written to --json as they arrive.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from _common import DEFAULT_AS_OF, cpu_snapshot, load_cleaned, others_cpu_line, source_parser
from rich.console import Console
from rich.table import Table
from seed_model_comparison import TEST_SETS, test_sets

from booking_platform.core.backtest import run_backtest
from booking_platform.core.cleaning import clean_bookings
from booking_platform.core.features import build_feature_set
from booking_platform.core.metrics import classification_metrics
from booking_platform.core.retraining import RetrainingPolicy
from booking_platform.core.search import SearchBudget, leaderboard, run_search
from booking_platform.core.snapshots import take_snapshot
from booking_platform.core.source import read_bookings
from booking_platform.core.training import SEED, train_and_validate

METRICS = ("roc_auc", "pr_auc", "calibration_error", "brier")
RECIPES = ("defaults", "defaults+calibration", "searched+calibration")
TARGETS = {"all": 0.02, "open": 0.03}  # calibration error ceilings of issue 17


def _month(text: str) -> date:
    return date.fromisoformat(f"{text}-01")


def _search(cleaned: pd.DataFrame, as_of: date, budget: SearchBudget, console: Console) -> dict:
    feature_set = build_feature_set(cleaned, as_of)
    history, _ = feature_set.part("history")
    result = run_search(history, feature_set.builder, as_of, budget, log=console.log)
    table = leaderboard(result)
    families = table[table["trial"].isna()][["family", *METRICS]]
    tuned = table[table["family"] == "lightgbm_tuned"]
    return {
        "as_of": str(as_of),
        "holdout_start": str(result.holdout_start.date()),
        "seconds": result.seconds,
        "best_trial": result.best_trial,
        "best_params": result.best_params,
        "trials": len(tuned),
        "pruned": int((tuned["state"] == "pruned").sum()),
        "families": families.to_dict(orient="records"),
        "best_tuned": tuned.iloc[0][list(METRICS)].to_dict(),
        "default_trial": tuned[tuned["trial"] == 0][list(METRICS)].iloc[0].to_dict(),
    }


def _recipe(name: str, best_params: dict) -> tuple[dict | None, bool]:
    if name == "defaults":
        return None, False
    if name == "defaults+calibration":
        return None, True
    return best_params, True


def _summary(values: list[float]) -> dict[str, float]:
    return {"mean": float(np.mean(values)), "min": float(min(values)), "max": float(max(values))}


def as_of_comparison(
    cleaned: pd.DataFrame, as_of: date, best_params: dict, seeds: list[int]
) -> dict:
    feature_set = build_feature_set(cleaned, as_of)
    history, _ = feature_set.part("history")
    tests = test_sets(cleaned, as_of)
    results: dict[str, dict] = {}
    for recipe in RECIPES:
        params, calibrate = _recipe(recipe, best_params)
        per_seed = {name: {m: [] for m in METRICS} for name in TEST_SETS}
        methods = []
        for seed in seeds:
            validated = train_and_validate(
                history, feature_set.builder, as_of, params, seed=seed, calibrate=calibrate
            )
            methods.append(validated.model.calibrator.describe())
            for name, rows in tests.items():
                metrics = classification_metrics(
                    rows["is_canceled"].to_numpy(), validated.model.predict_proba(rows)
                )
                for metric in METRICS:
                    per_seed[name][metric].append(metrics[metric])
        results[recipe] = {
            "calibrators": methods,
            **{
                name: {m: {**_summary(v), "per_seed": v} for m, v in per_seed[name].items()}
                for name in TEST_SETS
            },
        }
    return {
        "test_sets": {
            n: {"rows": len(t), "cancel_rate": float(t["is_canceled"].mean())}
            for n, t in tests.items()
        },
        "recipes": results,
    }


def backtest_comparison(
    raw: pd.DataFrame, months: list[date], best_params: dict | None, seeds, recipes
) -> dict:
    policy = RetrainingPolicy()  # the platform's own thresholds
    results = {}
    reports = Path("/tmp") / f"model_search_backtest_{time.strftime('%Y%m%d%H%M%S')}"
    for recipe in recipes:
        params, calibrate = _recipe(recipe, best_params)
        result = run_backtest(
            raw, months, policy, reports, seeds, params=params, calibrate=calibrate
        )
        results[recipe] = {
            name: {
                "mean_auc": policy["mean_auc"],
                "mean_ece": policy["mean_ece"],
                "retrainings": policy["retrainings"],
                "per_seed_auc": [s["mean_auc"] for s in policy["seeds"].values()],
                "per_seed_ece": [s["mean_ece"] for s in policy["seeds"].values()],
            }
            for name, policy in result["policies"].items()
        }
    return results


def _render(console: Console, payload: dict) -> None:
    comparison = payload.get("as_of_comparison")
    if comparison:
        table = Table(
            title=f"As of {payload['as_of']}: mean over seeds {payload['seeds']} (min..max)",
            caption=f"calibration error targets: all <= {TARGETS['all']}, open <= "
            f"{TARGETS['open']}",
        )
        table.add_column("recipe")
        for name in TEST_SETS:
            for metric in METRICS:
                table.add_column(f"{name}\n{metric}", justify="right")
        for recipe, result in comparison["recipes"].items():
            cells = []
            for name in TEST_SETS:
                for metric in METRICS:
                    s = result[name][metric]
                    cells.append(f"{s['mean']:.4f}\n({s['min']:.4f}..{s['max']:.4f})")
            table.add_row(recipe, *cells)
        console.print(table)
    backtest = payload.get("backtest")
    if backtest:
        table = Table(title=f"Backtest {payload['backtest_months']}: mean ROC AUC / mean ECE")
        table.add_column("recipe")
        for policy in next(iter(backtest.values())):
            table.add_column(policy, justify="right")
        for recipe, policies in backtest.items():
            table.add_row(
                recipe,
                *(
                    f"{p['mean_auc']:.4f} / {p['mean_ece']:.4f}\n"
                    f"AUC per seed {', '.join(f'{a:.4f}' for a in p['per_seed_auc'])}"
                    for p in policies.values()
                ),
            )
        console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = source_parser(__doc__.splitlines()[0])
    parser.add_argument("--as-of", type=date.fromisoformat, default=DEFAULT_AS_OF)
    parser.add_argument("--seeds", type=int, default=3, help="training seeds from 42 (default 3)")
    parser.add_argument("--trials", type=int, default=SearchBudget.trials)
    parser.add_argument("--seconds", type=float, default=SearchBudget.seconds)
    parser.add_argument("--from", dest="start", type=_month, default=date(2016, 7, 1))
    parser.add_argument("--to", dest="end", type=_month, default=date(2017, 8, 1))
    parser.add_argument("--skip-backtest", action="store_true")
    parser.add_argument("--skip-as-of", action="store_true", help="only the backtest")
    parser.add_argument(
        "--recipes", nargs="+", choices=RECIPES, default=list(RECIPES), help="backtest these"
    )
    parser.add_argument(
        "--search-from",
        type=Path,
        help="reuse the search of an earlier run's --json (its as-of date must be on or before "
        "the first backtest month)",
    )
    parser.add_argument("--json", type=Path, default=Path("/tmp/model_search_benchmark.json"))
    args = parser.parse_args(argv)
    console = Console(width=200)
    started, start_time = cpu_snapshot(), time.perf_counter()
    seeds = [SEED + offset for offset in range(args.seeds)]
    budget = SearchBudget(trials=args.trials, seconds=args.seconds)
    raw = read_bookings(args.source).frame
    cleaned = load_cleaned(args.source)
    payload: dict = {"as_of": str(args.as_of), "seeds": seeds, "budget": vars(budget)}

    def save() -> None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n")

    searched = "searched+calibration" in args.recipes or not args.skip_as_of
    earlier = json.loads(args.search_from.read_text())["search"] if args.search_from else None
    if earlier is not None:
        payload["search"] = earlier
    elif searched:
        console.log(f"model search as of {args.as_of}...")
        payload["search"] = _search(cleaned, args.as_of, budget, console)
    save()
    if not args.skip_as_of:
        console.log("training the three recipes...")
        payload["as_of_comparison"] = as_of_comparison(
            cleaned, args.as_of, payload["search"]["best_params"], seeds
        )
        save()
        _render(console, payload)
    if not args.skip_backtest:
        months = list(pd.date_range(args.start, args.end, freq="MS").date)
        payload["backtest_months"] = f"{months[0]:%Y-%m}..{months[-1]:%Y-%m}"
        if not searched:
            payload["backtest_search"] = {"best_params": None}
        elif date.fromisoformat(payload["search"]["as_of"]) <= months[0]:
            # tuned on months before the backtest's first: nothing it grades
            payload["backtest_search"] = payload["search"]
        else:
            console.log(f"model search as of {months[0]} for the backtest...")
            # what the PMS knew on the backtest's first day, as the backtest's snapshots
            known = clean_bookings(take_snapshot(raw, months[0]), months[0]).cleaned
            payload["backtest_search"] = _search(known, months[0], budget, console)
        save()
        console.log(f"backtest, recipes {args.recipes}...")
        payload["backtest"] = backtest_comparison(
            raw, months, payload["backtest_search"]["best_params"], seeds, args.recipes
        )
        save()
        _render(console, payload)
    payload["other_processes"] = others_cpu_line(started, time.perf_counter() - start_time)[1]
    payload["seconds"] = time.perf_counter() - start_time
    save()
    console.print(payload["other_processes"])
    console.print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
