"""The backtest: replay the export month by month and score three retraining policies.

On the first of every month a snapshot is taken (what the PMS knew that day). Each policy then
decides, from that snapshot alone, whether to train a candidate; a candidate replaces the
policy's champion only if the promotion gate passes. The champion in place on the first of the
month is scored on every booking that arrives during that month (except those already
cancelled on the first), asked on the first, against the outcomes known later. The policies:

- frozen: train once, on the first snapshot;
- monthly: train on every snapshot;
- sensor: what the platform's sensors do, by the same function (core/retraining.decide): train
  when there is no champion, when it is older than the maximum age, when the worst realised ROC
  AUC of the last months with enough arrivals fell under the floor, or when the open bookings
  drifted from the same date a year earlier beyond the drift thresholds.

Every policy runs once per training seed (the draw of training_questions and LightGBM's row and
column samples). One draw moves a single model's graded ROC AUC by up to 0.01
(docs/measurements.md, "Retraining backtest"), as much as the differences between policies the
backtest is there to measure, so the policies are compared on their means over the seeds; each
seed's run is kept beside them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

matplotlib.use("Agg")  # headless: plots are files, never windows
import matplotlib.pyplot as plt  # noqa: E402

from booking_platform.core import drift  # noqa: E402
from booking_platform.core.cleaning import clean_bookings, outcome_unknown_on  # noqa: E402
from booking_platform.core.features import SCORED_ON, build_feature_set  # noqa: E402
from booking_platform.core.gate import judge  # noqa: E402
from booking_platform.core.metrics import calibration_error  # noqa: E402
from booking_platform.core.retraining import (  # noqa: E402
    Champion,
    DriftEvidence,
    Evidence,
    RetrainingPolicy,
    decide,
    recent_performance,
)
from booking_platform.core.snapshots import take_snapshot  # noqa: E402
from booking_platform.core.training import (  # noqa: E402
    SEED,
    CancellationModel,
    ValidatedModel,
    train_and_validate,
)

POLICIES = ("frozen", "monthly", "sensor")


@dataclass
class PolicyState:
    name: str
    champion: CancellationModel | None = None
    retrainings: int = 0
    months: list[dict[str, object]] = field(default_factory=list)

    def champion_as_of(self) -> date | None:
        return None if self.champion is None else date.fromisoformat(self.champion.train_end)


@dataclass(frozen=True)
class MonthSnapshot:
    """What every policy sees on the first of a month: features, and the drift evidence."""

    as_of: date
    validated_candidate: Callable[[int], ValidatedModel]  # trains on demand, once per seed
    drift: DriftEvidence | None  # None: the export does not reach back a year


def evaluation_rows(cleaned: pd.DataFrame, month: date) -> pd.DataFrame:
    """The bookings a champion in place on the 1st is graded on: arriving that month, and not
    already cancelled on the 1st (the same population a scoring run that day sees as open),
    asked on the 1st as that run asks."""
    start = pd.Timestamp(month)
    before_next = cleaned["arrival_date"] < start + pd.offsets.MonthBegin(1)
    return cleaned[before_next & outcome_unknown_on(cleaned, start)].assign(**{SCORED_ON: start})


def _snapshot(
    raw: pd.DataFrame,
    as_of: date,
    reports_dir: Path,
    policy: RetrainingPolicy,
    params: dict | None,
    calibrate: bool,
) -> MonthSnapshot:
    cleaned = clean_bookings(take_snapshot(raw, as_of), as_of).cleaned
    feature_set = build_feature_set(cleaned, as_of)
    evidence = None
    reference = drift.seasonal_reference(feature_set)
    if reference is not None:
        _, current = feature_set.part("open")
        summary = drift.compute_drift(
            reference, current, reports_dir / f"backtest_drift_{as_of}.html"
        )
        verdict = drift.drift_verdict(
            summary.drift_share,
            summary.column_scores,
            policy.drift_share,
            policy.drift_key_columns,
        )
        evidence = DriftEvidence(True, verdict, summary.drift_share)
    trained: dict[int, ValidatedModel] = {}

    def validated_candidate(seed: int) -> ValidatedModel:
        if seed not in trained:
            history, _ = feature_set.part("history")
            trained[seed] = train_and_validate(
                history, feature_set.builder, as_of, params, seed=seed, calibrate=calibrate
            )
        return trained[seed]

    return MonthSnapshot(as_of, validated_candidate, evidence)


def _realised(state: PolicyState) -> pd.DataFrame:
    """The months graded so far, shaped as the realised_performance table the platform keeps."""
    return pd.DataFrame(
        {
            "arrival_month": [m["month"] for m in state.months],
            "bookings": [m["bookings"] for m in state.months],
            "roc_auc": [np.nan if m["auc"] is None else m["auc"] for m in state.months],
        }
    )


def _sensor_reason(
    state: PolicyState, snapshot: MonthSnapshot, policy: RetrainingPolicy
) -> str | None:
    """The platform's own policy on what the platform would know on the 1st."""
    evidence = Evidence(
        snapshot.as_of,
        champion=Champion(trained_as_of=state.champion_as_of()),
        performance=recent_performance(_realised(state), policy),
        drift=snapshot.drift,
    )
    decision = decide(evidence, policy)
    return f"{decision.trigger}: {decision.reason}" if decision.retrain else None


def _retrain_reason(
    state: PolicyState, snapshot: MonthSnapshot, policy: RetrainingPolicy
) -> str | None:
    if state.name == "frozen":
        return None if state.champion is not None else "first snapshot"
    if state.name == "monthly":
        return "every month"
    return _sensor_reason(state, snapshot, policy)


def _score_month(model: CancellationModel, rows: pd.DataFrame) -> tuple[float | None, float]:
    labels = rows["is_canceled"].to_numpy(dtype=int)
    proba = model.predict_proba(rows)
    auc = float(roc_auc_score(labels, proba)) if len(np.unique(labels)) == 2 else None
    return auc, calibration_error(labels, proba)


def _replay_month(
    state: PolicyState,
    snapshot: MonthSnapshot,
    rows: pd.DataFrame,
    policy: RetrainingPolicy,
    seed: int,
) -> None:
    reason = _retrain_reason(state, snapshot, policy)
    promoted, refused = False, []
    if reason is not None:
        candidate = snapshot.validated_candidate(seed)
        state.retrainings += 1
        decision = judge(candidate, state.champion)
        if decision.passed:
            state.champion, promoted = candidate.model, True
        refused = [c for c in decision.comparisons if c.startswith("FAIL")]
    auc, ece = _score_month(state.champion, rows)
    state.months.append(
        {
            "month": f"{snapshot.as_of:%Y-%m}",
            "auc": auc,
            "ece": ece,
            "bookings": len(rows),
            "champion_as_of": str(state.champion_as_of()),
            "retrained": reason,
            "promoted": promoted,
            "gate_failed": refused,
        }
    )


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def _policy_result(runs: dict[int, PolicyState]) -> dict[str, object]:
    """One policy over the seeds: means, each month's mean, and every seed's own run."""
    by_seed = {
        str(seed): {
            "mean_auc": _mean(m["auc"] for m in state.months),
            "mean_ece": _mean(m["ece"] for m in state.months),
            "retrainings": state.retrainings,
            "months": state.months,
        }
        for seed, state in runs.items()
    }
    retrainings = [state.retrainings for state in runs.values()]
    months = zip(*(state.months for state in runs.values()), strict=True)
    return {
        "mean_auc": _mean(run["mean_auc"] for run in by_seed.values()),
        "mean_ece": _mean(run["mean_ece"] for run in by_seed.values()),
        # a whole number when every seed retrained as often
        "retrainings": retrainings[0]
        if len(set(retrainings)) == 1
        else round(float(np.mean(retrainings)), 2),
        "months": [
            {
                "month": same_month[0]["month"],
                "auc": _mean(m["auc"] for m in same_month),
                "ece": _mean(m["ece"] for m in same_month),
                "bookings": same_month[0]["bookings"],
                "retrained": sum(m["retrained"] is not None for m in same_month),  # seeds
                "promoted": sum(m["promoted"] for m in same_month),
            }
            for same_month in months
        ],
        "seeds": by_seed,
    }


def run_backtest(
    raw: pd.DataFrame,
    months: list[date],
    policy: RetrainingPolicy,
    reports_dir: Path,
    seeds: Sequence[int] = (SEED,),
    progress: Callable[[Iterable[date]], Iterable[date]] = iter,
    params: dict | None = None,
    calibrate: bool = True,
) -> dict[str, object]:
    """Replay `months` (firsts of months) under each policy and seed; backtest.json's body.

    `params` (LightGBM overrides) and `calibrate` are the training recipe's, for every candidate
    (benchmarks/model_search.py compares recipes on the same months).
    `raw` is the whole export (final outcomes): snapshots are cut from it for the policies, and
    its outcomes, known in hindsight, grade them. A month's snapshot and drift verdict are
    computed once for every policy and seed, and a seed's candidate once for every policy.
    """
    outcomes = clean_bookings(raw).cleaned
    runs = {name: {seed: PolicyState(name) for seed in seeds} for name in POLICIES}
    for as_of in progress(months):
        snapshot = _snapshot(raw, as_of, reports_dir, policy, params, calibrate)
        rows = evaluation_rows(outcomes, as_of)
        for seed in seeds:
            for name in POLICIES:
                _replay_month(runs[name][seed], snapshot, rows, policy, seed)
    return {
        "months": [f"{m:%Y-%m}" for m in months],
        "seeds": list(seeds),
        "rules": policy.describe(),
        "policies": {name: _policy_result(runs[name]) for name in POLICIES},
    }


def summary_table(result: dict[str, object]) -> pd.DataFrame:
    """One row per month, AUC/ECE per policy side by side, then the means and retrainings."""
    policies = result["policies"]
    table = pd.DataFrame({"month": result["months"]})
    for name, policy in policies.items():
        table[f"{name}_auc"] = [m["auc"] for m in policy["months"]]
        table[f"{name}_ece"] = [m["ece"] for m in policy["months"]]
        table[f"{name}_retrained"] = [bool(m["retrained"]) for m in policy["months"]]
    return table


def plot_backtest(result: dict[str, object], path: Path) -> Path:
    """Per-month ROC AUC and calibration error per policy; dots mark promoted retrainings."""
    figure, (auc_axis, ece_axis) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for name, policy in result["policies"].items():
        months = policy["months"]
        x = [m["month"] for m in months]
        label = f"{name} (mean AUC {policy['mean_auc']:.3f}, {policy['retrainings']} retrainings)"
        auc_axis.plot(x, [m["auc"] for m in months], marker=".", label=label)
        ece_axis.plot(x, [m["ece"] for m in months], marker=".", label=name)
        promoted = [m["month"] for m in months if m["promoted"]]
        auc_axis.scatter(
            promoted,
            [m["auc"] for m in months if m["promoted"]],
            s=60,
            facecolors="none",
            edgecolors=auc_axis.lines[-1].get_color(),
        )
    auc_axis.set_ylabel("ROC AUC of the month's arrivals")
    seeds = len(result["seeds"])
    auc_axis.set_title(
        "Backtest: champion in place on the 1st, graded on that month's arrivals"
        + (f" (mean of {seeds} training seeds)" if seeds > 1 else "")
    )
    auc_axis.legend(fontsize=8)
    ece_axis.set_ylabel("calibration error")
    ece_axis.tick_params(axis="x", rotation=45)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
