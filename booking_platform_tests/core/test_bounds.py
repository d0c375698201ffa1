"""The one table of number bounds: complete, consistent with the source schema and the features'
day index, and what the data check counts against."""

from datetime import date
from pathlib import Path

import pandas as pd

from booking_platform.core.bounds import NUMBER_BOUNDS
from booking_platform.core.cleaning import clean_bookings
from booking_platform.core.features import DAY_SHIFT, DAY_SPAN, EPOCH
from booking_platform.core.source import SOURCE_SCHEMA, read_bookings
from booking_platform.defs.checks import contract_violations
from booking_platform_tests.synthetic import make_bookings, write_csv


def test_every_number_of_the_source_schema_has_bounds_of_its_kind() -> None:
    numbers = {column: kind for column, kind in SOURCE_SCHEMA.items() if kind != "str"}
    assert set(NUMBER_BOUNDS) == {*numbers, "booking_id"}
    for column, kind in numbers.items():
        assert NUMBER_BOUNDS[column].integer == (kind == "int"), column
        assert NUMBER_BOUNDS[column].ge < NUMBER_BOUNDS[column].le


def test_every_date_the_bounds_allow_fits_the_features_day_index() -> None:
    """Bookings are made up to lead_time's bound before arrival; the point-in-time rate
    lookup packs days around EPOCH into DAY_SPAN."""
    years, lead = NUMBER_BOUNDS["arrival_date_year"], NUMBER_BOUNDS["lead_time"]
    earliest = pd.Timestamp(year=int(years.ge), month=1, day=1) - pd.Timedelta(days=lead.le)
    latest = pd.Timestamp(year=int(years.le), month=12, day=31)
    assert (earliest - EPOCH).days + DAY_SHIFT >= 0
    assert (latest - EPOCH).days + DAY_SHIFT < DAY_SPAN


def test_the_data_check_counts_rows_breaking_the_contract_per_column(tmp_path: Path) -> None:
    frame = make_bookings(40)
    cleaned = clean_bookings(read_bookings(write_csv(frame, tmp_path / "b.csv")).frame).cleaned
    as_of = date(2017, 5, 1)
    assert contract_violations(cleaned, as_of) == {}
    cleaned["adults"] = cleaned["adults"].astype("float64")
    cleaned.loc[[0, 1], "adults"] = [101.0, 1.5]
    cleaned.loc[2, "adr"] = -1.0
    cleaned.loc[3, ["adults", "children", "babies"]] = [0.0, 0.0, 0]
    assert contract_violations(cleaned, as_of) == {"adults": 2, "adr": 1, "zero guests": 1}
