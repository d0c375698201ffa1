from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from booking_platform.core.cleaning import clean_bookings
from booking_platform.core.features import (
    FEATURE_COLUMNS,
    FeatureBuilder,
    build_feature_set,
    rate_feature_name,
)
from booking_platform.core.source import OUTCOME_COLUMNS, read_bookings
from booking_platform_tests.synthetic import make_bookings, write_csv

FORBIDDEN = {*OUTCOME_COLUMNS, "assigned_room_type", "booking_changes", "days_in_waiting_list"}


@pytest.fixture
def cleaned(tmp_path: Path) -> pd.DataFrame:
    return clean_bookings(
        read_bookings(write_csv(make_bookings(3000), tmp_path / "b.csv")).frame
    ).cleaned


def test_no_label_or_post_booking_column_is_a_feature() -> None:
    assert FORBIDDEN.isdisjoint(FEATURE_COLUMNS)
    assert "arrival_date_year" not in FEATURE_COLUMNS  # replaced by the day-index trend


def test_rates_use_only_outcomes_known_at_booking_time(cleaned: pd.DataFrame) -> None:
    """Flipping the labels of bookings that arrive on or after a row's booking date must not
    change that row's features: they were unknown when it was booked."""
    row = cleaned.sort_values("booking_date").iloc[len(cleaned) // 2]
    later = cleaned["arrival_date"] >= row["booking_date"]
    flipped = cleaned.assign(
        is_canceled=np.where(later, 1 - cleaned["is_canceled"], cleaned["is_canceled"])
    )
    target = cleaned[cleaned["booking_id"] == row["booking_id"]]
    original = FeatureBuilder.fit(cleaned).transform(target)
    after_flip = FeatureBuilder.fit(flipped).transform(target)
    pd.testing.assert_frame_equal(original, after_flip)
    # ... while flipping earlier outcomes does move the rates, so the test can fail
    earlier_flip = cleaned.assign(
        is_canceled=np.where(~later, 1 - cleaned["is_canceled"], cleaned["is_canceled"])
    )
    moved = FeatureBuilder.fit(earlier_flip).transform(target)
    assert not np.isclose(
        moved[rate_feature_name(("agent",))].iloc[0],
        original[rate_feature_name(("agent",))].iloc[0],
    )


def test_one_booking_gets_the_same_features_alone_as_in_a_batch(cleaned: pd.DataFrame) -> None:
    builder = FeatureBuilder.fit(cleaned)
    batch = builder.transform(cleaned)
    for position in (0, 17, 2999):
        alone = builder.transform(cleaned.iloc[[position]])
        pd.testing.assert_frame_equal(alone, batch.iloc[[position]])


def test_unseen_categories_become_missing_not_errors(cleaned: pd.DataFrame) -> None:
    builder = FeatureBuilder.fit(cleaned)
    novel = cleaned.head(3).assign(country="ATLANTIS", market_segment="Space")
    features = builder.transform(novel)
    assert features["country"].isna().all() and features["market_segment"].isna().all()
    assert list(features.columns) == list(FEATURE_COLUMNS)


def test_feature_set_separates_history_and_open(cleaned: pd.DataFrame) -> None:
    as_of = date(2017, 3, 1)
    feature_set = build_feature_set(cleaned, as_of)
    history, history_features = feature_set.part("history")
    upcoming, _ = feature_set.part("open")
    assert (history["arrival_date"] < pd.Timestamp(as_of)).all()
    assert (upcoming["arrival_date"] >= pd.Timestamp(as_of)).all()
    assert len(history_features) == len(history) and len(upcoming) > 0
    assert FORBIDDEN.isdisjoint(feature_set.features.columns)


def test_the_scoring_date_says_how_long_the_booking_has_been_open(cleaned: pd.DataFrame) -> None:
    builder = FeatureBuilder.fit(cleaned)
    booking = cleaned[cleaned["lead_time"] >= 40].iloc[[0]]
    booked, lead_time = booking["booking_date"].iloc[0], booking["lead_time"].iloc[0]
    asked = {
        "never said": booking,
        "at booking": booking.assign(scored_on=booked),
        "30 days later": booking.assign(scored_on=booked + pd.Timedelta(days=30)),
        "before it was made": booking.assign(scored_on=booked - pd.Timedelta(days=9)),
        "after arrival": booking.assign(scored_on=booked + pd.Timedelta(days=lead_time + 5)),
    }
    open_days = {
        name: builder.transform(rows)[["days_open", "days_to_arrival"]].iloc[0].tolist()
        for name, rows in asked.items()
    }
    assert open_days["never said"] == open_days["at booking"] == [0, lead_time]
    assert open_days["30 days later"] == [30, lead_time - 30]
    assert open_days["before it was made"] == [0, lead_time]  # the nearest moment it was open
    assert open_days["after arrival"] == [lead_time, 0]
    # only the question changed, so only those two features did
    changed = builder.transform(asked["30 days later"]).compare(builder.transform(booking))
    assert set(changed.columns.get_level_values(0)) == {"days_open", "days_to_arrival"}
