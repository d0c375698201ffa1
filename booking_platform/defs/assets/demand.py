"""net_demand (rooms per hotel and night, intervals, overbooking headroom) and
estimated_performance (CBPE: the open bookings' ROC AUC and calibration before the labels)."""

from datetime import date
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
from pydantic import Field

from booking_platform.core.demand_plots import net_demand_png
from booking_platform.core.features import FeatureSet
from booking_platform.core.net_demand import (
    DEFAULT_HORIZON_DAYS,
    DEFAULT_WALK_RISK,
    MIN_CHOICE_NIGHTS,
    SHOCK_GRID,
    ShockChoice,
    cancellation_units,
    choose_shock,
    estimate_capacity,
    forecast_shock_grid,
    graded_grids,
    mark_choices,
    on_the_books,
    realised_occupancy,
    shock_record,
    taken_from_grid,
)
from booking_platform.core.performance_estimation import estimate_by_arrival_month
from booking_platform.core.plots import markdown_image
from booking_platform.core.tables import (
    CLEANED_BOOKINGS,
    ESTIMATED_PERFORMANCE,
    NET_DEMAND,
    NET_DEMAND_REALISED,
    NET_DEMAND_SHOCK_GRID,
    PREDICTIONS,
)
from booking_platform.core.warehouse import read_slice, replace_slices, table_exists
from booking_platform.defs.assets.catalog_tags import stage
from booking_platform.defs.assets.predictions import batch_predictions
from booking_platform.defs.partitions import as_of_partitions
from booking_platform.defs.resources import PlatformSettings, Warehouse
from booking_platform.defs.table_metadata import table_metadata


class NetDemandConfig(dg.Config):
    horizon_days: int = Field(default=DEFAULT_HORIZON_DAYS, gt=0, description="nights ahead")
    walk_risk: float = Field(
        default=DEFAULT_WALK_RISK,
        gt=0,
        lt=1,
        description="highest accepted probability of more arriving guests than rooms",
    )
    capacity: dict[str, int] = Field(
        default_factory=dict,
        description="rooms per hotel; a hotel left out gets an estimate: the most rooms "
        "occupied on any night of its history",
    )
    shock_sd: float | None = Field(
        default=None,
        ge=0,
        description="sd of the log-odds shock all bookings of a night share, for the intervals "
        "and the headroom alike; unset: per hotel, chosen for each on the realised nights of "
        "earlier forecasts (net_demand.choose_shock, docs/design.md)",
    )


def _scored_open_bookings(booking_features: FeatureSet, scores: pd.DataFrame) -> pd.DataFrame:
    open_rows, _ = booking_features.part("open")
    scored = open_rows.merge(scores, on="booking_id", how="left")
    missing = scored["cancel_probability"].isna()
    if missing.any():
        raise ValueError(
            f"{int(missing.sum())} open booking(s) as of {booking_features.as_of} have no "
            f"prediction in table {PREDICTIONS.name}, e.g. booking_id "
            f"{scored.loc[missing, 'booking_id'].head(5).tolist()}: materialise batch_predictions"
        )
    return scored


def _realised_for_stored_forecasts(connection: Any, newest_as_of: date) -> list[date]:
    """Fill in the realised rooms of every stored forecast whose nights the newest export has
    seen and that is not complete yet; returns the as-of dates updated."""
    if not table_exists(connection, NET_DEMAND.name):
        return []
    forecasts = connection.execute(
        f"SELECT as_of, count(*) FROM {NET_DEMAND.name} WHERE as_of < ? GROUP BY as_of",
        [newest_as_of],
    ).fetchall()
    stored = {}
    if table_exists(connection, NET_DEMAND_REALISED.name):
        stored = dict(
            connection.execute(
                f"SELECT as_of, count(*) FROM {NET_DEMAND_REALISED.name} GROUP BY as_of"
            ).fetchall()
        )
    pending = [as_of for as_of, nights in forecasts if stored.get(as_of, 0) < nights]
    if not pending:
        return []
    latest = read_slice(connection, CLEANED_BOOKINGS.name, newest_as_of)
    for as_of in pending:
        forecast = read_slice(connection, NET_DEMAND.name, as_of)[["hotel", "night"]]
        forecast["night"] = pd.to_datetime(forecast["night"])
        known = forecast[forecast["night"] < pd.Timestamp(newest_as_of)]
        realised = realised_occupancy(latest, as_of, pd.Timestamp(newest_as_of))
        rows = known.merge(realised, on=["hotel", "night"], how="left").fillna(
            {"realised_occupied": 0}
        )
        replace_slices(
            connection,
            as_of,
            {NET_DEMAND_REALISED.name: rows.astype({"realised_occupied": "int64"})},
        )
    return pending


def _shock_note(
    choice: ShockChoice, graded: pd.DataFrame, hotel: str, config: NetDemandConfig
) -> dict[str, object]:
    """What the materialisation says of one hotel's shocks: which, why, and how the chosen ones
    did on the earlier forecasts' realised nights."""
    note: dict[str, object] = {
        "intervals_shock_sd": choice.intervals,
        "headroom_shock_sd": choice.headroom,
        "chosen_on_realised_nights": choice.nights,
        "how": "configured"
        if config.shock_sd is not None
        else "chosen on earlier forecasts' realised nights (net_demand.choose_shock)"
        if choice.nights >= MIN_CHOICE_NIGHTS
        else f"default: fewer than {MIN_CHOICE_NIGHTS} realised nights",
    }
    rows = graded[graded["hotel"] == hotel]
    if len(rows):
        record = shock_record(rows)
        note["on_those_nights"] = {
            "inside_80_interval": record["covered_80"].get(choice.intervals),
            "inside_95_interval": record["covered_95"].get(choice.intervals),
            "headroom_walked_a_guest": record["walked"].get(choice.headroom),
        }
    return note


@dg.asset(
    **stage("predictions"),
    deps=[batch_predictions],
    partitions_def=as_of_partitions,
    kinds={"duckdb"},
)
def net_demand(
    context: dg.AssetExecutionContext,
    config: NetDemandConfig,
    booking_features: FeatureSet,
    platform: PlatformSettings,
    warehouse: Warehouse,
) -> dg.MaterializeResult:
    """Rooms per hotel and night over the horizon from the bookings on the books on the as-of
    date (bookings made later are out of scope): rooms booked, expected cancellations (the sum
    of the champion's probabilities), expected rooms occupied with 80 % and 95 % intervals
    (identical rows cancel together: one unit), and the rooms that can still be sold under the
    walk risk. The shared shock of the intervals and of the headroom is chosen per hotel on the
    earlier forecasts' realised nights (every shock's forecast: table net_demand_shock_grid).
    Later exports fill in the realised rooms (table net_demand_realised)."""
    as_of = booking_features.as_of
    with warehouse.connect() as connection:
        scores = read_slice(connection, PREDICTIONS.name, as_of)
    scored = _scored_open_bookings(booking_features, scores)
    books = on_the_books(booking_features.bookings, as_of)
    probability = dict(zip(scored["booking_id"], scored["cancel_probability"], strict=True))
    books["cancel_probability"] = np.where(
        books["in_house"], 0.0, books["booking_id"].map(probability)
    )
    capacity = estimate_capacity(booking_features.bookings, as_of, config.capacity)
    with warehouse.connect() as connection:
        (newest,) = connection.execute(f"SELECT max(as_of) FROM {CLEANED_BOOKINGS.name}").fetchone()
        updated = _realised_for_stored_forecasts(connection, newest)
        graded = graded_grids(connection, as_of)
    if config.shock_sd is None:
        choices = {
            hotel: choose_shock(graded[graded["hotel"] == hotel], config.walk_risk)
            for hotel in capacity
        }
    else:
        choices = {hotel: ShockChoice(config.shock_sd, config.shock_sd, 0) for hotel in capacity}
    shock_sds = sorted(set(SHOCK_GRID) | {choice.intervals for choice in choices.values()})
    grid = mark_choices(
        forecast_shock_grid(
            books, as_of, capacity, config.horizon_days, config.walk_risk, shock_sds=shock_sds
        ),
        choices,
    )
    nights = taken_from_grid(grid).assign(
        model_version=",".join(sorted(scores["model_version"].astype(str).unique()))
    )
    with warehouse.connect() as connection:
        replace_slices(
            connection, as_of, {NET_DEMAND.name: nights, NET_DEMAND_SHOCK_GRID.name: grid}
        )
        stored = table_metadata(connection, NET_DEMAND, as_of)
        # a forecast made before the newest export (a backfill) is graded at once
        updated += _realised_for_stored_forecasts(connection, newest)
        realised = (
            read_slice(connection, NET_DEMAND_REALISED.name, as_of)
            if table_exists(connection, NET_DEMAND_REALISED.name)
            else pd.DataFrame(columns=["hotel", "night", "realised_occupied"])
        )
    realised["night"] = pd.to_datetime(realised["night"])
    shown = nights.merge(realised, on=["hotel", "night"], how="left")
    context.log.info(
        f"net demand as of {as_of}: {len(nights)} nights; realised filled in for {updated}"
    )
    metadata: dict[str, object] = {
        "table": f"{platform.settings.warehouse_location}::{NET_DEMAND.name}",
        **stored,
        "as_of": str(as_of),
        "nights": len(nights),
        "horizon_days": config.horizon_days,
        "walk_risk": config.walk_risk,
        "scope": "bookings on the books on the as-of date; bookings made later are not counted",
        "capacity": dg.MetadataValue.json(
            {h: {"rooms": r, "source": s} for h, (r, s) in capacity.items()}
        ),
        "realised_filled_in_for": dg.MetadataValue.json([str(d) for d in updated]),
        "shared_shock": dg.MetadataValue.json(
            {hotel: _shock_note(choice, graded, hotel, config) for hotel, choice in choices.items()}
        ),
    }
    for hotel, rows in shown.groupby("hotel"):
        week = rows.head(7)[
            [
                "night",
                "rooms_booked",
                "expected_occupied",
                "occupied_80_low",
                "occupied_80_high",
                "headroom",
            ]
        ].assign(night=lambda f: f["night"].dt.strftime("%a %Y-%m-%d"))
        metadata[f"plot_{hotel}"] = dg.MetadataValue.md(
            markdown_image(
                f"{hotel}: the next {config.horizon_days} nights",
                net_demand_png(rows, hotel, str(as_of)),
                note=week.to_markdown(index=False, floatfmt=".1f"),
            )
        )
        metadata[f"expected_occupied_next_30_nights_{hotel}"] = float(
            rows.head(30)["expected_occupied"].sum()
        )
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    **stage("monitoring"),
    deps=[batch_predictions],
    partitions_def=as_of_partitions,
    kinds={"duckdb"},
)
def estimated_performance(
    context: dg.AssetExecutionContext,
    booking_features: FeatureSet,
    platform: PlatformSettings,
    warehouse: Warehouse,
) -> dg.MaterializeResult:
    """The ROC AUC and calibration the open bookings will show, per arrival month, estimated
    from the champion's probabilities alone (CBPE, core/performance_estimation.py), before any
    label arrives; realised_performance measures the truth later."""
    as_of = booking_features.as_of
    with warehouse.connect() as connection:
        scores = read_slice(connection, PREDICTIONS.name, as_of)
    scored = _scored_open_bookings(booking_features, scores)
    table = estimate_by_arrival_month(scored, cancellation_units(scored))
    with warehouse.connect() as connection:
        replace_slices(connection, as_of, {ESTIMATED_PERFORMANCE.name: table})
        stored = table_metadata(connection, ESTIMATED_PERFORMANCE, as_of)
    context.log.info(f"estimated performance as of {as_of}: {len(table)} arrival month(s)")
    month_ahead = table.iloc[0] if len(table) else None
    metadata: dict[str, object] = {
        "table": f"{platform.settings.warehouse_location}::{ESTIMATED_PERFORMANCE.name}",
        **stored,
        "as_of": str(as_of),
        "method": "CBPE (NannyML's confidence-based performance estimation): assumes the "
        "champion's probabilities are calibrated; the band and the calibration error draw "
        "identical rows as one unit, since they cancel together",
        "months": dg.MetadataValue.md(table.to_markdown(index=False, floatfmt=".3f")),
    }
    if month_ahead is not None:
        metadata["month_ahead"] = str(month_ahead["arrival_month"])
        metadata["month_ahead_estimated_roc_auc"] = float(month_ahead["estimated_roc_auc"])
        metadata["month_ahead_estimated_calibration_error"] = float(
            month_ahead["estimated_calibration_error"]
        )
    return dg.MaterializeResult(metadata=metadata)
