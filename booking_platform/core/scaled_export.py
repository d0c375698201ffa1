"""A larger export in the same schema, built from the real one: more hotels, more bookings.

For measuring what more data costs (benchmarks/scaled_export.py, benchmarks/scale.py), never
for training anything shipped. Copy 1 is the export as it is; each further copy k is every
hotel again under a new name ("City Hotel 2", ...), its bookings' arrival (and with it the
booking and the status dates, lead times unchanged) moved by a few days, their prices changed
by a few per cent. Booking ids stay unique: the export's own ids, when it has them, are moved
past the previous copy's; without them the reader numbers the rows.
"""

from __future__ import annotations

import calendar

import numpy as np
import pandas as pd

MAX_SHIFT_DAYS = 3  # arrival moved by -3..+3 days: the season and the weekdays keep their shape
PRICE_NOISE = 0.05  # prices times exp(N(0, 0.05)), about +-5 %
MONTH_NAMES = list(calendar.month_name)


def _arrival(raw: pd.DataFrame) -> pd.Series:
    months = raw["arrival_date_month"].map({name: i for i, name in enumerate(MONTH_NAMES)})
    return pd.to_datetime(
        {
            "year": raw["arrival_date_year"].astype(int),
            "month": months,
            "day": raw["arrival_date_day_of_month"].astype(int),
        }
    )


def _status_dates(written: pd.Series, shift: pd.Series) -> pd.Series:
    """The status dates moved by `shift` days, written as the export writes them (M/D/YYYY or
    YYYY-MM-DD, whichever it uses); an empty one stays empty."""
    iso = written.str.match(r"^\d{4}-", na=False)
    dates = pd.to_datetime(written, format="mixed", errors="coerce") + shift
    us = dates.dt.month.astype("Int64").astype(str) + "/" + dates.dt.day.astype("Int64").astype(str)
    us = us + "/" + dates.dt.year.astype("Int64").astype(str)
    moved = us.where(~iso, dates.dt.strftime("%Y-%m-%d"))
    return moved.where(dates.notna(), written)


def _copy(raw: pd.DataFrame, k: int, rng: np.random.Generator) -> pd.DataFrame:
    """Copy k (k >= 2) of the export: hotels renamed, dates moved, prices changed."""
    copy = raw.copy()
    copy["hotel"] = raw["hotel"] + f" {k}"
    shift = pd.to_timedelta(rng.integers(-MAX_SHIFT_DAYS, MAX_SHIFT_DAYS + 1, len(raw)), unit="D")
    shift = pd.Series(shift, index=raw.index)
    arrival = _arrival(raw) + shift
    copy["arrival_date_year"] = arrival.dt.year.astype(str)
    copy["arrival_date_month"] = arrival.dt.month.map(MONTH_NAMES.__getitem__)
    copy["arrival_date_week_number"] = arrival.dt.isocalendar().week.astype(str)
    copy["arrival_date_day_of_month"] = arrival.dt.day.astype(str)
    if "reservation_status_date" in raw:
        copy["reservation_status_date"] = _status_dates(raw["reservation_status_date"], shift)
    prices = pd.to_numeric(raw["adr"], errors="coerce")
    noisy = (prices * np.exp(rng.normal(0.0, PRICE_NOISE, len(raw)))).round(2)
    # a price that was no number stays as it was written (cleaning quarantines it, as before)
    copy["adr"] = noisy.map("{:g}".format).where(prices.notna(), raw["adr"])
    return copy


def scale_export(raw: pd.DataFrame, factor: int, seed: int = 42) -> pd.DataFrame:
    """`factor` times the export's rows (columns and their text as read, every value a string):
    the export itself, then factor - 1 copies made of new hotels (module docstring)."""
    if factor < 1:
        raise ValueError(f"factor must be at least 1, got {factor}")
    rng = np.random.default_rng(seed)
    parts = [raw, *(_copy(raw, k, rng) for k in range(2, factor + 1))]
    scaled = pd.concat(parts, ignore_index=True)
    if "booking_id" in raw:
        ids = pd.to_numeric(raw["booking_id"])
        span = int(ids.max()) + 1
        scaled["booking_id"] = np.concatenate([ids + span * k for k in range(factor)]).astype(str)
    return scaled
