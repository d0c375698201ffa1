"""Booking-time features: the one function that training, batch scoring and single predictions use.

Only columns known when the booking is made feed the model (ALLOWED_SOURCE_COLUMNS). Labels,
outcomes and post-booking columns (assigned_room_type, booking_changes, days_in_waiting_list) never
do. Beside the raw columns, the model sees:
- a time trend: days since EPOCH of the booking date and of the arrival date (in place of the
  arrival year, which a tree cannot extrapolate);
- when the question is asked: a booking is scored on a date (`scored_on`: the as-of date of a
  scoring run, or its booking date when none is given), and `days_open` (days it has survived
  uncancelled by then) and `days_to_arrival` tell the model so. A booking still open a week before
  arrival is a different risk from the same booking on the day it was made;
- point-in-time cancellation rates per agent, country, segment, deposit type and a few pairs,
  computed only from bookings that had *arrived* before the row's own booking date, i.e. from
  outcomes known when the booking was made. They are fitted on history and frozen into the model,
  so scoring never sees a label the training did not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property

import numpy as np
import pandas as pd

from booking_platform.core.cleaning import history, open_bookings
from booking_platform.core.source import FEATURE_SOURCE_COLUMNS

EPOCH = pd.Timestamp("2015-01-01")
EPOCH_DAY = np.datetime64("2015-01-01", "D")
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
DATE_PARTS = ("arrival_date_year", "arrival_date_month")  # not features, but make the dates
# what a booking must hold to be scored; the rest of the source schema is known only after
# booking (or after the outcome) and never read by the model
SCORING_COLUMNS: tuple[str, ...] = (*ALLOWED_SOURCE_COLUMNS, *DATE_PARTS)
POST_BOOKING: tuple[str, ...] = tuple(c for c in FEATURE_SOURCE_COLUMNS if c not in SCORING_COLUMNS)
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
    "days_open",
    "days_to_arrival",
)
SCORED_ON = "scored_on"  # optional column of bookings: the date the prediction is for
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

FEATURE_POSITION = {name: i for i, name in enumerate(FEATURE_COLUMNS)}

# Point-in-time lookups use one sorted int64 array per group: key * DAY_SPAN + shifted day.
DAY_SPAN = 1 << 16
DAY_SHIFT = 1 << 14  # keeps days before EPOCH (bookings made in 2013-14) positive
KEY_SPAN = 1 << 32  # keys per table when the tables are stacked (RateTable.stack)


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

    @classmethod
    def stack(cls, tables: list[RateTable]) -> RateTable:
        """One table answering for all: table i's key k becomes i * KEY_SPAN + k, so a single
        search serves every group (on one booking, per-call overhead dominates)."""
        for table in tables:
            if len(table.positions) and table.positions[-1] // DAY_SPAN >= KEY_SPAN:
                raise ValueError("a rate group has too many level combinations to stack")
        return cls(
            positions=np.concatenate(
                [i * KEY_SPAN * DAY_SPAN + t.positions for i, t in enumerate(tables)]
            ),
            cum_bookings=np.concatenate([t.cum_bookings for t in tables]),
            cum_cancels=np.concatenate([t.cum_cancels for t in tables]),
        )

    def known_before(self, keys: np.ndarray, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(bookings, cancels) of the key's arrivals strictly before each day."""
        probe = keys * DAY_SPAN + (days + (DAY_SHIFT - 1))
        index = self.positions.searchsorted(probe, side="right") - 1
        # index -1 (nothing before) reads the last entry, whose key cannot match: masked anyway
        found = (index >= 0) & (self.positions[index] // DAY_SPAN == keys)
        return (
            np.where(found, self.cum_bookings[index], 0.0),
            np.where(found, self.cum_cancels[index], 0.0),
        )


def _as_text(values: np.ndarray | pd.Series) -> list[str]:
    """Category values as text, the form levels are learnt and looked up in (9.0 -> "9.0")."""
    return list(map(str, np.asarray(values).tolist()))


@dataclass
class FeatureBuilder:
    """Category levels and point-in-time rate tables learnt from history.

    `encode` is the feature logic, on plain arrays: one float matrix whose categorical columns
    hold their category code (NaN for a level never seen), which is what LightGBM itself turns a
    pandas categorical into. `transform` wraps the same matrix in a frame with categorical
    dtypes for training and batch scoring; the HTTP service calls `encode` directly, without
    pandas' per-call overhead.
    """

    categories: dict[str, list[str]] = field(default_factory=dict)
    rate_tables: dict[str, RateTable] = field(default_factory=dict)
    global_table: RateTable | None = None

    @cached_property
    def _level_codes(self) -> dict[str, dict[str, int]]:
        return {
            c: {level: i for i, level in enumerate(levels)} for c, levels in self.categories.items()
        }

    def category_codes(self, column: str, values: np.ndarray | pd.Series) -> np.ndarray:
        """Position of each value among the column's learnt levels; -1 for a level never seen.

        Each distinct value is turned into text and looked up once: str() of every value was
        most of `encode` on a day's bookings, which hold a few hundred distinct values a column.
        """
        levels = self._level_codes[column]
        array = np.asarray(values)
        if array.dtype.kind in "biuf":  # numbers, sorted: NaN (the one missing number) once
            distinct, inverse = np.unique(array, return_inverse=True, equal_nan=True)
            codes = [levels.get(text, -1) for text in _as_text(distinct)]
            return np.array(codes, dtype="int64")[inverse.ravel()]
        items = array.tolist()  # other values keep Python's equality: None is not NaN
        code_of = {value: levels.get(str(value), -1) for value in dict.fromkeys(items)}
        return np.fromiter(map(code_of.__getitem__, items), dtype="int64", count=len(items))

    @cached_property
    def _stacked_rates(self) -> RateTable:
        """The global table, then one per RATE_GROUPS entry, searched together by `encode`."""
        return RateTable.stack(
            [self.global_table, *(self.rate_tables[rate_feature_name(g)] for g in RATE_GROUPS)]
        )

    def _group_keys(self, codes: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """An integer key per rate group and row; 0 in any part means a level never seen."""
        keys = {}
        for group in RATE_GROUPS:
            key = codes[group[0]] + 1
            for column in group[1:]:
                key = key * (len(self.categories[column]) + 1) + codes[column] + 1
            keys[rate_feature_name(group)] = key
        return keys

    @classmethod
    def fit(cls, history: pd.DataFrame) -> FeatureBuilder:
        """Learn from bookings with final labels (arrival before the as-of date)."""
        builder = cls(
            categories={c: sorted(set(_as_text(history[c]))) for c in CATEGORICAL_COLUMNS}
        )
        days = (history["arrival_date"] - EPOCH).dt.days.to_numpy()
        labels = history["is_canceled"].to_numpy()
        codes = {c: builder.category_codes(c, history[c]) for c in CATEGORICAL_COLUMNS}
        builder.rate_tables = {
            name: RateTable.count(keys, days, labels)
            for name, keys in builder._group_keys(codes).items()
        }
        builder.global_table = RateTable.count(np.zeros_like(days), days, labels)
        return builder

    def encode(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """The feature matrix (rows x FEATURE_COLUMNS, float64) of cleaned bookings given as
        arrays: every ALLOWED_SOURCE_COLUMNS column, `arrival_date` (datetime64) and, optionally,
        SCORED_ON (datetime64; absent: at booking time). The booking date is arrival minus lead
        time, as cleaning defines it."""
        codes = {c: self.category_codes(c, columns[c]) for c in CATEGORICAL_COLUMNS}
        arrival = np.asarray(columns["arrival_date"]).astype("datetime64[D]")
        # one row per feature, filled in place: on a single booking, allocations dominate
        features = np.empty((len(FEATURE_COLUMNS), len(arrival)))
        row = FEATURE_POSITION
        for column in ALLOWED_SOURCE_COLUMNS:
            if column in CATEGORICAL_COLUMNS:
                features[row[column]] = np.where(codes[column] >= 0, codes[column], np.nan)
            else:
                features[row[column]] = columns[column]
        booked = arrival - np.asarray(columns["lead_time"]).astype("timedelta64[D]")
        booking_day = (booked - EPOCH_DAY).astype("int64")
        features[row["arrival_month"]] = arrival.astype("datetime64[M]").astype("int64") % 12 + 1
        # 1970-01-01, day 0 of datetime64, was a Thursday (weekday 3, Monday = 0)
        features[row["arrival_weekday"]] = (arrival.astype("int64") + 3) % 7
        features[row["booking_weekday"]] = (booked.astype("int64") + 3) % 7
        features[row["arrival_day_index"]] = (arrival - EPOCH_DAY).astype("int64")
        features[row["booking_day_index"]] = booking_day
        lead_time = features[row["lead_time"]]
        if SCORED_ON in columns:
            # asked before the booking existed or after arrival: the nearest moment it was open
            open_for = (np.asarray(columns[SCORED_ON]).astype("datetime64[D]") - booked).astype(
                "int64"
            )
            features[row["days_open"]] = np.clip(open_for, 0, lead_time)
        else:
            features[row["days_open"]] = 0.0
        features[row["days_to_arrival"]] = lead_time - features[row["days_open"]]
        features[row["total_nights"]] = (
            features[row["stays_in_weekend_nights"]] + features[row["stays_in_week_nights"]]
        )
        guests = features[row["adults"]] + features[row["children"]]
        with np.errstate(divide="ignore", invalid="ignore"):
            features[row["adr_per_guest"]] = np.where(
                guests > 0, features[row["adr"]] / guests, np.nan
            )

        # one search for the global rate (key 0 of table 0) and every group (table i + 1)
        tables = len(RATE_GROUPS) + 1
        stacked_keys = np.concatenate(
            [np.zeros_like(booking_day), *self._group_keys(codes).values()]
        ) + np.repeat(np.arange(tables, dtype="int64") * KEY_SPAN, len(booking_day))
        known, cancels = self._stacked_rates.known_before(
            stacked_keys, np.tile(booking_day, tables)
        )
        known, cancels = known.reshape(tables, -1), cancels.reshape(tables, -1)
        with np.errstate(divide="ignore", invalid="ignore"):
            prior = np.where(known[0] > 0, cancels[0] / np.maximum(known[0], 1), np.nan)
        # the rate columns close FEATURE_COLUMNS, in RATE_GROUPS order
        features[-len(RATE_GROUPS) :] = (cancels[1:] + RATE_SMOOTHING * prior) / (
            known[1:] + RATE_SMOOTHING
        )
        return features.T

    def transform(self, bookings: pd.DataFrame) -> pd.DataFrame:
        """Features for any bookings in the cleaned schema (labels, if present, are not read),
        scored on their SCORED_ON column when they have one, else at booking time."""
        return self.as_frame(self.encode(booking_columns(bookings)), bookings.index)

    def as_frame(self, matrix: np.ndarray, index: pd.Index) -> pd.DataFrame:
        """`encode`'s matrix as a frame with categorical dtypes (what training and the reasons
        read); `feature_matrix` turns it back."""
        features = pd.DataFrame(matrix, index=index, columns=list(FEATURE_COLUMNS))
        for column in CATEGORICAL_COLUMNS:
            features[column] = pd.Categorical.from_codes(
                features[column].fillna(-1).astype("int64"), categories=self.categories[column]
            )
        return features


def booking_columns(bookings: pd.DataFrame) -> dict[str, np.ndarray]:
    """The columns of cleaned bookings that `FeatureBuilder.encode` reads, as arrays."""
    names = (*ALLOWED_SOURCE_COLUMNS, "arrival_date", SCORED_ON)
    return {c: bookings[c].to_numpy() for c in names if c in bookings.columns}


def feature_matrix(features: pd.DataFrame) -> np.ndarray:
    """`encode`'s float matrix from a features frame: a category's code (NaN for a level never
    seen), which is what LightGBM turns a pandas categorical into."""
    return np.column_stack(
        [
            np.where(features[c].cat.codes >= 0, features[c].cat.codes, np.nan)
            if isinstance(features[c].dtype, pd.CategoricalDtype)
            else features[c].to_numpy(dtype="float64", na_value=np.nan)
            for c in features.columns
        ]
    )


@dataclass
class FeatureSet:
    """Features as of a date: history (labels final), scored at booking time, and open bookings
    (to score), scored on the as-of date.

    `bookings` keeps the cleaned rows, labels included, beside `features`, which never hold one.
    """

    as_of: date
    builder: FeatureBuilder
    bookings: pd.DataFrame  # cleaned rows, with `role` "history" or "open"
    features: pd.DataFrame  # builder.transform(bookings), same index

    def part(self, role: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        return self.bookings_of(role), self.features_of(role)

    def bookings_of(self, role: str) -> pd.DataFrame:
        return self.bookings[self._is(role)]

    def features_of(self, role: str) -> pd.DataFrame:
        return self.features[self._is(role)]

    def _is(self, role: str) -> np.ndarray:
        return (self.bookings["role"] == role).to_numpy()


def build_feature_set(cleaned: pd.DataFrame, as_of: date) -> FeatureSet:
    """Fit the builder on history before `as_of` and build features for history and open rows."""
    past, upcoming = history(cleaned, as_of), open_bookings(cleaned, as_of)
    if past.empty:
        raise ValueError(f"no bookings arrived before the as-of date {as_of}: nothing to learn")
    bookings = pd.concat(
        [
            past.assign(role="history", **{SCORED_ON: past["booking_date"]}),
            upcoming.assign(role="open", **{SCORED_ON: pd.Timestamp(as_of)}),
        ],
        ignore_index=True,
    )
    builder = FeatureBuilder.fit(past)
    return FeatureSet(
        as_of=as_of, builder=builder, bookings=bookings, features=builder.transform(bookings)
    )
