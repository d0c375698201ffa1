from datetime import date
from pathlib import Path

import pandas as pd

from booking_platform.core.bounds import NUMBER_BOUNDS
from booking_platform.core.cleaning import clean_bookings, history, open_bookings
from booking_platform.core.snapshots import take_snapshot
from booking_platform.core.source import read_bookings
from booking_platform_tests.synthetic import make_bookings, write_csv


def _raw(frame: pd.DataFrame, tmp_path: Path) -> pd.DataFrame:
    return read_bookings(write_csv(frame, tmp_path / "b.csv")).frame


def test_invalid_rows_are_quarantined_with_reasons(tmp_path: Path) -> None:
    frame = make_bookings(30)
    frame.loc[0, "adr"] = -5.0
    frame.loc[1, ["adults", "children", "babies"]] = [0, 0.0, 0]
    frame.loc[2, ["arrival_date_month", "arrival_date_day_of_month"]] = ["February", 30]
    frame.loc[3, "adr"] = -1.0
    frame.loc[3, "adults"] = 0
    frame.loc[3, "children"] = 0.0
    frame.loc[3, "babies"] = 0
    result = clean_bookings(_raw(frame, tmp_path))
    reasons = dict(zip(result.quarantined["booking_id"], result.quarantined["reason"], strict=True))
    assert reasons == {
        1: "adr -5.0 below 0",
        2: "zero guests",
        3: "impossible arrival date",
        4: "adr -1.0 below 0; zero guests",
    }
    assert len(result.cleaned) + len(result.quarantined) == 30
    assert set(result.cleaned["booking_id"]).isdisjoint(reasons)
    # the quarantine keeps the raw row as it was read
    assert result.quarantined.loc[0, "adr"] == "-5.0"


def test_a_new_hotel_is_a_booking_and_a_name_that_is_not_one_is_quarantined(
    tmp_path: Path,
) -> None:
    """Hotel names are open (a chain adds hotels): a new name is cleaned like the others, while a
    value that is not a name is quarantined with the column named."""
    frame = make_bookings(10)
    frame.loc[0, "hotel"] = "Harbour Hotel 7"
    frame.loc[1, "hotel"] = "<script>"
    frame.loc[2, "hotel"] = "x" * 81
    result = clean_bookings(_raw(frame, tmp_path))
    reasons = dict(zip(result.quarantined["booking_id"], result.quarantined["reason"], strict=True))
    assert reasons == {2: "hotel name not a name", 3: "hotel name not a name"}
    assert "Harbour Hotel 7" in set(result.cleaned["hotel"])


def test_types_dates_and_na_fills(tmp_path: Path) -> None:
    frame = make_bookings(40)
    frame.loc[0, ["children", "country", "agent"]] = [None, None, None]
    cleaned = clean_bookings(_raw(frame, tmp_path)).cleaned
    first = cleaned.iloc[0]
    assert (first["children"], first["country"], first["agent"]) == (0.0, "Unknown", 0.0)
    assert cleaned["company"].eq(0.0).all()
    lead = pd.to_timedelta(cleaned["lead_time"], unit="D")
    assert (cleaned["arrival_date"] - lead).equals(cleaned["booking_date"])
    assert cleaned["arrival_date"].dtype.kind == "M"
    assert not cleaned.isna().any().any()


def test_history_and_open_bookings_follow_the_time_model(tmp_path: Path) -> None:
    cleaned = clean_bookings(_raw(make_bookings(2000), tmp_path)).cleaned
    as_of = date(2017, 1, 1)
    cutoff = pd.Timestamp(as_of)
    past, upcoming = history(cleaned, as_of), open_bookings(cleaned, as_of)
    assert (past["arrival_date"] < cutoff).all()
    assert (upcoming["arrival_date"] >= cutoff).all() and (upcoming["booking_date"] < cutoff).all()
    cancelled_before = upcoming["reservation_status"].eq("Canceled") & (
        upcoming["reservation_status_date"] < cutoff
    )
    assert not cancelled_before.any()
    # every booking arriving later but already cancelled is a known outcome, not a target
    later = cleaned[(cleaned["arrival_date"] >= cutoff) & (cleaned["booking_date"] < cutoff)]
    known = later["reservation_status"].eq("Canceled") & (later["reservation_status_date"] < cutoff)
    assert len(upcoming) == len(later) - known.sum() and known.sum() > 0


def test_numbers_are_checked_before_they_are_cast(tmp_path: Path) -> None:
    """1e308 adults once wrapped to -9223372036854775808 and passed; 1e23 days of lead time
    crashed with an OverflowError naming no column. Each is quarantined with column and value."""
    frame = make_bookings(30).astype({"adults": object, "lead_time": object, "babies": object})
    frame.loc[0, "adults"] = "1e308"
    frame.loc[1, "lead_time"] = "1e23"
    frame.loc[2, "babies"] = "1.5"
    frame.loc[3, "adults"] = "1000000"
    frame.loc[4, "stays_in_week_nights"] = 1_000_000
    frame.loc[5, "arrival_date_year"] = 99999
    frame.loc[6, "lead_time"] = "-inf"
    raw = _raw(frame, tmp_path)
    result = clean_bookings(raw)
    reasons = dict(zip(result.quarantined["booking_id"], result.quarantined["reason"], strict=True))
    assert reasons == {
        1: "adults 1e308 above 100",
        2: "lead_time 1e23 above 1000",
        3: "babies 1.5 not a whole number",
        4: "adults 1000000 above 100",
        5: "stays_in_week_nights 1000000 above 265",
        6: "arrival_date_year 99999 above 2100",
        7: "lead_time -inf below 0",
    }
    assert len(result.cleaned) == 23
    for column in ("adults", "lead_time", "babies", "arrival_date_year"):
        bound = NUMBER_BOUNDS[column]
        assert result.cleaned[column].between(bound.ge, bound.le).all()
    # a snapshot of such an export is written without a crash, the bad rows kept for cleaning
    assert len(take_snapshot(raw, date(2017, 5, 1))) > 7
