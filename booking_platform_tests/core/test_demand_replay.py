"""The replay's baselines and grading on synthetic data with answers computed by hand."""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from booking_platform.core.cleaning import clean_bookings, open_bookings
from booking_platform.core.demand_replay import (
    VARIANTS,
    last_year_forecast,
    lead_band_probabilities,
    rolling_shock_coverage,
    summarise,
    variant_columns,
    variant_name,
)
from booking_platform.core.net_demand import (
    DEFAULT_GROUPING,
    DEFAULT_METHOD,
    DEFAULT_SHOCK_SD,
    MIN_CHOICE_NIGHTS,
    night_rows,
    on_the_books,
)
from booking_platform_tests.synthetic import make_bookings

AS_OF = date(2017, 5, 1)


@pytest.fixture(scope="module")
def final() -> pd.DataFrame:
    return clean_bookings(make_bookings(6000)).cleaned


def test_the_lead_band_baseline_is_last_years_rate_of_the_same_question(
    final: pd.DataFrame,
) -> None:
    books = on_the_books(final, AS_OF)
    rates = lead_band_probabilities(final, books, AS_OF)
    assert (rates[books["in_house"].to_numpy()] == 0).all()
    # a City Hotel booking arriving 3 days after the as-of date: band 0-7 days
    asked = []
    for back in range(1, 13):
        day = pd.Timestamp(AS_OF) - pd.DateOffset(months=back)
        rows = open_bookings(final, day.date())
        rows = rows[(rows["arrival_date"] < pd.Timestamp(AS_OF)) & (rows["hotel"] == "City Hotel")]
        asked.append(rows[(rows["arrival_date"] - day).dt.days.between(0, 7)])
    expected = pd.concat(asked)["is_canceled"].mean()
    soon = (
        (books["hotel"] == "City Hotel")
        & ~books["in_house"]
        & ((books["arrival_date"] - pd.Timestamp(AS_OF)).dt.days == 3)
    ).to_numpy()
    assert soon.any()
    assert rates[soon] == pytest.approx(np.full(soon.sum(), expected))


def test_the_last_year_baseline_scales_the_same_weekday_a_year_earlier(
    final: pd.DataFrame,
) -> None:
    night = pd.Timestamp("2017-05-10")
    then = on_the_books(final, date(2016, 5, 2))  # 364 days before the as-of date
    nights = night_rows(then)
    same = nights[
        (nights["night"] == night - pd.Timedelta(days=364)) & (nights["hotel"] == "City Hotel")
    ]
    share = same["is_canceled"].eq(0).mean()
    booked_now = pd.DataFrame({"hotel": ["City Hotel"], "night": [night], "rooms_booked": [40]})
    assert last_year_forecast(final, booked_now, AS_OF) == pytest.approx([40 * share])


def test_coverage_and_walks_are_counted_on_graded_nights() -> None:
    nights = pd.DataFrame(
        {
            "hotel": "City Hotel",
            "as_of": pd.Timestamp("2017-02-01"),
            "night": pd.date_range("2017-02-01", periods=4),
            "rooms_booked": 10,
            "expected_occupied": [5.0, 5.0, 5.0, 5.0],
            "realised_occupied": [5.0, 9.0, 2.0, np.nan],  # the last night not known yet
            "occupied_80_low": 4,
            "occupied_80_high": 6,
            "occupied_95_low": 2,
            "occupied_95_high": 8,
            "capacity": 10,
            "walk_risk": 0.05,
            "headroom": 2,
            "lead_band_baseline": 6.0,
            "last_year_baseline": 4.0,
        }
    )
    for index in range(1, len(VARIANTS)):
        for column in (
            "occupied_80_low",
            "occupied_80_high",
            "occupied_95_low",
            "occupied_95_high",
            "headroom",
        ):
            nights[f"{column}__{index}"] = nights[column]
    estimates = pd.DataFrame(
        {
            "as_of": ["2017-02-01"],
            "arrival_month": ["2017-02"],
            "bookings": [100],
            "estimated_roc_auc": [0.85],
            "realised_roc_auc": [0.80],
            "estimated_roc_auc_low": [0.8],
            "estimated_roc_auc_high": [0.9],
            "estimated_calibration_error": [0.01],
            "realised_calibration_error": [0.03],
            "estimated_cancel_rate": [0.2],
            "realised_cancel_rate": [0.25],
        }
    )
    summary = summarise(nights, estimates)
    city = summary["hotels"]["City Hotel"]
    assert city["nights"] == 3
    assert city["mae_model"] == pytest.approx((0 + 4 + 3) / 3)
    assert city["mae_lead_band_baseline"] == pytest.approx((1 + 3 + 4) / 3)
    cover = next(iter(city["coverage"].values()))["all"]
    assert cover == {"80": pytest.approx(1 / 3), "95": pytest.approx(2 / 3)}
    assert city["walked_share"] == pytest.approx(1 / 3)  # 9 + 2 > 10
    assert summary["cbpe"]["month_ahead_mae_roc_auc"] == pytest.approx(0.05)
    assert summary["cbpe"]["month_ahead_inside_band"] == 1  # 0.80 in 0.8..0.9
    assert summary["cbpe"]["month_ahead_mae_calibration_error"] == pytest.approx(0.02)


def test_the_rolling_shock_is_chosen_on_nights_realised_before_each_forecast() -> None:
    """The first forecast has nothing before it: the default shock, whose intervals hold all
    its 120 nights and whose headroom walks a guest on each. Its 59 nights before the second's
    date: every variant's intervals hold all ten realised rooms but shock 0.5's, which hold 47
    (80 %) and 56 (95 %): nearest nominal, so the second forecast's intervals take shock 0.5,
    whose 80 % interval there holds half. Only shock 1's headroom walked no guest on them, so
    the second forecast's headroom takes shock 1, which walks one on 3 of its 10 nights. The
    first forecast's later nights (not yet realised on the second's date), where shock 0.5
    misses and shock 1 walks, must not count."""
    first, second = pd.Timestamp("2017-01-01"), pd.Timestamp("2017-03-01")
    nights = pd.concat(
        [
            pd.DataFrame({"as_of": first, "night": pd.date_range(first, periods=120)}),
            pd.DataFrame({"as_of": second, "night": pd.date_range(second, periods=10)}),
        ],
        ignore_index=True,
    ).assign(hotel="City Hotel", realised_occupied=10.0, capacity=12, walk_risk=0.05)
    for index in range(len(VARIANTS)):
        suffix = "" if index == 0 else f"__{index}"
        for column, value in (("80_low", 0), ("80_high", 20), ("95_low", 0), ("95_high", 20)):
            nights[f"occupied_{column}{suffix}"] = value
        nights[f"headroom{suffix}"] = 5  # 10 realised + 5 > 12: every night walks a guest
    half = variant_columns(nights)[variant_name(DEFAULT_GROUPING, DEFAULT_METHOD, 0.5)]
    position = nights.groupby("as_of").cumcount()
    in_first = nights["as_of"] == first
    later = nights["night"] >= second
    assert (in_first & ~later).sum() == 59 >= MIN_CHOICE_NIGHTS
    nights.loc[in_first & ((position >= 47) | later), f"occupied_80_low{half}"] = 11
    nights.loc[in_first & ((position >= 56) | later), f"occupied_95_low{half}"] = 11
    nights.loc[~in_first & (position >= 5), f"occupied_80_low{half}"] = 11
    one = variant_columns(nights)[variant_name(DEFAULT_GROUPING, DEFAULT_METHOD, 1.0)]
    # 10 + 1 fits in 12: no walk, but on the first forecast's nights not yet realised
    nights[f"headroom{one}"] = np.where(in_first & later, 5, 1)
    nights.loc[~in_first & (position >= 7), f"headroom{one}"] = 3
    rolling = rolling_shock_coverage(nights)
    assert rolling["chosen"] == {
        "2017-01": {"intervals": DEFAULT_SHOCK_SD, "headroom": DEFAULT_SHOCK_SD},
        "2017-03": {"intervals": 0.5, "headroom": 1.0},
    }
    assert rolling["all"] == {
        "80": pytest.approx((120 + 5) / 130),
        "95": 1.0,
        "walked": pytest.approx((120 + 3) / 130),
    }
