"""Booking-time features: the one function that training, batch scoring and single predictions use.

Only columns known when the booking is made feed the model (ALLOWED_SOURCE_COLUMNS). Labels,
outcomes and post-booking columns (assigned_room_type, booking_changes, days_in_waiting_list) never
do. Beside the raw columns, the model sees:
- a time trend: days since EPOCH of the booking date and of the arrival date (in place of the
  arrival year, which a tree cannot extrapolate);
- point-in-time cancellation rates per agent, country, segment, deposit type and a few pairs,
  computed only from bookings that had *arrived* before the row's own booking date, i.e. from
  outcomes known when the booking was made. They are fitted on history and frozen into the model,
  so scoring never sees a label the training did not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from booking_platform.core.cleaning import history, open_bookings

EPOCH = pd.Timestamp("2015-01-01")
ALLOWED_SOURCE_COLUMNS: tuple[str, ...] = (
    "hotel",
    "lead_time",
    "arrival_date_week_number",
    "arrival_date_day_of_month",
    "stays_in_weekend_nights",
    "stays_in_week_nights",
    "adults",
    "children",
    "babies",
    "meal",
    "country",
    "market_segment",
    "distribution_channel",
    "is_repeated_guest",
    "previous_cancellations",
    "previous_bookings_not_canceled",
    "reserved_room_type",
    "deposit_type",
    "agent",
    "company",
    "customer_type",
    "adr",
    "required_car_parking_spaces",
    "total_of_special_requests",
)
CATEGORICAL_COLUMNS: tuple[str, ...] = (
    "hotel",
    "meal",
    "country",
    "market_segment",
    "distribution_channel",
    "reserved_room_type",
    "deposit_type",
    "customer_type",
    "agent",
    "company",
)
DERIVED_COLUMNS: tuple[str, ...] = (
    "arrival_month",
    "arrival_weekday",
    "booking_weekday",
    "arrival_day_index",
    "booking_day_index",
    "total_nights",
    "adr_per_guest",
)
# Groups whose historical cancellation rate is a feature; a tuple is a pair of columns.
RATE_GROUPS: tuple[tuple[str, ...], ...] = (
    ("agent",),
    ("country",),
    ("market_segment",),
    ("deposit_type",),
    ("customer_type",),
    ("agent", "deposit_type"),
    ("country", "market_segment"),
    ("hotel", "market_segment"),
    ("agent", "hotel"),
    ("agent", "market_segment"),
    ("country", "deposit_type"),
    ("country", "hotel"),
    ("reserved_room_type", "hotel"),
    ("distribution_channel",),
    ("company",),
)
RATE_SMOOTHING = 20.0  # pseudo-bookings at the global rate, so rare groups stay near it


def rate_feature_name(group: tuple[str, ...]) -> str:
    return "cancel_rate_" + "_x_".join(group)


FEATURE_COLUMNS: tuple[str, ...] = (
    *ALLOWED_SOURCE_COLUMNS,
    *DERIVED_COLUMNS,
    *(rate_feature_name(g) for g in RATE_GROUPS),
)


# Point-in-time lookups use one sorted int64 array per group: key * DAY_SPAN + shifted day.
DAY_SPAN = 1 << 16
DAY_SHIFT = 1 << 14  # keeps days before EPOCH (bookings made in 2013-14) positive


@dataclass(frozen=True)
class RateTable:
    """Cumulative bookings and cancellations per group key, by arrival day (inclusive)."""

    positions: np.ndarray  # sorted key * DAY_SPAN + day + DAY_SHIFT
    cum_bookings: np.ndarray
    cum_cancels: np.ndarray

    @classmethod
    def count(cls, keys: np.ndarray, days: np.ndarray, labels: np.ndarray) -> RateTable:
        positions, inverse = np.unique(keys * DAY_SPAN + days + DAY_SHIFT, return_inverse=True)
        bookings = np.bincount(inverse).astype("float64")
        cancels = np.bincount(inverse, weights=labels).astype("float64")
        # running sums restart at each key: subtract the total before the key's first day
        key_of = positions // DAY_SPAN
        first = np.flatnonzero(np.r_[True, key_of[1:] != key_of[:-1]])
        block = np.repeat(first, np.diff(np.r_[first, len(positions)]))
        all_bookings, all_cancels = np.cumsum(bookings), np.cumsum(cancels)
        return cls(
            positions=positions,
            cum_bookings=all_bookings - all_bookings[block] + bookings[block],
            cum_cancels=all_cancels - all_cancels[block] + cancels[block],
        )

    def known_before(self, keys: np.ndarray, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(bookings, cancels) of the key's arrivals strictly before each day."""
        probe = keys * DAY_SPAN + days - 1 + DAY_SHIFT
        index = np.searchsorted(self.positions, probe, side="right") - 1
        safe = np.clip(index, 0, None)
        found = (index >= 0) & (self.positions[safe] // DAY_SPAN == keys)
        return (
            np.where(found, self.cum_bookings[safe], 0.0),
            np.where(found, self.cum_cancels[safe], 0.0),
        )


@dataclass
class FeatureBuilder:
    """Category levels and point-in-time rate tables learnt from history."""

    categories: dict[str, list[str]] = field(default_factory=dict)
    rate_tables: dict[str, RateTable] = field(default_factory=dict)
    global_table: RateTable | None = None

    def _categoricals(self, bookings: pd.DataFrame) -> dict[str, pd.Categorical]:
        """Categorical columns with the levels seen in training (unseen levels become NaN)."""
        return {
            c: pd.Categorical(bookings[c].astype(str), categories=self.categories[c])
            for c in CATEGORICAL_COLUMNS
        }

    def _group_keys(self, categoricals: dict[str, pd.Categorical]) -> dict[str, np.ndarray]:
        """An integer key per rate group and row; 0 in any part means a level never seen."""
        codes = {c: values.codes + 1 for c, values in categoricals.items()}
        keys = {}
        for group in RATE_GROUPS:
            key = codes[group[0]].astype("int64")
            for column in group[1:]:
                key = key * (len(self.categories[column]) + 1) + codes[column]
            keys[rate_feature_name(group)] = key
        return keys

    @classmethod
    def fit(cls, history: pd.DataFrame) -> FeatureBuilder:
        """Learn from bookings with final labels (arrival before the as-of date)."""
        builder = cls(
            categories={
                c: sorted(history[c].astype(str).unique().tolist()) for c in CATEGORICAL_COLUMNS
            }
        )
        days = (history["arrival_date"] - EPOCH).dt.days.to_numpy()
        labels = history["is_canceled"].to_numpy()
        builder.rate_tables = {
            name: RateTable.count(keys, days, labels)
            for name, keys in builder._group_keys(builder._categoricals(history)).items()
        }
        builder.global_table = RateTable.count(np.zeros_like(days), days, labels)
        return builder

    def transform(self, bookings: pd.DataFrame) -> pd.DataFrame:
        """Features for any bookings in the cleaned schema (labels, if present, are not read)."""
        categoricals = self._categoricals(bookings)
        features = pd.DataFrame(index=bookings.index)
        for column in ALLOWED_SOURCE_COLUMNS:
            if column in CATEGORICAL_COLUMNS:
                features[column] = categoricals[column]
            else:
                features[column] = bookings[column].astype("float64")
        arrival, booked = bookings["arrival_date"], bookings["booking_date"]
        features["arrival_month"] = arrival.dt.month.astype("float64")
        features["arrival_weekday"] = arrival.dt.weekday.astype("float64")
        features["booking_weekday"] = booked.dt.weekday.astype("float64")
        features["arrival_day_index"] = (arrival - EPOCH).dt.days.astype("float64")
        booking_day = (booked - EPOCH).dt.days.to_numpy()
        features["booking_day_index"] = booking_day.astype("float64")
        nights = bookings["stays_in_weekend_nights"] + bookings["stays_in_week_nights"]
        features["total_nights"] = nights.astype("float64")
        guests = bookings["adults"] + bookings["children"]
        features["adr_per_guest"] = (bookings["adr"] / guests.where(guests > 0)).astype("float64")

        global_n, global_c = self.global_table.known_before(np.zeros_like(booking_day), booking_day)
        prior = np.where(global_n > 0, global_c / np.maximum(global_n, 1), np.nan)
        for name, keys in self._group_keys(categoricals).items():
            n, c = self.rate_tables[name].known_before(keys, booking_day)
            features[name] = (c + RATE_SMOOTHING * prior) / (n + RATE_SMOOTHING)
        return features[list(FEATURE_COLUMNS)]


@dataclass
class FeatureSet:
    """Features as of a date: history (labels final) and open bookings (to score).

    `bookings` keeps the cleaned rows, labels included, beside `features`, which never hold one.
    """

    as_of: date
    builder: FeatureBuilder
    bookings: pd.DataFrame  # cleaned rows, with `role` "history" or "open"
    features: pd.DataFrame  # builder.transform(bookings), same index

    def part(self, role: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        rows = (self.bookings["role"] == role).to_numpy()
        return self.bookings[rows], self.features[rows]


def build_feature_set(cleaned: pd.DataFrame, as_of: date) -> FeatureSet:
    """Fit the builder on history before `as_of` and build features for history and open rows."""
    past, upcoming = history(cleaned, as_of), open_bookings(cleaned, as_of)
    if past.empty:
        raise ValueError(f"no bookings arrived before the as-of date {as_of}: nothing to learn")
    bookings = pd.concat(
        [past.assign(role="history"), upcoming.assign(role="open")], ignore_index=True
    )
    builder = FeatureBuilder.fit(past)
    return FeatureSet(
        as_of=as_of, builder=builder, bookings=bookings, features=builder.transform(bookings)
    )
