"""The promotion gate: absolute floors, then newer data than the champion's, then "not worse
than the champion on the same holdout".

The champion a candidate trained as of T is judged against is the one that was champion as of T
(core/champions.py). A candidate with no arrivals newer than that champion's (a rerun of the same
as-of date, or a retraining the sensors asked for on the date the champion was trained) is not
promoted: there is nothing it could have learnt that the champion did not, and the two cannot be
compared fairly on rows the champion trained on. That verdict keeps the champion without failing
anything (`kept`); failing a floor or the comparison is a refusal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from booking_platform.core.champions import trained_on_newer_data
from booking_platform.core.metrics import calibration_error
from booking_platform.core.training import CancellationModel, ValidatedModel

MIN_ROC_AUC = 0.80
MAX_CALIBRATION_ERROR = 0.08
# The candidate may trail the champion by this much AUC (noise between close models).
CHAMPION_TOLERANCE = 0.005
MIN_COMPARISON_ROWS = 500


@dataclass
class GateDecision:
    passed: bool  # the candidate may become champion
    comparisons: list[str] = field(default_factory=list)
    # not promoted, and not refused either: the candidate has no data newer than the champion's
    kept: bool = False
    champion_roc_auc: float | None = None
    candidate_roc_auc_on_shared_rows: float | None = None


def judge(
    validated: ValidatedModel,
    champion: CancellationModel | None,
    champion_version: str | None = None,
) -> GateDecision:
    """Decide whether the candidate may become champion; every comparison is stated in words."""
    metrics = validated.metrics
    decision = GateDecision(passed=True)

    def compare(ok: bool, text: str) -> None:
        decision.passed &= ok
        decision.comparisons.append(("PASS " if ok else "FAIL ") + text)

    compare(
        metrics["roc_auc"] >= MIN_ROC_AUC,
        f"holdout ROC AUC {metrics['roc_auc']:.4f} >= floor {MIN_ROC_AUC}",
    )
    compare(
        metrics["calibration_error"] <= MAX_CALIBRATION_ERROR,
        f"holdout calibration error {metrics['calibration_error']:.4f} "
        f"<= ceiling {MAX_CALIBRATION_ERROR}",
    )
    if champion is None:
        decision.comparisons.append("SKIP no champion yet: floors only")
        return decision
    # unregistered champions (the backtest's) are named by their training date
    name = f"v{champion_version}" if champion_version else f"as of {champion.train_end}"
    candidate_as_of = validated.model.train_end
    if not trained_on_newer_data(
        date.fromisoformat(candidate_as_of), date.fromisoformat(champion.train_end)
    ):
        decision.comparisons.append(
            f"KEEP champion {name}: trained as of {champion.train_end}, the candidate as of "
            f"{candidate_as_of}; no arrivals newer than the champion's, so no reason to replace it"
        )
        decision.kept, decision.passed = decision.passed, False  # a refusal stays a refusal
        return decision
    # The champion must not be judged on rows it was trained on: keep holdout arrivals on or
    # after the champion's training end.
    shared = (validated.holdout["arrival_date"] >= pd.Timestamp(champion.train_end)).to_numpy()
    labels = validated.holdout["is_canceled"].to_numpy()[shared]
    if shared.sum() < MIN_COMPARISON_ROWS or len(np.unique(labels)) < 2:
        decision.comparisons.append(
            f"SKIP champion {name} was trained on arrivals before "
            f"{champion.train_end}; only {int(shared.sum())} holdout rows are new to it "
            f"(< {MIN_COMPARISON_ROWS}): floors only"
        )
        return decision
    champion_proba = champion.predict_proba(validated.holdout[shared])
    candidate_proba = validated.holdout_proba[shared]
    decision.champion_roc_auc = float(roc_auc_score(labels, champion_proba))
    decision.candidate_roc_auc_on_shared_rows = float(roc_auc_score(labels, candidate_proba))
    compare(
        decision.candidate_roc_auc_on_shared_rows >= decision.champion_roc_auc - CHAMPION_TOLERANCE,
        f"ROC AUC {decision.candidate_roc_auc_on_shared_rows:.4f} vs champion "
        f"{name} {decision.champion_roc_auc:.4f} on the same {int(shared.sum()):,} "
        f"holdout rows (tolerance {CHAMPION_TOLERANCE})",
    )
    champion_ece = calibration_error(labels, champion_proba)
    candidate_ece = calibration_error(labels, candidate_proba)
    compare(
        candidate_ece <= max(champion_ece * 1.5, MAX_CALIBRATION_ERROR / 2),
        f"calibration error {candidate_ece:.4f} vs champion {champion_ece:.4f} "
        f"(allowed up to 1.5x the champion's, or {MAX_CALIBRATION_ERROR / 2})",
    )
    return decision
