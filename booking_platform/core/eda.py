"""Exploratory analysis of the cleaned bookings: small tables and static matplotlib figures.

The seed's notebook looked at cancellations by hotel, by month, against ADR, lead time and special
requests, and a correlation heatmap; this adds seasonality per year, deposit type, market segment,
customer type, parking and the duplicate rows. Cancellation rates use only bookings that had
arrived before the as-of date (their label is final); the duplicate count covers the whole table.
No Dagster here: the asset, the docs' images and the tests call the same functions.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from booking_platform.core.cleaning import history
from booking_platform.core.plots import figure_png, png_data_uri
from booking_platform.core.source import SOURCE_SCHEMA

FIGURE_SIZE = (6.4, 3.4)
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
LEAD_TIME_BANDS = (-1, 7, 30, 90, 180, 365, np.inf)
LEAD_TIME_LABELS = ("0-7", "8-30", "31-90", "91-180", "181-365", "366+")
ADR_BANDS = (-1, 50, 75, 100, 125, 150, 200, np.inf)
ADR_LABELS = ("0-50", "51-75", "76-100", "101-125", "126-150", "151-200", "201+")
CORRELATION_COLUMNS = (
    "is_canceled",
    "lead_time",
    "arrival_date_week_number",
    "stays_in_weekend_nights",
    "stays_in_week_nights",
    "adults",
    "children",
    "babies",
    "is_repeated_guest",
    "previous_cancellations",
    "previous_bookings_not_canceled",
    "booking_changes",
    "days_in_waiting_list",
    "adr",
    "required_car_parking_spaces",
    "total_of_special_requests",
)
MIN_GROUP_BOOKINGS = 100  # rarer levels are left out of the bar charts: a rate of 2 means little


@dataclass
class EdaView:
    """One picture and the numbers behind it."""

    name: str  # file stem and metadata key
    title: str
    figure: plt.Figure
    table: pd.DataFrame
    note: str = ""

    @cached_property
    def png(self) -> bytes:
        return figure_png(self.figure)


@dataclass
class EdaReport:
    as_of: date
    bookings: int  # all cleaned rows
    history_bookings: int  # arrived before as_of: the rows behind the rates
    cancel_rate: float
    duplicate_rows: int
    duplicate_groups: int
    views: list[EdaView] = field(default_factory=list)

    def close(self) -> None:
        for view in self.views:
            plt.close(view.figure)


def cancellation_rate_by(bookings: pd.DataFrame, column: str | list[str]) -> pd.DataFrame:
    """Bookings and cancellation rate per level (observed=True: only levels that occur)."""
    grouped = bookings.groupby(column, observed=True)["is_canceled"]
    return grouped.agg(bookings="size", cancel_rate="mean").reset_index()


def _rate_bars(title: str, table: pd.DataFrame, column: str, overall: float) -> plt.Figure:
    figure, axis = plt.subplots(figsize=FIGURE_SIZE)
    labels = table[column].astype(str)
    bars = axis.bar(labels, table["cancel_rate"], color="#4c72b0")
    axis.axhline(overall, color="#c44e52", linestyle="--", linewidth=1, label="all bookings")
    for bar, count in zip(bars, table["bookings"], strict=True):
        axis.annotate(
            f"{count:,}",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=7,
        )
    axis.set_ylabel("cancellation rate")
    axis.set_ylim(0, 1.05)
    axis.set_title(title, fontsize=10)
    axis.legend(fontsize=7, loc="upper right")
    axis.tick_params(axis="x", labelsize=8, rotation=20 if len(table) > 4 else 0)
    figure.tight_layout()
    return figure


def _rate_view(
    name: str, title: str, bookings: pd.DataFrame, column: str, overall: float, note: str = ""
) -> EdaView:
    table = cancellation_rate_by(bookings, column)
    rare = table[table["bookings"] < MIN_GROUP_BOOKINGS]
    table = table[table["bookings"] >= MIN_GROUP_BOOKINGS]
    if not isinstance(bookings[column].dtype, pd.CategoricalDtype):
        table = table.sort_values("cancel_rate", ascending=False)
    if len(rare):
        note = (
            f"{note} Not shown: {', '.join(rare[column].astype(str))} "
            f"(fewer than {MIN_GROUP_BOOKINGS} bookings each, {rare['bookings'].sum():,} in all)."
        ).strip()
    figure = _rate_bars(f"{title} (bar labels: bookings)", table, column, overall)
    return EdaView(name, title, figure, table.reset_index(drop=True), note)


def _seasonality(bookings: pd.DataFrame) -> EdaView:
    month = pd.Categorical(bookings["arrival_date_month"], categories=MONTHS, ordered=True)
    frame = bookings.assign(arrival_month=month)
    table = cancellation_rate_by(frame, ["arrival_date_year", "arrival_month"])
    figure, (rates, volume) = plt.subplots(1, 2, figsize=(FIGURE_SIZE[0] * 1.5, FIGURE_SIZE[1]))
    for year, rows in table.groupby("arrival_date_year"):
        positions = rows["arrival_month"].cat.codes + 1
        rates.plot(positions, rows["cancel_rate"], marker="o", markersize=3, label=str(year))
        volume.plot(positions, rows["bookings"], marker="o", markersize=3, label=str(year))
    for axis, label in ((rates, "cancellation rate"), (volume, "bookings")):
        axis.set_xticks(range(1, 13), [m[:3] for m in MONTHS], fontsize=7)
        axis.set_ylabel(label)
        axis.legend(fontsize=7)
    rates.set_title("Cancellation rate by arrival month", fontsize=10)
    volume.set_title("Bookings by arrival month", fontsize=10)
    figure.tight_layout()
    return EdaView(
        "seasonality",
        "Seasonality: cancellation rate and bookings by arrival month and year",
        figure,
        table,
    )


def _adr_view(bookings: pd.DataFrame) -> EdaView:
    bands = pd.cut(bookings["adr"], ADR_BANDS, labels=ADR_LABELS)
    table = cancellation_rate_by(bookings.assign(adr_band=bands), ["hotel", "adr_band"])
    figure, (rates, spread) = plt.subplots(1, 2, figsize=(FIGURE_SIZE[0] * 1.5, FIGURE_SIZE[1]))
    for hotel, rows in table.groupby("hotel"):
        rates.plot(rows["adr_band"].astype(str), rows["cancel_rate"], marker="o", label=hotel)
    rates.set_xlabel("ADR band")
    rates.set_ylabel("cancellation rate")
    rates.set_title("Cancellation rate by ADR", fontsize=10)
    rates.legend(fontsize=7)
    rates.tick_params(axis="x", labelsize=7, rotation=30)
    kept = bookings.loc[bookings["is_canceled"] == 0, "adr"]
    cancelled = bookings.loc[bookings["is_canceled"] == 1, "adr"]
    spread.boxplot([kept, cancelled], showfliers=False)
    spread.set_xticks([1, 2], ["kept", "cancelled"])
    spread.set_ylabel("ADR")
    spread.set_title("ADR of kept and cancelled bookings", fontsize=10)
    figure.tight_layout()
    return EdaView("adr", "ADR against cancellation", figure, table)


def _requests_and_parking(bookings: pd.DataFrame, overall: float) -> EdaView:
    requests = cancellation_rate_by(
        bookings.assign(count=bookings["total_of_special_requests"].clip(upper=3)), "count"
    ).assign(what="special requests (3 = 3+)")
    parking = cancellation_rate_by(
        bookings.assign(count=bookings["required_car_parking_spaces"].clip(upper=1)), "count"
    ).assign(what="parking spaces (1 = 1+)")
    figure, axes = plt.subplots(1, 2, figsize=(FIGURE_SIZE[0] * 1.5, FIGURE_SIZE[1]))
    for axis, table in zip(axes, (requests, parking), strict=True):
        axis.bar(table["count"].astype(str), table["cancel_rate"], color="#55a868")
        axis.axhline(overall, color="#c44e52", linestyle="--", linewidth=1)
        axis.set_xlabel(table["what"].iloc[0])
        axis.set_ylabel("cancellation rate")
        axis.set_ylim(0, 1.05)
        for position, (rate, count) in enumerate(
            zip(table["cancel_rate"], table["bookings"], strict=True)
        ):
            axis.annotate(f"{count:,}", (position, rate), ha="center", va="bottom", fontsize=7)
    axes[0].set_title("Special requests", fontsize=10)
    axes[1].set_title("Car parking", fontsize=10)
    figure.tight_layout()
    return EdaView(
        "requests_and_parking",
        "Special requests and car parking",
        figure,
        pd.concat([requests, parking], ignore_index=True)[
            ["what", "count", "bookings", "cancel_rate"]
        ],
        # the data set's own notes say so; the model uses the column, as allowed for now
        "Parking spaces may be recorded or corrected after booking (at arrival), which would "
        "make bookings with parking look safer than they were when booked.",
    )


def _correlations(bookings: pd.DataFrame) -> EdaView:
    columns = [c for c in CORRELATION_COLUMNS if c in bookings]
    matrix = bookings[columns].astype("float64").corr()
    figure, axis = plt.subplots(figsize=(6.4, 5.4))
    image = axis.imshow(matrix.to_numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
    axis.set_xticks(range(len(columns)), columns, rotation=90, fontsize=7)
    axis.set_yticks(range(len(columns)), columns, fontsize=7)
    figure.colorbar(image, ax=axis, shrink=0.8)
    axis.set_title("Correlation of the numeric columns (Pearson)", fontsize=10)
    figure.tight_layout()
    table = matrix["is_canceled"].drop("is_canceled").sort_values(key=abs, ascending=False)
    return EdaView(
        "correlations",
        "Correlation heatmap of the numeric columns",
        figure,
        table.rename_axis("column").reset_index(name="correlation_with_is_canceled"),
        "booking_changes and days_in_waiting_list are shown but never feed the model: they are "
        "known only after booking.",
    )


def duplicate_rows(bookings: pd.DataFrame) -> pd.DataFrame:
    """Rows identical to another in every source column (booking_id aside), with a group size."""
    columns = [c for c in SOURCE_SCHEMA if c in bookings]
    repeated = bookings[bookings.duplicated(subset=columns, keep=False)]
    sizes = repeated.groupby(columns, dropna=False)["booking_id"].transform("size")
    return repeated.assign(copies=sizes)


def _duplicates_view(bookings: pd.DataFrame) -> tuple[EdaView, int, int]:
    repeated = duplicate_rows(bookings)
    groups = repeated.drop_duplicates(subset=[c for c in SOURCE_SCHEMA if c in bookings])
    extra = len(repeated) - len(groups)  # rows beyond the first of each identical group
    by_segment = (
        pd.DataFrame(
            {
                "all_rows": bookings["market_segment"].value_counts(normalize=True),
                "duplicated_rows": repeated["market_segment"].value_counts(normalize=True),
            }
        )
        .fillna(0.0)
        .sort_values("all_rows", ascending=False)
    )
    figure, (share, sizes) = plt.subplots(1, 2, figsize=(FIGURE_SIZE[0] * 1.5, FIGURE_SIZE[1]))
    positions = np.arange(len(by_segment))
    share.bar(positions - 0.2, by_segment["all_rows"], 0.4, label="all rows")
    share.bar(positions + 0.2, by_segment["duplicated_rows"], 0.4, label="duplicated rows")
    share.set_xticks(positions, by_segment.index, rotation=30, fontsize=7)
    share.set_ylabel("share of rows")
    share.set_title("Market segment of duplicated rows", fontsize=10)
    share.legend(fontsize=7)
    size_counts = groups["copies"].clip(upper=10).value_counts().sort_index()
    sizes.bar([str(s) if s < 10 else "10+" for s in size_counts.index], size_counts.to_numpy())
    sizes.set_xlabel("identical rows in the group")
    sizes.set_ylabel("groups")
    sizes.set_title("Size of identical groups", fontsize=10)
    figure.tight_layout()
    if repeated.empty:
        note = "No row repeats another in every source column."
    else:
        group_like = repeated["market_segment"].isin(("Groups", "Offline TA/TO")).mean()
        note = (
            f"{extra:,} rows repeat another row in every source column ({len(repeated):,} rows "
            f"in {len(groups):,} identical groups, up to {groups['copies'].max():,} copies). The "
            "export has no booking reference, so such rows cannot be told apart. "
            f"{group_like:.0%} of them are Groups or Offline TA/TO bookings and "
            f"{(repeated['agent'] > 0).mean():.0%} came through an agent: consistent with group "
            "blocks entered room by room (same hotel, dates, agent, price); some may be double "
            f"entries. {repeated['is_canceled'].mean():.0%} of them were cancelled (all rows: "
            f"{bookings['is_canceled'].mean():.0%}). They are kept, one booking each."
        )
    table = by_segment.reset_index(names="market_segment")
    return EdaView("duplicates", "Duplicate rows", figure, table, note), extra, len(groups)


def build_eda(cleaned: pd.DataFrame, as_of: date) -> EdaReport:
    """All views of the cleaned bookings; the caller closes the figures (EdaReport.close)."""
    known = history(cleaned, as_of)
    if known.empty:
        raise ValueError(f"no bookings arrived before the as-of date {as_of}: nothing to analyse")
    overall = float(known["is_canceled"].mean())
    lead_band = pd.cut(known["lead_time"], LEAD_TIME_BANDS, labels=LEAD_TIME_LABELS)
    known = known.assign(lead_time_band=lead_band)
    duplicates, extra, groups = _duplicates_view(cleaned)
    views = [
        _rate_view("by_hotel", "Cancellation rate by hotel", known, "hotel", overall),
        _seasonality(known),
        _rate_view(
            "by_lead_time",
            "Cancellation rate by lead time (days)",
            known,
            "lead_time_band",
            overall,
        ),
        _rate_view(
            "by_deposit_type",
            "Cancellation rate by deposit type",
            known,
            "deposit_type",
            overall,
        ),
        _rate_view(
            "by_market_segment",
            "Cancellation rate by market segment",
            known,
            "market_segment",
            overall,
        ),
        _rate_view(
            "by_customer_type",
            "Cancellation rate by customer type",
            known,
            "customer_type",
            overall,
        ),
        _adr_view(known),
        _requests_and_parking(known, overall),
        _correlations(known),
        duplicates,
    ]
    return EdaReport(
        as_of=as_of,
        bookings=len(cleaned),
        history_bookings=len(known),
        cancel_rate=overall,
        duplicate_rows=extra,
        duplicate_groups=groups,
        views=views,
    )


def write_report(report: EdaReport, folder: Path) -> dict[str, Path]:
    """One PNG per view and a self-contained eda.html (images inline) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    sections = []
    for view in report.views:
        png = view.png
        path = folder / f"{view.name}.png"
        path.write_bytes(png)
        paths[view.name] = path
        note = f"<p>{html.escape(view.note)}</p>" if view.note else ""
        sections.append(
            f'<section id="{view.name}"><h2>{html.escape(view.title)}</h2>{note}'
            f'<img src="{png_data_uri(png)}" alt="{html.escape(view.title)}">'
            f"{view.table.to_html(index=False, float_format=lambda v: f'{v:.3f}', border=0)}"
            "</section>"
        )
    page = folder / "eda.html"
    page.write_text(
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>booking_platform: exploratory analysis as of {report.as_of}</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:auto}"
        "table{border-collapse:collapse;font-size:small}td,th{padding:2px 8px;text-align:right}"
        "</style></head><body>"
        f"<h1>Exploratory analysis as of {report.as_of}</h1>"
        f"<p>{report.bookings:,} cleaned bookings; the rates use the {report.history_bookings:,} "
        f"that arrived before {report.as_of} (cancellation rate {report.cancel_rate:.1%}).</p>"
        + "".join(sections)
        + "</body></html>",
        encoding="utf-8",
    )
    paths["html"] = page
    return paths
