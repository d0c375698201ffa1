"""Whether an export may replace the last accepted one: the audit of write-audit-publish.

An export is staged first and published only when accepted (defs/assets/ingestion.py). Two rules
live here, with no Dagster:
- the as-of date must lie inside the data: some booking arrived before it (history to learn
  from) and some arrives on or after it (bookings to score); otherwise the run stops before a
  partition is added or a row is written;
- an export must not shrink the as-of slice by more than a share (default 20 %) against the last
  accepted export at or before its date (exports only grow as bookings are made): a one-row or
  all-invalid export is refused with a message saying so, unless the person says it is intended.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd

DEFAULT_MAX_SHRINK = 0.2
ARRIVAL_COLUMNS = ("arrival_date_year", "arrival_date_month", "arrival_date_day_of_month")


class AsOfOutsideData(ValueError):
    """The as-of date has no history before it or nothing to score after it."""


def arrival_dates(raw: pd.DataFrame) -> pd.Series:
    """Arrival dates of raw text rows (NaT where they do not parse), without typing the rest.

    The same dates as cleaning's `type_bookings` (a test holds them equal), at a fraction of its
    cost: the command line reads them before it adds a partition.
    """
    text = (
        raw["arrival_date_year"].astype("string").str.strip().str.removesuffix(".0")
        + "-"
        + raw["arrival_date_month"].astype("string").str.strip()
        + "-"
        + raw["arrival_date_day_of_month"].astype("string").str.strip().str.removesuffix(".0")
    )
    return pd.to_datetime(text, format="%Y-%B-%d", errors="coerce")


def check_as_of_inside(raw: pd.DataFrame, as_of: date, source: object) -> None:
    """Raise AsOfOutsideData (naming the source and its arrivals) unless history exists before
    `as_of` and some booking arrives on or after it."""
    arrivals = arrival_dates(raw).dropna()
    if arrivals.empty:
        raise AsOfOutsideData(f"{source}: no row has a readable arrival date")
    first, last = arrivals.min(), arrivals.max()
    cutoff = pd.Timestamp(as_of)
    if first < cutoff <= last:
        return
    problem = (
        "no booking arrived before it (nothing to learn from)"
        if cutoff <= first
        else "no booking arrives on or after it (nothing to score)"
    )
    raise AsOfOutsideData(
        f"as-of date {as_of} is outside the data in {source}: {problem}; arrivals run "
        f"{first:%Y-%m-%d} .. {last:%Y-%m-%d}, so choose a date after {first:%Y-%m-%d} and no "
        f"later than {last:%Y-%m-%d} (BOOKINGS_AS_OF)"
    )


@dataclass(frozen=True)
class Accepted:
    """What is known of the last accepted export the new one is compared with."""

    as_of: date
    rows: int


@dataclass(frozen=True)
class VolumeVerdict:
    passed: bool
    description: str
    shrink: float | None  # share of the previous rows lost (negative: grew); None: no previous


def judge_volume(
    what: str, rows: int, previous: Accepted | None, max_shrink: float, intended: bool
) -> VolumeVerdict:
    """Accept `rows` of `what` unless none, or fewer than (1 - max_shrink) x the previous export.

    An empty slice is never accepted: there is nothing to train on or score. A larger shrink is
    accepted only when `intended` (the run's `booking_platform/accept_shrink` tag).
    """
    if rows == 0:
        return VolumeVerdict(False, f"{what}: the export has no rows: refused", None)
    if previous is None:
        return VolumeVerdict(True, f"{what}: {rows:,} rows, the first accepted export", None)
    shrink = 1 - rows / previous.rows if previous.rows else 0.0
    compared = (
        f"{what}: {rows:,} rows against {previous.rows:,} in the export accepted as of "
        f"{previous.as_of} ({-shrink:+.1%})"
    )
    if shrink <= max_shrink:
        return VolumeVerdict(True, compared, shrink)
    if intended:
        return VolumeVerdict(
            True,
            f"{compared}: shrinks by more than {max_shrink:.0%}, "
            "accepted as intended (accept_shrink)",
            shrink,
        )
    return VolumeVerdict(
        False,
        f"{compared}: refused, it shrinks by {shrink:.1%}, more than the {max_shrink:.0%} "
        "allowed; if that is intended, rerun with `booking-platform run --accept-shrink` (or the "
        "run tag booking_platform/accept_shrink=true in Dagit)",
        shrink,
    )
