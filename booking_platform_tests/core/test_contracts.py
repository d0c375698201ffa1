"""The data contracts: what the quarantine says of a bad booking, and what a bad prediction is."""

from datetime import date
from pathlib import Path

import pandas as pd
import pandera.errors
import pytest

from booking_platform.core.cleaning import clean_bookings
from booking_platform.core.contracts import broken_rows, predictions_contract
from booking_platform.core.source import read_bookings
from booking_platform_tests.synthetic import make_bookings, write_csv


def _predictions(rows: int = 3) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "booking_id": range(1, rows + 1),
            "cancel_probability": [0.2] * rows,
            "predicted_cancel": [False] * rows,
            "threshold": [0.5] * rows,
            "model_version": ["3"] * rows,
            "reason_1": ["lead_time 300 raises risk"] * rows,
            "reason_2": [None] * rows,  # fewer contributions worth naming: allowed
            "reason_3": [None] * rows,
            "reasons": ["[]"] * rows,
            "as_of": [date(2017, 5, 1)] * rows,
            "scored_at": [pd.Timestamp("2017-05-01 06:00")] * rows,
        }
    )


def test_the_predictions_contract_rejects_a_probability_above_one_and_missing_reasons() -> None:
    contract = predictions_contract()
    assert broken_rows(_predictions(), contract) == {}
    bad = _predictions()
    bad.loc[0, "cancel_probability"] = 1.5
    bad.loc[1, "reason_1"] = None
    bad.loc[2, "reasons"] = None
    assert broken_rows(bad, contract) == {
        "cancel_probability": {0},
        "reason_1": {1},
        "reasons": {2},
    }
    with pytest.raises(pandera.errors.SchemaErrors, match="cancel_probability"):
        contract.validate(bad, lazy=True)
    # one row per booking, and no column the table does not have
    twice = _predictions().assign(booking_id=[1, 1, 2], extra=0)
    assert set(broken_rows(twice, contract)) == {"booking_id", "extra"}


def test_the_quarantine_gives_each_row_every_rule_it_breaks_naming_the_column(
    tmp_path: Path,
) -> None:
    frame = make_bookings(30).astype({"lead_time": object, "is_canceled": object})
    frame.loc[0, "hotel"] = None
    frame.loc[1, "lead_time"] = None
    frame.loc[2, ["adr", "adults", "children", "babies"]] = [-4.0, 0, 0.0, 0]
    frame.loc[3, "hotel"] = "<Beach Hotel>"  # a new hotel is a booking; this is no name
    frame.loc[4, ["lead_time", "adr"]] = ["2000", 5000.0]
    raw = read_bookings(write_csv(frame, tmp_path / "b.csv")).frame
    result = clean_bookings(raw)
    reasons = dict(zip(result.quarantined["booking_id"], result.quarantined["reason"], strict=True))
    assert reasons == {
        1: "missing value in hotel",
        2: "missing value in lead_time",
        3: "adr -4.0 below 0; zero guests",
        4: "hotel name not a name",
        5: "lead_time 2000 above 1000; adr 5000.0 above 1000",
    }
    assert len(result.cleaned) == 25
    # the quarantine keeps its columns: the raw row as read, plus the reason
    assert list(result.quarantined.columns) == [*raw.columns, "reason"]
