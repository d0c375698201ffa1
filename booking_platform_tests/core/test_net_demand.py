"""Net demand: the interval arithmetic on small cases with known answers, nights, capacity."""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from booking_platform.core.cleaning import clean_bookings
from booking_platform.core.net_demand import (
    CAPACITY_ESTIMATE_SOURCE,
    CHOICE_FLAGS,
    DEFAULT_SHOCK_SD,
    MIN_CHOICE_NIGHTS,
    MIN_SHIFT_BOOKINGS,
    SHIFT_LIMIT,
    ShockChoice,
    cancellation_units,
    choose_shock,
    estimate_capacity,
    forecast_net_demand,
    forecast_shock_grid,
    log_odds_shift,
    mark_choices,
    measured_shock_sd,
    night_rows,
    occupied_pmf,
    occupied_pmfs,
    on_the_books,
    past_shifts,
    pmf_quantile,
    realised_occupancy,
    shock_record,
    taken_from_grid,
)
from booking_platform_tests.synthetic import make_bookings

AS_OF = date(2017, 5, 1)


def _books(probabilities: list[float], identical: bool = False, **columns: object) -> pd.DataFrame:
    """Bookings of one night (2017-05-01, City Hotel): different rows, or one row repeated."""
    rows = len(probabilities)
    frame = make_bookings(rows, seed=3)
    if identical:
        frame = frame.iloc[[0] * rows]
    typed = clean_bookings(frame).cleaned.assign(
        hotel="City Hotel",
        arrival_date=pd.Timestamp(AS_OF),
        stays_in_weekend_nights=0,
        stays_in_week_nights=1,
        adr=np.full(rows, 80.0) if identical else np.arange(rows) + 50.0,
        cancel_probability=probabilities,
    )
    return typed.assign(**columns)


def test_independent_bookings_follow_the_poisson_binomial() -> None:
    # three bookings showing with 0.5, 0.5, 0.9: P(k shows) by hand
    pmf = occupied_pmf(np.array([1, 1, 1]), np.array([0.5, 0.5, 0.9]))
    expected = np.array([0.25 * 0.1, 0.5 * 0.1 + 0.25 * 0.9, 0.25 * 0.1 + 0.5 * 0.9, 0.25 * 0.9])
    np.testing.assert_allclose(pmf, expected)
    assert pmf_quantile(pmf, 0.025) == 0  # P(X <= 0) = 0.025
    assert pmf_quantile(pmf, 0.03) == 1
    assert pmf_quantile(pmf, 0.975) == 3


def test_a_group_that_cancels_together_is_all_or_nothing() -> None:
    # four rooms of one group, showing with 0.7: 0 or 4 rooms, never 1..3
    np.testing.assert_allclose(occupied_pmf(np.array([4]), np.array([0.7])), [0.3, 0, 0, 0, 0.7])
    # beside an independent booking showing with 0.5
    pmf = occupied_pmf(np.array([4, 1]), np.array([0.7, 0.5]))
    np.testing.assert_allclose(pmf, [0.15, 0.15, 0, 0, 0.35, 0.35])


def test_identical_rows_are_one_unit_and_different_rows_one_each() -> None:
    group = _books([0.4] * 10, identical=True).assign(booking_id=range(100, 110))
    units = cancellation_units(pd.concat([group, _books([0.4] * 5)]))
    assert len(set(units[:10])) == 1 and len(set(units)) == 6
    assert len(set(cancellation_units(group, "independent"))) == 10


def test_identical_rows_widen_the_interval_the_independent_reading_gives() -> None:
    # ten identical rows (a group) and ten different ones, all cancelling with 0.4
    group = _books([0.4] * 10, identical=True).assign(booking_id=range(100, 110))
    singles = _books([0.4] * 10)
    capacity = {"City Hotel": (30, "configured")}
    books = pd.concat([group, singles])
    grouped = forecast_net_demand(books, AS_OF, capacity, horizon_days=1, shock_sd=0.0)
    independent = forecast_net_demand(
        books, AS_OF, capacity, horizon_days=1, grouping="independent", shock_sd=0.0
    )
    shocked = forecast_net_demand(books, AS_OF, capacity, horizon_days=1)  # the default shock
    night = grouped.iloc[0]
    assert night["rooms_booked"] == 20 and night["rooms_in_group_units"] == 10
    assert night["expected_occupied"] == pytest.approx(12.0)
    assert night["expected_cancellations"] == pytest.approx(8.0)
    # grouped: 10 rooms all-or-nothing (0.6 shows) + Binomial(10, 0.6)
    pmf = occupied_pmf(np.array([10] + [1] * 10), np.full(11, 0.6))
    assert (night["occupied_95_low"], night["occupied_95_high"]) == (
        pmf_quantile(pmf, 0.025),
        pmf_quantile(pmf, 0.975),
    )
    wide = night["occupied_95_high"] - night["occupied_95_low"]
    narrow = independent.iloc[0]["occupied_95_high"] - independent.iloc[0]["occupied_95_low"]
    assert wide > narrow
    assert independent.iloc[0]["rooms_in_group_units"] == 0
    shocked_width = shocked.iloc[0]["occupied_95_high"] - shocked.iloc[0]["occupied_95_low"]
    assert shocked_width >= wide
    assert shocked.iloc[0]["expected_occupied"] == pytest.approx(12.0)


def test_headroom_keeps_the_walk_risk_under_the_configured_level() -> None:
    books = _books([0.2] * 20)
    capacity = {"City Hotel": (20, "configured")}
    night = forecast_net_demand(
        books, AS_OF, capacity, horizon_days=1, walk_risk=0.05, shock_sd=0.0
    ).iloc[0]
    pmf = occupied_pmf(np.ones(20, dtype=int), np.full(20, 0.8))
    headroom = night["headroom"]
    walk = pmf[20 - headroom + 1 :].sum()  # P(X + headroom > 20)
    walk_one_more = pmf[20 - headroom :].sum()
    assert headroom > 0 and walk <= 0.05 < walk_one_more


def test_the_normal_approximation_has_the_exact_mean() -> None:
    books = _books([0.1, 0.3, 0.5, 0.7, 0.9] * 8)
    capacity = {"City Hotel": (60, "configured")}
    exact = forecast_net_demand(books, AS_OF, capacity, horizon_days=1, shock_sd=0.0).iloc[0]
    normal = forecast_net_demand(
        books, AS_OF, capacity, horizon_days=1, method="normal", shock_sd=0.0
    ).iloc[0]
    assert normal["expected_occupied"] == pytest.approx(exact["expected_occupied"])
    assert abs(normal["occupied_80_low"] - exact["occupied_80_low"]) <= 1


def test_a_booking_occupies_each_night_of_its_stay_and_day_use_none() -> None:
    books = _books([0.1, 0.1]).assign(stays_in_weekend_nights=[1, 0], stays_in_week_nights=[2, 0])
    nights = night_rows(books)
    assert list(nights["night"]) == list(pd.date_range(AS_OF, periods=3))


def test_guests_in_house_are_on_the_books_and_capacity_is_the_busiest_night() -> None:
    cleaned = clean_bookings(make_bookings(3000)).cleaned
    books = on_the_books(cleaned, AS_OF)
    in_house = books[books["in_house"]]
    assert not in_house.empty and (in_house["arrival_date"] < pd.Timestamp(AS_OF)).all()
    assert in_house["is_canceled"].eq(0).all()
    capacity = estimate_capacity(cleaned, AS_OF, configured={"Resort Hotel": 200})
    assert capacity["Resort Hotel"] == (200, "configured")
    rooms, source = capacity["City Hotel"]
    assert source == CAPACITY_ESTIMATE_SOURCE
    history = night_rows(
        cleaned[(cleaned["is_canceled"] == 0) & (cleaned["hotel"] == "City Hotel")]
    )
    busiest = history[history["night"] < pd.Timestamp(AS_OF)].groupby("night").size().max()
    assert rooms == busiest
    realised = realised_occupancy(cleaned, AS_OF, pd.Timestamp("2017-06-01"))
    assert realised["night"].between(pd.Timestamp(AS_OF), pd.Timestamp("2017-05-31")).all()
    stayed = night_rows(books[books["is_canceled"].eq(0)])
    first = stayed[(stayed["night"] == pd.Timestamp(AS_OF)) & (stayed["hotel"] == "City Hotel")]
    first_realised = realised[
        (realised["night"] == pd.Timestamp(AS_OF)) & (realised["hotel"] == "City Hotel")
    ]
    assert first_realised["realised_occupied"].item() == len(first)


def test_a_shared_shock_makes_bookings_move_together_but_keeps_guests_in_house() -> None:
    independent = occupied_pmf(np.array([1, 1]), np.array([0.5, 0.5]))
    mild = occupied_pmf(np.array([1, 1]), np.array([0.5, 0.5]), shock_sd=0.5)
    strong = occupied_pmf(np.array([1, 1]), np.array([0.5, 0.5]), shock_sd=1.5)
    # symmetric around 0.5: both show as often as neither, more often the stronger the shock
    assert mild[0] == pytest.approx(mild[2]) and strong[0] == pytest.approx(strong[2])
    assert independent[2] == pytest.approx(0.25)
    assert 0.25 < mild[2] < strong[2]
    assert mild.sum() == pytest.approx(1.0)
    # E[s(e)^2] for e ~ N(0, 0.5^2), s the logistic function, by brute-force quadrature
    grid = np.linspace(-6, 6, 20001)
    density = np.exp(-(grid**2) / (2 * 0.25)) / np.sqrt(2 * np.pi * 0.25)
    both = np.trapezoid(density / (1 + np.exp(-grid)) ** 2, grid)
    assert mild[2] == pytest.approx(both, abs=1e-4)
    # a guest in house (shows with certainty) is not moved by the shock
    in_house = occupied_pmf(np.array([1, 1]), np.array([1.0, 0.5]), shock_sd=1.5)
    assert in_house[0] == 0 and in_house[1] == pytest.approx(0.5)


def test_every_shock_of_a_grid_gets_the_pmf_it_gets_alone() -> None:
    rooms, show = np.array([3, 1, 1, 2]), np.array([0.9, 0.5, 0.2, 1.0])
    shocks = [0.0, 0.5, 1.5]
    together = occupied_pmfs(rooms, show, shocks)
    assert together.shape == (3, 8)
    for row, shock in zip(together, shocks, strict=True):
        np.testing.assert_allclose(row, occupied_pmf(rooms, show, shock), atol=1e-15)
    books = _books([0.1, 0.4, 0.7])
    capacity = {"City Hotel": (5, "configured")}
    grid = forecast_shock_grid(books, AS_OF, capacity, horizon_days=1, shock_sds=shocks)
    for shock in shocks:
        alone = forecast_net_demand(books, AS_OF, capacity, horizon_days=1, shock_sd=shock)
        pd.testing.assert_frame_equal(
            grid[grid["shock_sd"] == shock].drop(columns="shock_sd").reset_index(drop=True), alone
        )


def _graded(
    shock_sd: float, nights: int, inside_80: int, inside_95: int, walked: int = 0
) -> pd.DataFrame:
    """Realised nights of 10 rooms in 12; the first `inside_80` (`inside_95`) inside the
    intervals, the first `walked` with a headroom that walks a guest (10 + 3 > 12)."""
    position = np.arange(nights)
    return pd.DataFrame(
        {
            "shock_sd": shock_sd,
            "realised_occupied": 10,
            "occupied_80_low": np.where(position < inside_80, 8, 11),
            "occupied_80_high": 12,
            "occupied_95_low": np.where(position < inside_95, 6, 11),
            "occupied_95_high": 14,
            "capacity": 12,
            "headroom": np.where(position < walked, 3, 1),
        }
    )


def test_the_shock_whose_intervals_came_nearest_nominal_is_chosen() -> None:
    # 0.5: 80 % and 95 % exactly; 0.25 too narrow; 1.0 holds every night
    graded = pd.concat(
        [_graded(0.25, 40, 24, 30), _graded(0.5, 40, 32, 38), _graded(1.0, 40, 40, 40)]
    )
    assert choose_shock(graded) == ShockChoice(intervals=0.5, headroom=0.5, nights=40)
    # a tie goes to the larger shock: the safer side
    tie = pd.concat([_graded(0.5, 40, 32, 38), _graded(1.0, 40, 32, 38)])
    assert choose_shock(tie).intervals == 1.0
    too_few = MIN_CHOICE_NIGHTS - 1
    assert choose_shock(_graded(0.5, too_few, too_few, too_few)) == ShockChoice(
        DEFAULT_SHOCK_SD, DEFAULT_SHOCK_SD, too_few
    )
    assert choose_shock(_graded(0.5, 0, 0, 0).iloc[:0], default=0.6) == ShockChoice(0.6, 0.6, 0)


def test_the_headroom_keeps_the_walk_risk_on_the_record_and_is_no_bolder_than_the_intervals() -> (
    None
):
    # intervals: 0.5; its headroom walked a guest on 4 of 40 nights (10 %), 1.0's on 2 (5 %)
    graded = pd.concat(
        [
            _graded(0.5, 40, 32, 38, walked=4),
            _graded(1.0, 40, 40, 40, walked=2),
            _graded(1.5, 40, 40, 40),
        ]
    )
    record = shock_record(graded)
    assert record.loc[0.5].tolist() == pytest.approx([0.8, 0.95, 0.1])
    assert record.loc[1.0].tolist() == pytest.approx([1.0, 1.0, 0.05])
    assert choose_shock(graded, walk_risk=0.05) == ShockChoice(0.5, 1.0, 40)
    assert choose_shock(graded, walk_risk=0.01) == ShockChoice(0.5, 1.5, 40)
    assert choose_shock(graded, walk_risk=0.10) == ShockChoice(0.5, 0.5, 40)
    # a smaller shock that walked no one does not make the headroom bolder than the intervals
    calm = pd.concat([_graded(0.25, 40, 24, 30), _graded(0.5, 40, 32, 38, walked=1)])
    assert choose_shock(calm, walk_risk=0.05) == ShockChoice(0.5, 0.5, 40)
    # none kept the risk: the widest shock of the grid
    stormy = pd.concat([_graded(0.5, 40, 32, 38, walked=9), _graded(1.0, 40, 40, 40, walked=9)])
    assert choose_shock(stormy, walk_risk=0.05) == ShockChoice(0.5, 1.0, 40)


def test_the_table_takes_each_hotels_intervals_and_headroom_from_their_own_shocks() -> None:
    books = pd.concat([_books([0.4] * 10), _books([0.3, 0.6], hotel="Resort Hotel")])
    capacity = {"City Hotel": (12, "configured"), "Resort Hotel": (3, "configured")}
    grid = forecast_shock_grid(books, AS_OF, capacity, horizon_days=1)
    choices = {"City Hotel": ShockChoice(0.0, 1.5, 40), "Resort Hotel": ShockChoice(0.5, 0.5, 40)}
    marked = mark_choices(grid, choices)
    assert marked.groupby("hotel")[list(CHOICE_FLAGS)].sum().to_numpy().tolist() == [[1, 1]] * 2
    taken = taken_from_grid(marked).set_index("hotel")
    for hotel, choice in choices.items():
        at = grid[grid["hotel"] == hotel].set_index("shock_sd")
        assert taken.loc[hotel, "occupied_80_high"] == at.loc[choice.intervals, "occupied_80_high"]
        assert taken.loc[hotel, "headroom"] == at.loc[choice.headroom, "headroom"]
    city = grid[grid["hotel"] == "City Hotel"].set_index("shock_sd")["headroom"]
    assert city[1.5] < city[0.0]  # the wider shock advises less: the test can tell them apart


def test_the_log_odds_shift_is_the_one_that_brought_the_bookings_outcomes() -> None:
    rng = np.random.default_rng(0)
    said = rng.uniform(0.05, 0.6, size=20_000)
    logit = np.log(said / (1 - said))
    for true_shift in (-0.8, 0.0, 0.5):
        cancelled = rng.random(said.size) < 1 / (1 + np.exp(-(logit + true_shift)))
        measured = log_odds_shift(said, cancelled)
        assert measured == pytest.approx(true_shift, abs=0.05)
        moved = 1 / (1 + np.exp(-(logit + measured)))
        assert moved.sum() == pytest.approx(cancelled.sum(), abs=1e-3)
    # none or all cancelled: no finite shift, the bound
    assert log_odds_shift(said[:10], np.zeros(10)) == -SHIFT_LIMIT
    assert log_odds_shift(said[:10], np.ones(10)) == SHIFT_LIMIT


def test_the_measured_shock_is_the_root_mean_square_of_the_shifts() -> None:
    assert measured_shock_sd([0.3, -0.4]) == pytest.approx(np.sqrt((0.09 + 0.16) / 2))
    assert measured_shock_sd([], default=0.6) == 0.6


def test_past_shifts_use_only_outcomes_known_on_the_date() -> None:
    """One forecast (2017-01-01) said 0.2 of every booking; January's bookings cancelled at 0.2,
    February's at 0.5. On 2017-02-01 only January is known; on 2017-03-01 both are."""
    rows = MIN_SHIFT_BOOKINGS * 2
    months = {"2017-01-10": 0.2, "2017-02-10": 0.5}
    scored = pd.concat(
        pd.DataFrame(
            {
                "as_of": pd.Timestamp("2017-01-01"),
                "hotel": "City Hotel",
                "arrival_date": pd.Timestamp(arrival),
                "cancel_probability": 0.2,
                "is_canceled": np.arange(rows) < rate * rows,
            }
        )
        for arrival, rate in months.items()
    )
    assert past_shifts(scored, date(2017, 1, 1)) == []  # the forecast's own day: nothing known
    (january,) = past_shifts(scored, date(2017, 2, 1))
    assert january == pytest.approx(0.0, abs=1e-5)
    january, february = past_shifts(scored, date(2017, 3, 1))
    assert february == pytest.approx(np.log(0.5 / 0.5) - np.log(0.2 / 0.8), abs=1e-5)
    # a month with fewer bookings than MIN_SHIFT_BOOKINGS is no measurement
    assert past_shifts(scored.iloc[: MIN_SHIFT_BOOKINGS - 1], date(2017, 3, 1)) == []
