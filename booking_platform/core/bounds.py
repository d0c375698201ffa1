"""The range of every number a booking holds: the one table that cleaning quarantines on, the
HTTP API's schemas validate with and the data checks count against.

The data set's dictionary (Antonio et al., 2019) gives each column's type (integer for counts,
days, years and ids) but no ranges. The upper bounds are physical or set well above anything in
the 119,390 real bookings (the largest value seen is in each comment), so that a typo or an
attack (1e308 adults, a million nights) is stopped while every real booking passes; ADR and lead
time keep the bounds they always had. Values are checked as numbers before anything is cast to an
integer type: a value outside its range or with a fraction is never cast.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import pandera.pandas as pa

MAX_BOOKING_ID = (1 << 63) - 1  # stored as BIGINT


@dataclass(frozen=True)
class Bound:
    """Inclusive range of a column; `integer`: whole numbers only (the source schema's "int"
    kind, which test_bounds holds it to)."""

    ge: float
    le: float
    integer: bool


NUMBER_BOUNDS: dict[str, Bound] = {
    "booking_id": Bound(0, MAX_BOOKING_ID, True),
    "lead_time": Bound(0, 1000, True),  # 737
    # the features' day index holds 1970..2149; an export of this century fits well inside
    "arrival_date_year": Bound(2000, 2100, True),
    "arrival_date_week_number": Bound(1, 53, True),
    "arrival_date_day_of_month": Bound(1, 31, True),
    "stays_in_weekend_nights": Bound(0, 110, True),  # 19; a year has 105
    "stays_in_week_nights": Bound(0, 265, True),  # 50; a year has 261
    "adults": Bound(0, 100, True),  # 55 (a group)
    "children": Bound(0, 20, False),  # 10
    "babies": Bound(0, 20, True),  # 10
    "is_repeated_guest": Bound(0, 1, True),
    "previous_cancellations": Bound(0, 100, True),  # 26
    "previous_bookings_not_canceled": Bound(0, 1000, True),  # 72
    "booking_changes": Bound(0, 100, True),  # 21
    "agent": Bound(0, 1_000_000, False),  # an id: 535
    "company": Bound(0, 1_000_000, False),  # an id: 543
    "days_in_waiting_list": Bound(0, 1000, True),  # 391
    "adr": Bound(0, 1000, False),  # above any real room rate but the data's single 5,400 typo
    "required_car_parking_spaces": Bound(0, 20, True),  # 8
    "total_of_special_requests": Bound(0, 20, True),  # 5
    "is_canceled": Bound(0, 1, True),
}


def out_of_bounds(column: str, values: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Which of `values` (numbers, NA allowed) are below, above, or not whole for `column`.

    NA is none of them: whether a value may be missing is the caller's rule."""
    bound = NUMBER_BOUNDS[column]
    numbers = values.astype("float64")
    below = numbers < bound.ge
    above = numbers > bound.le
    fraction = (
        np.isfinite(numbers) & (numbers != np.floor(numbers))
        if bound.integer
        else pd.Series(False, index=values.index)
    )
    return below, above, fraction


def whole_numbers(column: str, text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """`text` read exactly as whole numbers within `column`'s bound (no float rounding: "1.1"
    and "1.9" are not 1, and 1e30 is not -9223372036854775808): the values as int64 (0 where
    invalid) and which rows are invalid (missing, not written as digits, or out of range)."""
    bound = NUMBER_BOUNDS[column]
    written = text.astype("string").str.strip()
    digits = written.str.fullmatch(r"\+?\d+").fillna(False).to_numpy(dtype=bool)
    values = [int(value) if ok else None for value, ok in zip(written, digits, strict=True)]
    valid = np.array([v is not None and bound.ge <= v <= bound.le for v in values], dtype=bool)
    ints = np.array([v if ok else 0 for v, ok in zip(values, valid, strict=True)], dtype="int64")
    return pd.Series(ints, index=text.index), pd.Series(~valid, index=text.index)


# the name of the checks pandera_columns makes: a failure of one is reported with its value
BOUND_CHECK = "bound"


def pandera_columns(present: Iterable[str], required: Collection[str] = ()) -> dict[str, pa.Column]:
    """The bounds as pandera columns, for those of `present` that have one: what a pandera schema
    of a bookings table is built from (core/contracts.py). A column may be missing (NA) unless
    it is `required`. Each failure reads as the quarantine words it ("below 0", "above 100",
    "not a whole number"); each check's description states the rule (">= 0")."""
    import pandera.pandas as pa  # noqa: PLC0415 (slow to import; the CLI's scoring never needs it)

    columns = {}
    for column in (c for c in present if c in NUMBER_BOUNDS):
        bound = NUMBER_BOUNDS[column]
        checks = [
            pa.Check.ge(
                bound.ge,
                name=BOUND_CHECK,
                error=f"below {bound.ge:g}",
                description=f">= {bound.ge:g}",
            ),
            pa.Check.le(
                bound.le,
                name=BOUND_CHECK,
                error=f"above {bound.le:g}",
                description=f"<= {bound.le:g}",
            ),
        ]
        if bound.integer:
            checks.append(
                pa.Check(
                    lambda s: ~np.isfinite(s) | (s == np.floor(s)),
                    name=BOUND_CHECK,
                    error="not a whole number",
                    description="whole number",
                )
            )
        columns[column] = pa.Column(checks=checks, nullable=column not in required)
    return columns
