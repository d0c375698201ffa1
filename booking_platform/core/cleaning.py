"""From raw text to typed bookings: real dates, NA handling, and a quarantine for invalid rows.

Nothing is dropped silently: every raw row ends up either in the cleaned frame or in the
quarantine frame with a reason (raw = cleaned + quarantined, by count). What is valid is the
bookings contract's to say (core/contracts.py); the reason lists the rules a row breaks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from booking_platform.core.bounds import out_of_bounds
from booking_platform.core.contracts import NA_FILL, quarantine_reasons
from booking_platform.core.source import (
    FEATURE_SOURCE_COLUMNS,
    OUTCOME_COLUMNS,
    numbers_as_written,
)


@dataclass(frozen=True)
class CleaningResult:
    cleaned: pd.DataFrame
    quarantined: pd.DataFrame  # the raw text columns, plus `reason`


def parse_dates(text: pd.Series) -> pd.Series:
    """Parse ISO (2017-05-01) or US (5/1/2017) dates, as both appear in copies of this data."""
    iso = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
    us = pd.to_datetime(text, format="%m/%d/%Y", errors="coerce")
    return iso.fillna(us)


def _numbers(column: str, values: pd.Series) -> pd.Series:
    """A numeric column as float64, NA where it does not parse or breaks its bound (NUMBER_BOUNDS):
    nothing downstream ever computes with, or casts, a number outside its range."""
    numbers = numbers_as_written(values)
    below, above, fraction = out_of_bounds(column, numbers)
    return numbers.mask(below | above | fraction)


def type_bookings(raw: pd.DataFrame) -> pd.DataFrame:
    """Source-schema columns (text or numbers) to typed columns with real dates.

    Values that do not parse, or are outside their bounds, become NA; `clean_bookings`
    quarantines such rows. Bookings without a booking_id are numbered from 1 in their order.
    """
    ids = raw["booking_id"] if "booking_id" in raw else pd.RangeIndex(1, len(raw) + 1)
    typed = pd.DataFrame({"booking_id": np.asarray(ids, dtype="int64")}, index=raw.index)
    for column, kind in {**FEATURE_SOURCE_COLUMNS, **OUTCOME_COLUMNS}.items():
        if column not in raw:
            continue
        if kind == "str":
            typed[column] = raw[column]
        else:
            typed[column] = _numbers(column, raw[column])
    for column, value in NA_FILL.items():
        typed[column] = typed[column].fillna(value)
    month = pd.to_datetime(typed["arrival_date_month"], format="%B", errors="coerce").dt.month
    typed["arrival_date"] = pd.to_datetime(
        pd.DataFrame(
            {
                "year": typed["arrival_date_year"],
                "month": month,
                "day": typed["arrival_date_day_of_month"],
            }
        ),
        errors="coerce",
    )
    typed["booking_date"] = typed["arrival_date"] - pd.to_timedelta(typed["lead_time"], unit="D")
    if "reservation_status_date" in typed:
        typed["reservation_status_date"] = parse_dates(typed["reservation_status_date"])
    return typed


def clean_bookings(raw: pd.DataFrame, as_of: date | None = None) -> CleaningResult:
    """Type the raw text frame and split it into cleaned and quarantined rows.

    Bookings without an outcome (a snapshot's open bookings) are valid when they arrive on or
    after `as_of`; `is_canceled` is then NA, so the column is nullable (`history` makes it int).
    """
    typed = type_bookings(raw)
    reasons = quarantine_reasons(raw, typed, as_of)
    invalid = reasons != ""
    quarantined = raw[invalid].copy()
    quarantined["reason"] = reasons[invalid]
    cleaned = typed[~invalid].copy()
    for column in ("lead_time", "adults", "babies", "arrival_date_year"):
        cleaned[column] = cleaned[column].astype("int64")
    if "is_canceled" in cleaned:
        cleaned["is_canceled"] = cleaned["is_canceled"].astype("Int64")
    return CleaningResult(cleaned.reset_index(drop=True), quarantined.reset_index(drop=True))


def history(cleaned: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Bookings that arrived before the as-of date: their label is final (and never NA)."""
    past = cleaned[cleaned["arrival_date"] < pd.Timestamp(as_of)]
    unlabelled = past["is_canceled"].isna()
    if unlabelled.any():
        raise ValueError(
            f"{int(unlabelled.sum())} booking(s) arrived before {as_of} without an outcome, "
            f"e.g. booking_id {past.loc[unlabelled, 'booking_id'].head(5).tolist()}"
        )
    return past.astype({"is_canceled": "int64"})


def outcome_unknown_on(bookings: pd.DataFrame, day: date | pd.Timestamp) -> pd.Series:
    """Whether each booking's outcome was still unknown on `day`: arriving on or after it and
    not cancelled before it (a cancellation is an outcome the day it happens)."""
    cutoff = pd.Timestamp(day)
    cancelled_before = bookings["reservation_status"].eq("Canceled") & (
        bookings["reservation_status_date"] < cutoff
    )
    return (bookings["arrival_date"] >= cutoff) & ~cancelled_before


def open_bookings(cleaned: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Bookings made before the as-of date whose outcome was still unknown on it.

    These are what the platform scores. A booking made after the as-of date does not exist yet
    in a PMS export taken on that date; one cancelled before it is a known outcome.
    """
    made = cleaned["booking_date"] < pd.Timestamp(as_of)
    return cleaned[made & outcome_unknown_on(cleaned, as_of)]
