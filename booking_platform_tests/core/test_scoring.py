"""The audit behind batch_predictions' checks finds each kind of bad slice."""

import numpy as np
import pandas as pd

from booking_platform.core.scoring import PredictionAudit, audit_predictions


def _predictions(**columns: list) -> pd.DataFrame:
    good = {
        "booking_id": [1, 2, 3],
        "cancel_probability": [0.1, 0.5, 0.9],
        "model_version": ["2", "2", "2"],
        "reason_1": ["lead_time 300 raises risk"] * 3,
        "reasons": ["[]"] * 3,
    }
    return pd.DataFrame(good | columns)


def test_a_good_slice_has_nothing_to_report() -> None:
    assert audit_predictions(_predictions(), pd.Series([1, 2, 3])) == PredictionAudit(
        missing=0, unexpected=0, duplicated=0, out_of_range=0, without_reasons=0, versions=("2",)
    )


def test_each_defect_is_counted() -> None:
    bad = _predictions(
        booking_id=[1, 1, 4],  # 2 and 3 missing, 4 not open, 1 twice
        cancel_probability=[1.5, np.nan, 0.2],
        model_version=["1", "2", "2"],
        reason_1=["x", None, "y"],
    )
    assert audit_predictions(bad, pd.Series([1, 2, 3])) == PredictionAudit(
        missing=2,
        unexpected=1,
        duplicated=1,
        out_of_range=2,
        without_reasons=1,
        versions=("1", "2"),
    )
    # rows written before reasons were stored have no reason columns at all
    old = _predictions().drop(columns=["reason_1", "reasons"])
    assert audit_predictions(old, pd.Series([1, 2, 3])).without_reasons == 3
