"""Net demand per hotel and night: rooms on the books, expected cancellations, expected rooms
occupied with 80 % and 95 % intervals, and the overbooking headroom under a walk risk.

A booking occupies one room on each night of its stay: arrival_date .. arrival_date + stays - 1
(a day-use booking, zero nights, occupies none). The bookings "on the books" on an as-of date are
the open ones the platform scores (core/cleaning.py `open_bookings`) and the guests already in
house (arrived, not cancelled, still staying): those occupy their rooms with certainty.
Bookings made after the as-of date are out of scope: the table forecasts what is on the books.

Rooms occupied on a night is a sum of independent units, each occupying `rooms` rooms with
probability 1 - p (p its cancellation probability). A booking is a unit on its own, except that
identical rows (every source column alike but the booking id and the outcome: a group booked
together by one agent at one price) cancel together in the real data (97 % of such groups share
one outcome), so such a group is one unit of several rooms. The distribution is the exact
Poisson-binomial generalised to unit weights, by convolution; docs/design.md ("Issue 16") says
why this grouping and the exact method, from the replay's coverage.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from numpy.polynomial.hermite_e import hermegauss
from scipy.linalg import block_diag
from scipy.optimize import brentq
from scipy.special import expit
from scipy.stats import norm

from booking_platform.core import warehouse
from booking_platform.core.cleaning import open_bookings
from booking_platform.core.source import FEATURE_SOURCE_COLUMNS
from booking_platform.core.tables import NET_DEMAND, NET_DEMAND_REALISED, NET_DEMAND_SHOCK_GRID

DEFAULT_HORIZON_DAYS = 120
DEFAULT_WALK_RISK = 0.05
INTERVAL_LEVELS = (0.80, 0.95)
# What makes bookings one unit that cancels together (see the module docstring).
GROUPINGS: dict[str, tuple[str, ...]] = {
    "independent": ("booking_id",),
    "identical_rows": tuple(FEATURE_SOURCE_COLUMNS),
    "same_stay_agent_price": (
        "hotel",
        "arrival_date",
        "stays_in_weekend_nights",
        "stays_in_week_nights",
        "agent",
        "adr",
    ),
}
DEFAULT_GROUPING = "identical_rows"
METHODS = ("exact", "normal")
DEFAULT_METHOD = "exact"
# The night's shared shock (log-odds sd). Each forecast is made at every SHOCK_GRID value; the
# table takes, per hotel, the ones its earlier forecasts' realised nights choose (choose_shock),
# and DEFAULT_SHOCK_SD (the replay's choice on its first months, docs/design.md) until
# MIN_CHOICE_NIGHTS such nights exist.
DEFAULT_SHOCK_SD = 0.75
SHOCK_GRID = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5)
MIN_CHOICE_NIGHTS = 30
SHOCK_NODES = 9
MIN_SHIFT_BOOKINGS = 100  # fewer say more about chance than about a shared shock
SHIFT_LIMIT = 10.0  # log-odds: beyond it every probability is 0 or 1 in floating point
CAPACITY_ESTIMATE_SOURCE = "estimate: most rooms occupied on any night in the history"
COLUMNS = [
    "hotel",
    "night",
    "rooms_booked",
    "rooms_in_group_units",
    "expected_cancellations",
    "expected_occupied",
    "occupied_80_low",
    "occupied_80_high",
    "occupied_95_low",
    "occupied_95_high",
    "capacity",
    "capacity_source",
    "walk_risk",
    "headroom",
]


STAY_COLUMNS = ("stays_in_weekend_nights", "stays_in_week_nights")


def stays(bookings: pd.DataFrame) -> np.ndarray:
    return (bookings["stays_in_weekend_nights"] + bookings["stays_in_week_nights"]).to_numpy(
        dtype="int64"
    )


def night_rows(bookings: pd.DataFrame) -> pd.DataFrame:
    """One row per booking and night it occupies: the booking's columns plus `night`."""
    nights = stays(bookings)
    positions = np.repeat(np.arange(len(bookings)), nights)
    # the n-th night of each booking: 0, 1, .. stays - 1
    offsets = np.arange(len(positions)) - np.repeat(np.cumsum(nights) - nights, nights)
    exploded = bookings.iloc[positions].reset_index(drop=True)
    exploded["night"] = exploded["arrival_date"].to_numpy() + offsets.astype("timedelta64[D]")
    return exploded


def on_the_books(cleaned: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """The bookings holding rooms on nights from `as_of` on, as known on `as_of`: open bookings
    (`in_house` False) and guests who arrived before it, did not cancel and are still staying
    (`in_house` True). Applied to a later export, the same rows, now with final outcomes."""
    start = pd.Timestamp(as_of)
    upcoming = open_bookings(cleaned, as_of)
    departure = cleaned["arrival_date"] + pd.to_timedelta(stays(cleaned), unit="D")
    staying = (
        (cleaned["arrival_date"] < start)
        & (departure > start)
        & cleaned["is_canceled"].eq(0).fillna(False)
    )
    return pd.concat(
        [upcoming.assign(in_house=False), cleaned[staying].assign(in_house=True)],
        ignore_index=True,
    )


def occupied_pmfs(
    rooms: np.ndarray, show_probability: np.ndarray, shock_sds: Sequence[float]
) -> np.ndarray:
    """One pmf per shock sd (rows): P(rooms occupied = k), k = 0 .. rooms.sum(). Unit i occupies
    rooms[i] rooms with probability show_probability[i], independently of the other units
    (exact convolution).

    With a shock sd > 0, the units share one shock: every unit's log-odds of showing move
    together by e ~ Normal(0, sd) (a night whose bookings all cancel more, or less, than the
    model says); the pmf is the mixture over e (Gauss-Hermite, SHOCK_NODES points). Every sd's
    mixture components go through one convolution pass."""
    show_probability = np.asarray(show_probability, dtype=float)
    nodes, weights = hermegauss(SHOCK_NODES)
    # each sd's mixture: (log-odds shifts, their weights); sd 0 is the model's own pmf
    mixtures = [
        ([0.0], [1.0]) if sd == 0 else (sd * nodes, weights / weights.sum()) for sd in shock_sds
    ]
    stacked = np.stack([_shifted(show_probability, s) for shifts, _ in mixtures for s in shifts])
    mixing = block_diag(*(np.atleast_2d(share) for _, share in mixtures))
    pmf = np.zeros((len(stacked), int(rooms.sum()) + 1))
    pmf[:, 0] = 1.0
    filled = 0
    for position, weight in enumerate(rooms.astype("int64")):
        show = stacked[:, position : position + 1]
        shifted = pmf[:, : filled + 1] * show
        pmf[:, : filled + 1] *= 1.0 - show
        pmf[:, weight : weight + filled + 1] += shifted
        filled += weight
    return mixing @ pmf


def occupied_pmf(
    rooms: np.ndarray, show_probability: np.ndarray, shock_sd: float = 0.0
) -> np.ndarray:
    """occupied_pmfs for one shock sd."""
    return occupied_pmfs(rooms, show_probability, [shock_sd])[0]


def _shifted(probability: np.ndarray, log_odds: float) -> np.ndarray:
    """Probabilities moved by `log_odds`; certain ones (0 or 1: guests in house) stay."""
    inside = (probability > 0) & (probability < 1)
    clipped = np.clip(probability, 1e-12, 1 - 1e-12)
    moved = expit(np.log(clipped / (1 - clipped)) + log_odds)
    return np.where(inside, moved, probability)


def log_odds_shift(cancel_probability: np.ndarray, cancelled: np.ndarray) -> float:
    """How far a set of bookings, as a whole, cancelled from what was said of them: the one
    shift of every booking's log-odds that makes the expected cancellations equal the realised
    ones. Bounded to +-SHIFT_LIMIT (all or none cancelled has no finite answer)."""
    probability = np.asarray(cancel_probability, dtype=float)
    realised = float(np.asarray(cancelled).sum())

    def excess(shift: float) -> float:
        return float(_shifted(probability, shift).sum()) - realised

    if excess(-SHIFT_LIMIT) >= 0:
        return -SHIFT_LIMIT
    if excess(SHIFT_LIMIT) <= 0:
        return SHIFT_LIMIT
    return float(brentq(excess, -SHIFT_LIMIT, SHIFT_LIMIT, xtol=1e-6))


def measured_shock_sd(shifts: Sequence[float], default: float = DEFAULT_SHOCK_SD) -> float:
    """The shared shock's sd as the platform's own past forecasts measured it: the root mean
    square of their log-odds shifts (log_odds_shift, one per past forecast and arrival month
    whose outcomes are all known), or `default` before there is any."""
    shifts = np.asarray(shifts, dtype=float)
    return float(np.sqrt(np.mean(shifts**2))) if len(shifts) else default


def past_shifts(scored: pd.DataFrame, as_of: date) -> list[float]:
    """The log-odds shift of each past forecast's bookings per hotel and arrival month whose
    outcomes are all known on `as_of` (arrived before it), with MIN_SHIFT_BOOKINGS or more.

    `scored`: the bookings past forecasts scored, one row per forecast and booking (`as_of` of
    the forecast, hotel, arrival_date, cancel_probability, is_canceled: the final outcome)."""
    start = pd.Timestamp(as_of)
    known = scored[(scored["as_of"] < start) & (scored["arrival_date"] < start)]
    months = known["arrival_date"].dt.to_period("M")
    return [
        log_odds_shift(group["cancel_probability"].to_numpy(), group["is_canceled"].to_numpy())
        for _, group in known.groupby(["as_of", "hotel", months], sort=True)
        if len(group) >= MIN_SHIFT_BOOKINGS
    ]


def pmf_quantile(pmf: np.ndarray, q: float) -> int:
    """The smallest k with P(X <= k) >= q."""
    cdf = np.cumsum(pmf)
    return int(min(np.searchsorted(cdf, q - 1e-12), len(pmf) - 1))


def _exact_night(
    rooms: np.ndarray,
    show: np.ndarray,
    levels: Sequence[float],
    walk_risk: float,
    shock_sds: Sequence[float],
) -> list[tuple[list[int], int]]:
    """Per shock sd: the interval bounds per level and the (1 - walk_risk) quantile."""
    answers = []
    for pmf in occupied_pmfs(rooms, show, shock_sds):
        bounds = []
        for level in levels:
            bounds += [pmf_quantile(pmf, (1 - level) / 2), pmf_quantile(pmf, (1 + level) / 2)]
        answers.append((bounds, pmf_quantile(pmf, 1 - walk_risk)))
    return answers


def _normal_night(
    rooms: np.ndarray,
    show: np.ndarray,
    levels: Sequence[float],
    walk_risk: float,
    shock_sds: Sequence[float],
) -> list[tuple[list[int], int]]:
    """The normal approximation with the same mean and variance (the shared shock's share by
    the delta method), rounded outwards to whole rooms."""
    total = int(rooms.sum())
    mean = float((rooms * show).sum())
    slope = float((rooms * show * (1 - show)).sum())  # d mean / d log-odds
    answers = []
    for shock_sd in shock_sds:
        sd = float(np.sqrt((rooms**2 * show * (1 - show)).sum() + (slope * shock_sd) ** 2))
        bounds = []
        for level in levels:
            z = norm.ppf((1 + level) / 2)
            bounds += [
                max(0, int(np.floor(mean - z * sd))),
                min(total, int(np.ceil(mean + z * sd))),
            ]
        answers.append((bounds, min(total, int(np.ceil(mean + norm.ppf(1 - walk_risk) * sd)))))
    return answers


def cancellation_units(bookings: pd.DataFrame, grouping: str = DEFAULT_GROUPING) -> np.ndarray:
    """The unit each booking cancels or stays with, as an integer per row: bookings alike in
    GROUPINGS[grouping]'s columns share one (by default identical rows, see the docstring)."""
    if grouping not in GROUPINGS:
        raise ValueError(f"unknown grouping {grouping!r}: one of {sorted(GROUPINGS)}")
    columns = list(GROUPINGS[grouping])
    return bookings.groupby(columns, dropna=False, sort=False).ngroup().to_numpy()


def occupancy_units(books: pd.DataFrame, grouping: str = DEFAULT_GROUPING) -> pd.DataFrame:
    """One row per hotel, night and unit: `rooms` and the unit's `show_probability`.

    `books` has the on-the-books columns and `cancel_probability` (0 for guests in house)."""
    keyed = books.assign(unit=cancellation_units(books, grouping))
    nights = night_rows(
        keyed[["hotel", "arrival_date", *STAY_COLUMNS, "unit", "cancel_probability"]]
    )
    return (
        nights.groupby(["hotel", "night", "unit"], sort=True)
        .agg(rooms=("unit", "size"), cancel_probability=("cancel_probability", "mean"))
        .reset_index()
        .assign(show_probability=lambda f: 1.0 - f["cancel_probability"])
        .drop(columns="cancel_probability")
    )


def forecast_shock_grid(
    books: pd.DataFrame,
    as_of: date,
    capacity: dict[str, tuple[int, str]],
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    walk_risk: float = DEFAULT_WALK_RISK,
    grouping: str = DEFAULT_GROUPING,
    method: str = DEFAULT_METHOD,
    shock_sds: Sequence[float] = SHOCK_GRID,
) -> pd.DataFrame:
    """forecast_net_demand at every shock sd of `shock_sds`: its COLUMNS plus `shock_sd`, one
    row per hotel, night and shock sd."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: one of {METHODS}")
    if not 0 < walk_risk < 1:
        raise ValueError(f"walk_risk must be between 0 and 1, got {walk_risk}")
    night_of = _night_function(method)
    start = pd.Timestamp(as_of)
    nights = pd.date_range(start, periods=horizon_days, freq="D")
    units = occupancy_units(books, grouping)
    units = units[units["night"].isin(nights)]
    by_night = {key: group for key, group in units.groupby(["hotel", "night"], sort=False)}
    rows = []
    for hotel, (rooms_capacity, source) in capacity.items():
        for night in nights:
            group = by_night.get((hotel, night))
            rooms = np.zeros(0, dtype="int64") if group is None else group["rooms"].to_numpy()
            show = np.zeros(0) if group is None else group["show_probability"].to_numpy()
            expected = float((rooms * show).sum())
            answers = night_of(rooms, show, INTERVAL_LEVELS, walk_risk, shock_sds)
            for shock_sd, (bounds, walk_quantile) in zip(shock_sds, answers, strict=True):
                rows.append(
                    [
                        hotel,
                        night,
                        int(rooms.sum()),  # one room per booking, as in the export
                        int(rooms[rooms > 1].sum()),
                        float(rooms.sum()) - expected,
                        expected,
                        *bounds,
                        int(rooms_capacity),
                        source,
                        walk_risk,
                        max(0, int(rooms_capacity) - walk_quantile),
                        float(shock_sd),
                    ]
                )
    return pd.DataFrame(rows, columns=[*COLUMNS, "shock_sd"])


def forecast_net_demand(
    books: pd.DataFrame,
    as_of: date,
    capacity: dict[str, tuple[int, str]],
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    walk_risk: float = DEFAULT_WALK_RISK,
    grouping: str = DEFAULT_GROUPING,
    method: str = DEFAULT_METHOD,
    shock_sd: float = DEFAULT_SHOCK_SD,
) -> pd.DataFrame:
    """One row per hotel of `capacity` and night of the horizon (COLUMNS).

    `books`: on_the_books rows with `cancel_probability` (0 for guests in house). `capacity`:
    hotel -> (rooms, where the figure comes from). The headroom is how many more rooms can be
    sold for the night so that P(rooms occupied + headroom > capacity) <= walk_risk, counting
    every extra room sold as arriving (a conservative reading: later bookings cancel too).
    """
    grid = forecast_shock_grid(
        books, as_of, capacity, horizon_days, walk_risk, grouping, method, [shock_sd]
    )
    return grid.drop(columns="shock_sd")


@dataclass(frozen=True)
class ShockChoice:
    """The shared shock sd one hotel's forecast takes (choose_shock)."""

    intervals: float  # for its 80 % and 95 % intervals
    headroom: float  # for its headroom
    nights: int  # realised nights of earlier forecasts it was chosen on


def walked(nights: pd.DataFrame, suffix: str = "") -> pd.Series:
    """Whether selling a night's advised headroom would have put more guests than rooms."""
    return nights["realised_occupied"] + nights[f"headroom{suffix}"] > nights["capacity"]


def shock_record(graded: pd.DataFrame) -> pd.DataFrame:
    """Per shock sd, how earlier forecasts did on their realised nights (`graded`, as
    choose_shock reads it): the share of nights inside the 80 % and the 95 % intervals
    (`covered_80`, `covered_95`) and the share its headroom walked a guest on (`walked`)."""
    realised = graded["realised_occupied"]
    record = pd.DataFrame(
        {
            f"covered_{level}": realised.between(
                graded[f"occupied_{level}_low"], graded[f"occupied_{level}_high"]
            )
            for level in ("80", "95")
        }
    ).assign(walked=walked(graded))
    return record.groupby(graded["shock_sd"]).mean()


def choose_shock(
    graded: pd.DataFrame,
    walk_risk: float = DEFAULT_WALK_RISK,
    default: float = DEFAULT_SHOCK_SD,
) -> ShockChoice:
    """The shock sds a forecast takes, chosen on realised nights of earlier forecasts:
    - intervals: the sd whose intervals came nearest nominal (the sum of the 80 % and 95 %
      gaps; on a tie the larger sd, the safer side);
    - headroom: the larger of that sd and the smallest whose headroom walked a guest on no more
      than `walk_risk` of the nights (the largest sd when none did), so that the headroom keeps
      the walk risk on the record and is never bolder than the intervals;
    both `default` with fewer than MIN_CHOICE_NIGHTS nights.

    `graded`: one hotel's rows of earlier forecasts' grids (forecast_shock_grid) on nights that
    have passed, with `realised_occupied`. The caller keeps out what was not known yet."""
    nights = int(graded.groupby("shock_sd").size().min()) if len(graded) else 0
    if nights < MIN_CHOICE_NIGHTS:
        return ShockChoice(default, default, nights)
    record = shock_record(graded)
    gap = (record["covered_80"] - 0.80).abs() + (record["covered_95"] - 0.95).abs()
    intervals = float(gap[::-1].idxmin())
    within = record.index[record["walked"] <= walk_risk]
    safe = float(within.min()) if len(within) else float(record.index.max())
    return ShockChoice(intervals, max(intervals, safe), nights)


CHOICE_FLAGS = ("intervals_in_net_demand", "headroom_in_net_demand")
SHOCK_COLUMNS = ("intervals_shock_sd", "headroom_shock_sd")  # read_nights' names for them


def mark_choices(grid: pd.DataFrame, choices: dict[str, ShockChoice]) -> pd.DataFrame:
    """`grid` with CHOICE_FLAGS: whether a row's shock is the one chosen for its hotel's
    intervals, and for its headroom."""
    marked = grid.copy()
    for flag, use in zip(CHOICE_FLAGS, ("intervals", "headroom"), strict=True):
        chosen = grid["hotel"].map({hotel: getattr(c, use) for hotel, c in choices.items()})
        marked[flag] = grid["shock_sd"] == chosen
    return marked


def taken_from_grid(marked: pd.DataFrame) -> pd.DataFrame:
    """One forecast's nights as the table holds them, from its grid marked by mark_choices:
    per hotel, the rows of the shock chosen for the intervals, with the headroom of the shock
    chosen for the headroom; every column but shock_sd and the flags."""
    keys = ["hotel", "night"]
    headroom = marked.loc[marked[CHOICE_FLAGS[1]]].set_index(keys)["headroom"]
    taken = marked.loc[marked[CHOICE_FLAGS[0]]].drop(columns=["shock_sd", *CHOICE_FLAGS])
    taken = taken.reset_index(drop=True)
    taken["headroom"] = headroom.reindex(pd.MultiIndex.from_frame(taken[keys])).to_numpy()
    return taken


def _night_function(method: str) -> Callable[..., list[tuple[list[int], int]]]:
    return _exact_night if method == "exact" else _normal_night


def occupied_nights(bookings: pd.DataFrame, before: pd.Timestamp) -> pd.DataFrame:
    """Rooms occupied per hotel and night before `before` by the bookings that did not cancel
    (final outcomes: a no-show is a cancellation in the export and occupies no room)."""
    stayed = bookings[bookings["is_canceled"].eq(0).fillna(False).to_numpy()]
    nights = night_rows(stayed[["hotel", "arrival_date", *STAY_COLUMNS]])
    nights = nights[nights["night"] < before]
    return nights.groupby(["hotel", "night"]).size().rename("occupied").reset_index()


def estimate_capacity(
    cleaned: pd.DataFrame, as_of: date, configured: dict[str, int] | None = None
) -> dict[str, tuple[int, str]]:
    """Rooms per hotel: the configured figure, else the most rooms occupied on any night before
    `as_of` (an estimate: the export holds no room inventory)."""
    configured = configured or {}
    history = cleaned[cleaned["arrival_date"] < pd.Timestamp(as_of)]
    busiest = occupied_nights(history, pd.Timestamp(as_of)).groupby("hotel")["occupied"].max()
    hotels = sorted(set(busiest.index) | set(configured))
    return {
        hotel: (int(configured[hotel]), "configured")
        if hotel in configured
        else (int(busiest[hotel]), CAPACITY_ESTIMATE_SOURCE)
        for hotel in hotels
    }


def realised_occupancy(
    final: pd.DataFrame, as_of: date, known_before: pd.Timestamp
) -> pd.DataFrame:
    """Rooms occupied per hotel and night (from `as_of`, before `known_before`, when every
    outcome is final) by the bookings that were on the books on `as_of`: what the forecast made
    that day is graded against. `final`: a later export (cleaned)."""
    occupied = occupied_nights(on_the_books(final, as_of), known_before)
    return occupied[occupied["night"] >= pd.Timestamp(as_of)].rename(
        columns={"occupied": "realised_occupied"}
    )


def graded_grids(connection: Any, as_of: date) -> pd.DataFrame:
    """The stored grids (table net_demand_shock_grid) of forecasts made before `as_of`, on their
    nights that had passed by then, with the rooms those nights realised: what a forecast on
    `as_of` may choose its shocks on (choose_shock). `connection`: DuckDB or PostgreSQL."""
    if not (
        warehouse.table_exists(connection, NET_DEMAND_SHOCK_GRID.name)
        and warehouse.table_exists(connection, NET_DEMAND_REALISED.name)
    ):
        return pd.DataFrame(columns=["hotel", "shock_sd", "realised_occupied"])
    return connection.execute(
        f"SELECT grid.*, realised.realised_occupied FROM {NET_DEMAND_SHOCK_GRID.name} grid "
        f"JOIN {NET_DEMAND_REALISED.name} realised USING (as_of, hotel, night) "
        "WHERE grid.as_of < ? AND grid.night < ? ORDER BY grid.as_of, hotel, night, shock_sd",
        [as_of, as_of],
    ).df()


def read_nights(
    connection: Any,  # a warehouse connection: DuckDB or PostgreSQL (core/warehouse.py)
    hotel: str,
    start: date,
    end: date,
    as_of: date | None = None,
) -> tuple[date, pd.DataFrame]:
    """The nights `start` .. `end` of one hotel from the net_demand table, with the realised
    rooms where known: from the forecast as of `as_of`, by default the newest made on or before
    `start` (the forecast as it stood before the first night asked), and the shared shock sds
    its intervals and headroom took (SHOCK_COLUMNS). Raises LookupError with a one-line reason
    when there is none."""
    if not warehouse.table_exists(connection, NET_DEMAND.name):
        raise LookupError(f"no {NET_DEMAND.name} table yet: materialise net_demand (make run)")
    if as_of is None:
        (as_of,) = connection.execute(
            f"SELECT max(as_of) FROM {NET_DEMAND.name} WHERE as_of <= ?", [start]
        ).fetchone()
        if as_of is None:
            raise LookupError(f"no net demand forecast made on or before {start}")
        as_of = pd.Timestamp(as_of).date()
    nights = warehouse.read_slice(connection, NET_DEMAND.name, as_of)
    if nights.empty:
        raise LookupError(f"no net demand forecast as of {as_of}")
    hotels = sorted(nights["hotel"].unique())
    if hotel not in hotels:
        raise LookupError(f"unknown hotel {hotel!r}: one of {', '.join(hotels)}")
    nights["night"] = pd.to_datetime(nights["night"])
    if warehouse.table_exists(connection, NET_DEMAND_REALISED.name):
        realised = warehouse.read_slice(connection, NET_DEMAND_REALISED.name, as_of)
        realised["night"] = pd.to_datetime(realised["night"])
        nights = nights.merge(realised, on=["hotel", "night"], how="left")
    else:
        nights["realised_occupied"] = np.nan
    if warehouse.table_exists(connection, NET_DEMAND_SHOCK_GRID.name):
        grid = warehouse.read_slice(connection, NET_DEMAND_SHOCK_GRID.name, as_of)
        for flag, column in zip(CHOICE_FLAGS, SHOCK_COLUMNS, strict=True):
            shocks = grid[grid[flag]].groupby("hotel")["shock_sd"].first()
            nights[column] = nights["hotel"].map(shocks)
    else:  # a forecast made before the grid was kept
        nights[list(SHOCK_COLUMNS)] = np.nan
    chosen = nights[
        (nights["hotel"] == hotel) & nights["night"].between(pd.Timestamp(start), pd.Timestamp(end))
    ]
    return as_of, chosen.sort_values("night").reset_index(drop=True)
