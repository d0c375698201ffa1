from datetime import date

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from booking_platform.core.ab_test import MIN_LABELLED, ab_test_report, paired_comparison

AS_OF = date(2017, 5, 1)


def _log_and_outcomes(labelled: int, unlabelled: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(3)
    ids = np.arange(labelled + unlabelled)
    arrival = np.where(ids < labelled, np.datetime64("2017-03-01"), np.datetime64("2017-06-01"))
    outcomes = pd.DataFrame(
        {"booking_id": ids, "arrival_date": arrival, "is_canceled": rng.integers(0, 2, len(ids))}
    )
    to_challenger = ids % 2 == 1
    label = outcomes["is_canceled"].to_numpy()
    informative = np.clip(0.3 + 0.4 * label + rng.normal(0, 0.2, len(ids)), 0, 1)
    log = pd.DataFrame(
        {
            "logged_at": "2026-11-23T05:00:00.000+00:00",
            "booking_id": ids,
            "variant": np.where(to_challenger, "challenger", "champion"),
            "model_version": np.where(to_challenger, "2", "1"),
            "served": 1,
            "cancel_probability": np.where(to_challenger, rng.random(len(ids)), informative),
            "latency_ms": 1.0,
        }
    )
    return log, outcomes


def test_each_arm_gets_its_realised_auc_on_labelled_bookings_only() -> None:
    log, outcomes = _log_and_outcomes(labelled=600, unlabelled=400)
    # a booking scored twice by one arm counts once, with its latest score
    rescored = log.head(1).assign(logged_at="2026-11-23T06:00:00.000+00:00", cancel_probability=0.9)
    report = ab_test_report(pd.concat([log, rescored]), outcomes, AS_OF).set_index("variant")
    assert (
        report.loc["champion", "predictions"] == 501 and report.loc["champion", "bookings"] == 500
    )
    assert report.loc["champion", "labelled"] == report.loc["challenger", "labelled"] == 300
    champion_rows = log[(log["variant"] == "champion") & (log["booking_id"] < 600)].copy()
    champion_rows.loc[champion_rows.index[0], "cancel_probability"] = 0.9
    labels = outcomes.set_index("booking_id").loc[champion_rows["booking_id"], "is_canceled"]
    expected = roc_auc_score(labels, champion_rows["cancel_probability"])
    assert report.loc["champion", "roc_auc"] == expected > 0.8
    assert 0.4 < report.loc["challenger", "roc_auc"] < 0.6  # random scores
    assert report.loc["champion", "note"] == ""


def test_too_few_labels_are_reported_not_scored() -> None:
    log, outcomes = _log_and_outcomes(labelled=2 * MIN_LABELLED - 2, unlabelled=50)
    report = ab_test_report(log, outcomes, AS_OF)
    assert report["roc_auc"].isna().all()
    assert (report["note"] == f"not enough labelled rows (99 < {MIN_LABELLED})").all()
    assert ab_test_report(log.head(0), outcomes, AS_OF).empty
    # an A/B split scores disjoint bookings: nothing to pair
    paired = paired_comparison(log, outcomes, AS_OF, "1", "2")
    assert paired["paired_labelled_bookings"] == 0
    assert paired["paired_note"].startswith("not enough labelled rows (0")
