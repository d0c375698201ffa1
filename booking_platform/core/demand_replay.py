"""The net-demand replay: forecast every first of a month as if live, grade it once the nights
have passed, beside what a revenue manager would do without a model.

On each first of a month M a PMS snapshot is cut from the export (core/snapshots.py), a model is
trained on it (core/training.py, the `monthly` policy of the backtest) and scores the open
bookings (core/scoring.py); core/net_demand.py turns the scores into nights. The export's final
outcomes then give, for every night of the horizon before the export ends, the rooms the same
bookings really occupied. Two baselines forecast the same rooms without a model:

- lead-time band: the cancellation rate, per hotel and band of days to arrival, of the bookings
  that were open on the firsts of the twelve months before M (and have arrived by M), applied to
  each booking on the books by its days to arrival;
- last year: the same night 364 days earlier (same weekday), its realised share of the rooms that
  were on the books 364 days before M, times the rooms on the books now.

Every forecast is graded on the same rooms (bookings made after M are out of scope for all).
The CBPE estimate of each arrival month's ROC AUC is graded on the same bookings' outcomes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from booking_platform.core.cleaning import clean_bookings, open_bookings
from booking_platform.core.features import build_feature_set
from booking_platform.core.metrics import calibration_error
from booking_platform.core.net_demand import (
    DEFAULT_GROUPING,
    DEFAULT_HORIZON_DAYS,
    DEFAULT_METHOD,
    DEFAULT_SHOCK_SD,
    DEFAULT_WALK_RISK,
    SHOCK_GRID,
    cancellation_units,
    choose_shock,
    estimate_capacity,
    forecast_net_demand,
    forecast_shock_grid,
    mark_choices,
    measured_shock_sd,
    night_rows,
    on_the_books,
    past_shifts,
    realised_occupancy,
    taken_from_grid,
    walked,
)
from booking_platform.core.performance_estimation import estimate_by_arrival_month
from booking_platform.core.scoring import score_bookings
from booking_platform.core.snapshots import take_snapshot
from booking_platform.core.training import SEED, train_and_validate

# (grouping, method, shared shock sd) read side by side; the first is the table's default
VARIANTS: tuple[tuple[str, str, float], ...] = (
    (DEFAULT_GROUPING, DEFAULT_METHOD, DEFAULT_SHOCK_SD),
    ("independent", "exact", 0.0),
    ("same_stay_agent_price", "exact", 0.0),
    *((DEFAULT_GROUPING, "exact", sd) for sd in SHOCK_GRID if sd != DEFAULT_SHOCK_SD),
    (DEFAULT_GROUPING, "normal", DEFAULT_SHOCK_SD),
)
# the shock is chosen on the replay's months before this date and read on the later ones
FIT_BEFORE = date(2017, 1, 1)


# what each variant adds to a replay's nights, under its suffix
VARIANT_COLUMNS = (
    "occupied_80_low",
    "occupied_80_high",
    "occupied_95_low",
    "occupied_95_high",
    "headroom",
)
# the table's grouping and method with the shock its own past forecasts measured
# (net_demand.past_shifts), read beside the fixed ones
MEASURED = f"{DEFAULT_GROUPING}/{DEFAULT_METHOD}/shock measured"
MEASURED_SUFFIX = "__measured"


def variant_name(grouping: str, method: str, shock_sd: float) -> str:
    return f"{grouping}/{method}/shock {shock_sd:g}"


def variant_columns(nights: pd.DataFrame) -> dict[str, str]:
    """Each variant's name -> the suffix of its columns in a replay's nights."""
    named = {variant_name(*v): "" if i == 0 else f"__{i}" for i, v in enumerate(VARIANTS)}
    if f"headroom{MEASURED_SUFFIX}" in nights:
        named[MEASURED] = MEASURED_SUFFIX
    return named


LEAD_BAND_EDGES = (0, 8, 15, 31, 61, 91, 121, 181, 271, 100_000)  # days to arrival
SAME_NIGHT_LAST_YEAR = timedelta(days=364)  # 52 weeks: the same weekday


@dataclass(frozen=True)
class MonthForecast:
    as_of: date
    nights: pd.DataFrame  # hotel, night, forecasts, baselines, realised
    estimates: pd.DataFrame  # arrival month: estimated and realised ROC AUC / calibration
    # the open bookings' probabilities, cancellation units and final outcomes (past_shifts)
    scored: pd.DataFrame


def _band(days: pd.Series) -> np.ndarray:
    return np.searchsorted(LEAD_BAND_EDGES, days.to_numpy(), side="right") - 1


def lead_band_probabilities(final: pd.DataFrame, books: pd.DataFrame, as_of: date) -> np.ndarray:
    """Baseline cancellation probability of each booking on the books (0 in house)."""
    start = pd.Timestamp(as_of)
    asked = []
    for months_back in range(1, 13):
        day = start - pd.DateOffset(months=months_back)
        rows = open_bookings(final, day.date())
        rows = rows[rows["arrival_date"] < start]  # outcomes known on the as-of date
        asked.append(rows.assign(band=_band((rows["arrival_date"] - day).dt.days)))
    history = pd.concat(asked)
    by_band = history.groupby(["hotel", "band"])["is_canceled"].mean()
    by_hotel = history.groupby("hotel")["is_canceled"].mean()
    keys = pd.MultiIndex.from_arrays(
        [books["hotel"], _band((books["arrival_date"] - start).dt.days)]
    )
    rates = by_band.reindex(keys).to_numpy(dtype=float)
    rates = np.where(np.isnan(rates), books["hotel"].map(by_hotel).to_numpy(dtype=float), rates)
    return np.where(books["in_house"].to_numpy(), 0.0, rates)


def _booked_and_occupied(books: pd.DataFrame) -> pd.DataFrame:
    nights = night_rows(
        books[
            [
                "hotel",
                "arrival_date",
                "stays_in_weekend_nights",
                "stays_in_week_nights",
                "is_canceled",
            ]
        ]
    )
    nights["occupied"] = nights["is_canceled"].eq(0).astype(int)
    return nights.groupby(["hotel", "night"]).agg(
        booked=("occupied", "size"), occupied=("occupied", "sum")
    )


def last_year_forecast(final: pd.DataFrame, booked_now: pd.DataFrame, as_of: date) -> np.ndarray:
    """Baseline expected rooms occupied per row of `booked_now` (hotel, night, rooms_booked)."""
    last_year = as_of - SAME_NIGHT_LAST_YEAR
    then = _booked_and_occupied(on_the_books(final, last_year))
    keys = pd.MultiIndex.from_arrays(
        [booked_now["hotel"], booked_now["night"] - SAME_NIGHT_LAST_YEAR]
    )
    same_night = then.reindex(keys)
    window = then[then.index.get_level_values("night") >= pd.Timestamp(last_year)]
    pooled = window.groupby(level="hotel").sum()
    pooled_share = booked_now["hotel"].map(pooled["occupied"] / pooled["booked"])
    share = np.where(
        same_night["booked"].fillna(0).to_numpy() > 0,
        (same_night["occupied"] / same_night["booked"]).to_numpy(dtype=float),
        pooled_share.to_numpy(dtype=float),
    )
    return booked_now["rooms_booked"].to_numpy() * share


def _expected_occupied(books: pd.DataFrame, probability: np.ndarray) -> pd.Series:
    nights = night_rows(
        books[["hotel", "arrival_date", "stays_in_weekend_nights", "stays_in_week_nights"]].assign(
            show=1.0 - probability
        )
    )
    return nights.groupby(["hotel", "night"])["show"].sum()


def _realised_estimates(labelled: pd.DataFrame, end: pd.Timestamp) -> pd.DataFrame:
    """Per arrival month of the scored open bookings (`labelled` with their final outcomes): the
    CBPE estimate and, where every outcome is known (arrivals up to `end`), the realised ROC AUC
    and calibration error on the same bookings."""
    estimates = estimate_by_arrival_month(labelled, labelled["unit"].to_numpy())
    realised = []
    for month, group in labelled.groupby(labelled["arrival_date"].dt.strftime("%Y-%m")):
        complete = pd.Timestamp(f"{month}-01") + pd.offsets.MonthEnd(0) <= end
        labels = group["is_canceled"].to_numpy(dtype=int)
        proba = group["cancel_probability"].to_numpy()
        known = complete and len(np.unique(labels)) == 2
        realised.append(
            {
                "arrival_month": month,
                "realised_roc_auc": float(roc_auc_score(labels, proba)) if known else np.nan,
                "realised_calibration_error": calibration_error(labels, proba) if known else np.nan,
                "realised_cancel_rate": float(labels.mean()) if complete else np.nan,
            }
        )
    return estimates.merge(pd.DataFrame(realised), on="arrival_month", how="left")


def replay_month(
    raw: pd.DataFrame,
    final: pd.DataFrame,
    as_of: date,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    walk_risk: float = DEFAULT_WALK_RISK,
    capacity: dict[str, int] | None = None,
    seed: int = SEED,
    measured_shock: float | None = None,
) -> MonthForecast:
    """Forecast as of `as_of` from its snapshot of `raw`; grade on `final` (cleaned export).

    `measured_shock`: also forecast with this shock sd (columns suffixed MEASURED_SUFFIX)."""
    snapshot = clean_bookings(take_snapshot(raw, as_of), as_of).cleaned
    feature_set = build_feature_set(snapshot, as_of)
    history, _ = feature_set.part("history")
    model = train_and_validate(history, feature_set.builder, as_of, seed=seed).model
    open_rows, _ = feature_set.part("open")
    scores = score_bookings(model, open_rows, f"replay {as_of}")
    probability = dict(zip(scores["booking_id"], scores["cancel_probability"], strict=True))
    books = on_the_books(snapshot, as_of)
    books["cancel_probability"] = np.where(
        books["in_house"], 0.0, books["booking_id"].map(probability)
    )
    hotel_capacity = estimate_capacity(snapshot, as_of, capacity)
    nights = None
    variants = {f"__{index}": variant for index, variant in enumerate(VARIANTS)}
    if measured_shock is not None:
        variants[MEASURED_SUFFIX] = (DEFAULT_GROUPING, DEFAULT_METHOD, measured_shock)
    grid = forecast_shock_grid(books, as_of, hotel_capacity, horizon_days, walk_risk)
    for suffix, variant in variants.items():
        if variant[:2] == (DEFAULT_GROUPING, DEFAULT_METHOD) and variant[2] in SHOCK_GRID:
            taken = grid[grid["shock_sd"] == variant[2]]
            forecast = taken.drop(columns="shock_sd").reset_index(drop=True)
        else:
            forecast = forecast_net_demand(
                books, as_of, hotel_capacity, horizon_days, walk_risk, *variant
            )
        if nights is None:
            nights = forecast
        else:
            nights = nights.join(forecast[list(VARIANT_COLUMNS)].add_suffix(suffix))
    if measured_shock is not None:
        nights["measured_shock_sd"] = measured_shock
    end = final["arrival_date"].max() + pd.Timedelta(days=1)
    realised = realised_occupancy(final, as_of, end).set_index(["hotel", "night"])
    keys = pd.MultiIndex.from_frame(nights[["hotel", "night"]])
    nights["realised_occupied"] = np.where(
        nights["night"] < end,
        realised["realised_occupied"].reindex(keys).fillna(0).to_numpy(),
        np.nan,
    )
    lead_band = _expected_occupied(books, lead_band_probabilities(final, books, as_of))
    nights["lead_band_baseline"] = lead_band.reindex(keys).fillna(0).to_numpy()
    nights["last_year_baseline"] = last_year_forecast(final, nights, as_of)
    nights["as_of"] = pd.Timestamp(as_of)
    scored = (
        open_rows[["booking_id", "hotel", "arrival_date"]]
        .assign(unit=cancellation_units(open_rows))
        .merge(scores[["booking_id", "cancel_probability"]], on="booking_id")
        .merge(final[["booking_id", "is_canceled"]], on="booking_id")
        .assign(as_of=pd.Timestamp(as_of))
    )
    estimates = _realised_estimates(scored, final["arrival_date"].max()).assign(as_of=str(as_of))
    return MonthForecast(as_of, nights, estimates, scored)


def run_demand_replay(
    raw: pd.DataFrame,
    months: Sequence[date],
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    walk_risk: float = DEFAULT_WALK_RISK,
    capacity: dict[str, int] | None = None,
    progress: Callable[[Iterable[date]], Iterable[date]] = iter,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every month's nights and estimates, stacked (see `summarise`). Each month is also
    forecast with the shock measured on the earlier months' forecasts (MEASURED), as the
    platform can measure it on its own predictions: only outcomes known on the month count."""
    final = clean_bookings(raw).cleaned
    results: list[MonthForecast] = []
    for as_of in progress(months):
        scored = pd.concat([r.scored for r in results]) if results else None
        shifts = [] if scored is None else past_shifts(scored, as_of)
        results.append(
            replay_month(
                raw,
                final,
                as_of,
                horizon_days,
                walk_risk,
                capacity,
                measured_shock=measured_shock_sd(shifts),
            )
        )
        results[-1].nights["measured_shifts"] = len(shifts)
    return (
        pd.concat([r.nights for r in results], ignore_index=True),
        pd.concat([r.estimates for r in results], ignore_index=True),
    )


def _covered(nights: pd.DataFrame, level: int, suffix: str = "") -> pd.Series:
    low, high = nights[f"occupied_{level}_low{suffix}"], nights[f"occupied_{level}_high{suffix}"]
    return nights["realised_occupied"].between(low, high)


def _covers(nights: pd.DataFrame, level: int, suffix: str = "") -> float:
    return float(_covered(nights, level, suffix).mean())


def _coverage(rows: pd.DataFrame) -> dict[str, dict[str, dict[str, float]]]:
    """Per variant: coverage of the 80 % and 95 % intervals on all months, on the months the
    shock is chosen on (before FIT_BEFORE) and on the later ones."""
    fit = rows["as_of"] < pd.Timestamp(FIT_BEFORE)
    coverage = {}
    for name, suffix in variant_columns(rows).items():
        coverage[name] = {
            part: {"80": _covers(subset, 80, suffix), "95": _covers(subset, 95, suffix)}
            for part, subset in (("all", rows), ("fit", rows[fit]), ("later", rows[~fit]))
        }
    return coverage


def _grid_rows(nights: pd.DataFrame) -> pd.DataFrame:
    """A replay's nights at every SHOCK_GRID value of the table's grouping and method: one row
    per night and shock sd, as net_demand.forecast_shock_grid lays them out."""
    named = variant_columns(nights)
    keys = ["hotel", "as_of", "night", "realised_occupied", "capacity", "walk_risk"]
    parts = []
    for shock in SHOCK_GRID:
        suffix = named[variant_name(DEFAULT_GROUPING, DEFAULT_METHOD, shock)]
        part = nights[keys].assign(shock_sd=shock)
        for column in VARIANT_COLUMNS:
            part[column] = nights[f"{column}{suffix}"]
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def rolling_shock_coverage(graded: pd.DataFrame) -> dict[str, object]:
    """Each forecast as the table would make it: the shocks net_demand.choose_shock picks for its
    intervals and its headroom on its hotel's nights of earlier forecasts realised before its
    as-of date (what the platform knew then; the default before there are enough). Returns the
    intervals' coverage on all months, before FIT_BEFORE and later, the share of nights the
    headroom would have walked a guest, and the shocks chosen."""
    grid = _grid_rows(graded)
    parts, chosen = [], {}
    for (hotel, as_of), rows in grid.groupby(["hotel", "as_of"], sort=True):
        known = grid[(grid["hotel"] == hotel) & (grid["as_of"] < as_of) & (grid["night"] < as_of)]
        choice = choose_shock(known, float(rows["walk_risk"].iloc[0]))
        chosen[f"{as_of:%Y-%m}"] = {"intervals": choice.intervals, "headroom": choice.headroom}
        taken = taken_from_grid(mark_choices(rows, {hotel: choice}))
        parts.append(
            pd.DataFrame(
                {
                    "as_of": taken["as_of"],
                    "80": _covered(taken, 80),
                    "95": _covered(taken, 95),
                    "walked": walked(taken),
                }
            )
        )
    covered = pd.concat(parts)
    fit = covered["as_of"] < pd.Timestamp(FIT_BEFORE)
    return {
        "chosen": chosen,
        **{
            part: {level: float(rows[level].mean()) for level in ("80", "95", "walked")}
            for part, rows in (("all", covered), ("fit", covered[fit]), ("later", covered[~fit]))
        },
    }


def chosen_shock(summary: dict[str, object]) -> float:
    """The shared shock whose coverage, on the fit months of both hotels, is nearest nominal."""
    gaps = {}
    for shock in SHOCK_GRID:
        name = variant_name(DEFAULT_GROUPING, DEFAULT_METHOD, shock)
        gaps[shock] = sum(
            abs(hotel["coverage"][name]["fit"]["80"] - 0.80)
            + abs(hotel["coverage"][name]["fit"]["95"] - 0.95)
            for hotel in summary["hotels"].values()
        )
    return min(gaps, key=gaps.get)


def summarise(nights: pd.DataFrame, estimates: pd.DataFrame) -> dict[str, object]:
    """Per hotel: MAE of the forecast and both baselines, interval coverage per variant, the
    share of nights the advised headroom would have walked a guest; CBPE's error per month."""
    graded = nights.dropna(subset=["realised_occupied"])
    hotels = {}
    for hotel, rows in graded.groupby("hotel"):
        realised = rows["realised_occupied"]
        coverage = _coverage(rows)
        walks = walked(rows)
        walked_by_variant = {
            name: float(walked(rows, suffix).mean())
            for name, suffix in variant_columns(rows).items()
        }
        sold_beyond = rows["headroom"] > 0
        hotels[hotel] = {
            "nights": len(rows),
            "mean_rooms_booked": float(rows["rooms_booked"].mean()),
            "mae_model": float((rows["expected_occupied"] - realised).abs().mean()),
            "bias_model": float((rows["expected_occupied"] - realised).mean()),
            "mae_lead_band_baseline": float((rows["lead_band_baseline"] - realised).abs().mean()),
            "mae_last_year_baseline": float((rows["last_year_baseline"] - realised).abs().mean()),
            "coverage": coverage,
            "rolling_shock": rolling_shock_coverage(rows),
            "capacity": sorted(rows["capacity"].unique().tolist()),
            "mean_headroom": float(rows["headroom"].mean()),
            "walked_share": float(walks.mean()),
            "walked_share_when_headroom_advised": float(walks[sold_beyond].mean())
            if sold_beyond.any()
            else None,
            "nights_with_headroom": int(sold_beyond.sum()),
            "walked_share_by_variant": walked_by_variant,
        }
    month_ahead = estimates[estimates["arrival_month"] == estimates["as_of"].str[:7]].dropna(
        subset=["realised_roc_auc"]
    )
    every = estimates.dropna(subset=["realised_roc_auc"])
    error = (month_ahead["estimated_roc_auc"] - month_ahead["realised_roc_auc"]).abs()
    measured = {}
    if "measured_shock_sd" in nights:
        per_month = nights.groupby("as_of")[["measured_shock_sd", "measured_shifts"]].first()
        measured = {
            f"{as_of:%Y-%m}": {
                "shock_sd": float(row.measured_shock_sd),
                "shifts": int(row.measured_shifts),
            }
            for as_of, row in per_month.iterrows()
        }
    return {
        "hotels": hotels,
        "measured_shocks": measured,
        "cbpe": {
            "month_ahead_mae_roc_auc": float(error.mean()),
            "month_ahead_max_error_roc_auc": float(error.max()),
            "month_ahead_inside_band": int(
                month_ahead["realised_roc_auc"]
                .between(
                    month_ahead["estimated_roc_auc_low"], month_ahead["estimated_roc_auc_high"]
                )
                .sum()
            ),
            "every_horizon_month_mae_roc_auc": float(
                (every["estimated_roc_auc"] - every["realised_roc_auc"]).abs().mean()
            ),
            "month_ahead_mae_calibration_error": float(
                (
                    month_ahead["estimated_calibration_error"]
                    - month_ahead["realised_calibration_error"]
                )
                .abs()
                .mean()
            ),
            "months": month_ahead[
                [
                    "as_of",
                    "arrival_month",
                    "bookings",
                    "estimated_roc_auc",
                    "realised_roc_auc",
                    "estimated_roc_auc_low",
                    "estimated_roc_auc_high",
                    "estimated_calibration_error",
                    "realised_calibration_error",
                    "estimated_cancel_rate",
                    "realised_cancel_rate",
                ]
            ].to_dict("records"),
        },
    }
