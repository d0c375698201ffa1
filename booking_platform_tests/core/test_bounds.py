"""The one table of number bounds: complete, consistent with the source schema and the features'
day index, and what the data check counts against."""

import numpy as np
import pandas as pd

from booking_platform.core.bounds import NUMBER_BOUNDS
from booking_platform.core.features import DAY_SHIFT, DAY_SPAN, EPOCH
from booking_platform.core.source import SOURCE_SCHEMA
from booking_platform.defs.checks import out_of_bounds_counts


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


def test_the_data_check_counts_rows_out_of_bounds_per_column() -> None:
    cleaned = pd.DataFrame(
        {
            "booking_id": [1, 2, 3, 4],
            "adults": [2.0, 101.0, 1.5, np.nan],
            "adr": [90.0, 80.0, -1.0, 1000.0],
            "hotel": ["City Hotel"] * 4,
        }
    )
    assert out_of_bounds_counts(cleaned) == {"adults": 2, "adr": 1}
    assert out_of_bounds_counts(cleaned.iloc[[0, 3]]) == {}
