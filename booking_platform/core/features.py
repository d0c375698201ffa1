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


def _group_key(frame: pd.DataFrame, group: tuple[str, ...]) -> pd.Series:
    key = frame[group[0]].astype(str)
    for column in group[1:]:
        key = key + "|" + frame[column].astype(str)
    return key


@dataclass
class FeatureBuilder:
    """Category levels and point-in-time rate tables learnt from history."""

    categories: dict[str, list[str]] = field(default_factory=dict)
    # per group: a frame (key, day, cum_bookings, cum_cancels), cumulative up to `day` inclusive
    rate_tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    global_table: pd.DataFrame | None = None

    @classmethod
    def fit(cls, history: pd.DataFrame) -> FeatureBuilder:
        """Learn from bookings with final labels (arrival before the as-of date)."""
        categories = {
            c: sorted(history[c].astype(str).unique().tolist()) for c in CATEGORICAL_COLUMNS
        }
        days = (history["arrival_date"] - EPOCH).dt.days.to_numpy()
        labels = history["is_canceled"].to_numpy()
        rate_tables = {}
        for group in RATE_GROUPS:
            counts = (
                pd.DataFrame(
                    {"key": _group_key(history, group).to_numpy(), "day": days, "cancels": labels}
                )
                .groupby(["key", "day"], sort=True)["cancels"]
                .agg(["size", "sum"])
                .groupby(level="key")
                .cumsum()
                .reset_index()
                .rename(columns={"size": "cum_bookings", "sum": "cum_cancels"})
            )
            rate_tables[rate_feature_name(group)] = counts
        global_table = (
            pd.DataFrame({"day": days, "cancels": labels})
            .groupby("day")["cancels"]
            .agg(["size", "sum"])
            .cumsum()
            .reset_index()
            .rename(columns={"size": "cum_bookings", "sum": "cum_cancels"})
        )
        return cls(categories=categories, rate_tables=rate_tables, global_table=global_table)

    def _known_before(
        self, table: pd.DataFrame, day: np.ndarray, keys: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Cumulative (bookings, cancels) of arrivals strictly before `day`, per row."""
        probe = pd.DataFrame({"day": day - 1, "row": np.arange(len(day))})
        if keys is not None:
            probe["key"] = keys
        merged = pd.merge_asof(
            probe.sort_values("day"),
            table.sort_values("day"),
            on="day",
            by="key" if keys is not None else None,
            direction="backward",
        ).sort_values("row")
        return (
            merged["cum_bookings"].fillna(0).to_numpy(),
            merged["cum_cancels"].fillna(0).to_numpy(),
        )

    def categorize(self, features: pd.DataFrame) -> pd.DataFrame:
        """Give categorical columns the levels seen in training (unseen levels become NaN)."""
        features = features.copy()
        for column in CATEGORICAL_COLUMNS:
            features[column] = pd.Categorical(
                features[column].astype(str), categories=self.categories[column]
            )
        return features

    def transform(self, bookings: pd.DataFrame) -> pd.DataFrame:
        """Features for any bookings in the cleaned schema (labels, if present, are not read)."""
        features = pd.DataFrame(index=bookings.index)
        for column in ALLOWED_SOURCE_COLUMNS:
            if column in CATEGORICAL_COLUMNS:
                features[column] = bookings[column].astype(str)
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

        global_n, global_c = self._known_before(self.global_table, booking_day, None)
        prior = np.where(global_n > 0, global_c / np.maximum(global_n, 1), np.nan)
        for group in RATE_GROUPS:
            name = rate_feature_name(group)
            keys = _group_key(bookings, group).to_numpy()
            n, c = self._known_before(self.rate_tables[name], booking_day, keys)
            features[name] = (c + RATE_SMOOTHING * prior) / (n + RATE_SMOOTHING)
        return self.categorize(features[list(FEATURE_COLUMNS)])


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
