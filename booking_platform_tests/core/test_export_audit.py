from datetime import date

import pandas as pd
import pytest

from booking_platform.core.cleaning import type_bookings
from booking_platform.core.export_audit import (
    Accepted,
    AsOfOutsideData,
    arrival_dates,
    check_as_of_inside,
    judge_volume,
)
from booking_platform.core.source import read_bookings
from booking_platform_tests.synthetic import make_bookings, write_csv


def test_arrival_dates_are_cleanings_own(tmp_path) -> None:
    raw = read_bookings(write_csv(make_bookings(3000), tmp_path / "b.csv")).frame
    raw.loc[5, "arrival_date_month"] = "Juli"  # does not parse: NaT in both
    raw.loc[6, "arrival_date_day_of_month"] = "31"  # may not exist in its month
    pd.testing.assert_series_equal(
        arrival_dates(raw), type_bookings(raw)["arrival_date"], check_names=False
    )


def test_an_as_of_must_have_history_before_and_bookings_after(tmp_path) -> None:
    raw = read_bookings(write_csv(make_bookings(500), tmp_path / "b.csv")).frame
    check_as_of_inside(raw, date(2017, 5, 1), "b.csv")
    with pytest.raises(AsOfOutsideData, match="no booking arrived before it"):
        check_as_of_inside(raw, date(2015, 7, 1), "b.csv")
    with pytest.raises(AsOfOutsideData, match="no booking arrives on or after it"):
        check_as_of_inside(raw, date(2017, 9, 1), "b.csv")


def test_volume_refuses_empty_and_large_shrinks_unless_intended() -> None:
    before = Accepted(as_of=date(2017, 5, 1), rows=1000)
    assert judge_volume("raw", 0, None, 0.2, intended=True).passed is False
    assert judge_volume("raw", 10, None, 0.2, intended=False).passed
    assert judge_volume("raw", 800, before, 0.2, intended=False).passed
    refused = judge_volume("raw", 799, before, 0.2, intended=False)
    assert (
        not refused.passed and "shrinks by 20.1%, more than the 20% allowed" in refused.description
    )
    assert judge_volume("raw", 799, before, 0.2, intended=True).passed
    assert judge_volume("raw", 5000, before, 0.2, intended=False).shrink == pytest.approx(-4)
