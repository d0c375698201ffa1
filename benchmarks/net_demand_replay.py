"""Net demand replayed month by month (core/demand_replay.py): per hotel, the error of expected
rooms occupied against two model-free baselines, the coverage of the 80 % and 95 % intervals
(the table's grouping and method beside the alternatives), the share of nights the advised
overbooking headroom would have walked a guest, and CBPE's error on each month's ROC AUC.

    .venv/bin/python benchmarks/net_demand_replay.py --from 2016-07 --to 2017-08 \
        [--json replay.json] [--nights nights.parquet]
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from _common import source_parser
from rich.console import Console
from rich.progress import track
from rich.table import Table

from booking_platform.core.demand_replay import (
    FIT_BEFORE,
    chosen_shock,
    run_demand_replay,
    summarise,
)
from booking_platform.core.net_demand import (
    DEFAULT_HORIZON_DAYS,
    DEFAULT_SHOCK_SD,
    DEFAULT_WALK_RISK,
    MIN_CHOICE_NIGHTS,
)
from booking_platform.core.snapshots import month_starts, parse_month_or_date
from booking_platform.core.source import read_bookings

console = Console()
COVERAGE_TOLERANCE = 0.05  # the target: within 5 points of the nominal level
CBPE_MAE_TARGET = 0.02


def _capacity(text: str) -> dict[str, int]:
    """'City Hotel=226,Resort Hotel=200'."""
    pairs = (item.split("=") for item in text.split(",") if item)
    return {hotel.strip(): int(rooms) for hotel, rooms in pairs}


def main() -> None:
    parser = source_parser(__doc__.splitlines()[0])
    parser.add_argument("--from", dest="start", type=parse_month_or_date, default="2016-07")
    parser.add_argument("--to", dest="end", type=parse_month_or_date, default="2017-08")
    parser.add_argument("--horizon-days", type=int, default=DEFAULT_HORIZON_DAYS)
    parser.add_argument("--walk-risk", type=float, default=DEFAULT_WALK_RISK)
    parser.add_argument(
        "--capacity", type=_capacity, default={}, help="'City Hotel=226,...' (default: estimate)"
    )
    parser.add_argument("--json", type=Path, help="write the summary here")
    parser.add_argument("--nights", type=Path, help="write every graded night here (parquet)")
    args = parser.parse_args()
    raw = read_bookings(args.source).frame
    months = month_starts(args.start, args.end)
    started = time.perf_counter()
    nights, estimates = run_demand_replay(
        raw,
        months,
        args.horizon_days,
        args.walk_risk,
        args.capacity,
        progress=lambda items: track(items, description="replaying months", console=console),
    )
    seconds = time.perf_counter() - started
    summary = summarise(nights, estimates)
    _print(summary, months, args.walk_risk)
    console.print(f"{len(months)} months in {seconds:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2, default=str))
        console.print(f"summary {args.json}")
    if args.nights:
        nights.to_parquet(args.nights)
        console.print(f"nights {args.nights}")


def _print(summary: dict, months: list, walk_risk: float) -> None:
    span = f"{months[0]:%Y-%m} .. {months[-1]:%Y-%m}"
    error = Table(title=f"Expected rooms occupied per night, MAE (rooms), as of {span}")
    for column in (
        "hotel",
        "nights graded",
        "rooms booked (mean)",
        "model",
        "model bias",
        "lead-time band",
        "same night last year",
        "model best?",
    ):
        error.add_column(column, justify="right")
    for hotel, row in summary["hotels"].items():
        best = row["mae_model"] < min(row["mae_lead_band_baseline"], row["mae_last_year_baseline"])
        error.add_row(
            hotel,
            str(row["nights"]),
            f"{row['mean_rooms_booked']:.1f}",
            f"{row['mae_model']:.2f}",
            f"{row['bias_model']:+.2f}",
            f"{row['mae_lead_band_baseline']:.2f}",
            f"{row['mae_last_year_baseline']:.2f}",
            "yes" if best else "NO",
        )
    console.print(error)
    coverage = Table(
        title="Interval coverage, 80 % / 95 % (share of nights whose realised rooms fell "
        f"inside): all months, months before {FIT_BEFORE} (the shock is chosen on them), later"
    )
    coverage.add_column("grouping / method / shared shock")
    hotels = list(summary["hotels"])
    for hotel in hotels:
        for part in ("all", "fit", "later"):
            coverage.add_column(f"{hotel}\n{part}", justify="right")
    for name in summary["hotels"][hotels[0]]["coverage"]:
        cells = []
        for hotel in hotels:
            for part in ("all", "fit", "later"):
                cover = summary["hotels"][hotel]["coverage"][name][part]
                ok = (
                    abs(cover["80"] - 0.80) <= COVERAGE_TOLERANCE
                    and abs(cover["95"] - 0.95) <= COVERAGE_TOLERANCE
                )
                cells.append(f"{cover['80']:.0%}/{cover['95']:.0%}" + ("" if ok else " off"))
        coverage.add_row(name, *cells)
    console.print(coverage)
    console.print(f"shared shock nearest nominal on the fit months: {chosen_shock(summary):g}")
    for hotel, row in summary["hotels"].items():
        rolling = row["rolling_shock"]
        within = all(
            abs(rolling["all"][level] - nominal) <= COVERAGE_TOLERANCE
            for level, nominal in (("80", 0.80), ("95", 0.95))
        )
        console.print(
            f"{hotel}, the table's shocks (net_demand.choose_shock on its earlier forecasts' "
            f"nights realised before it; {DEFAULT_SHOCK_SD:g} before {MIN_CHOICE_NIGHTS} such "
            "nights): coverage "
            + ", ".join(
                f"{part} {rolling[part]['80']:.0%}/{rolling[part]['95']:.0%}"
                for part in ("all", "fit", "later")
            )
            + (" (all: within 5 points)" if within else " (all: off)")
            + f"; headroom walked {rolling['all']['walked']:.1%} of nights; chosen "
            "(intervals/headroom): "
            + ", ".join(
                f"{month} {sd['intervals']:g}/{sd['headroom']:g}"
                for month, sd in rolling["chosen"].items()
            )
        )
    console.print(
        "shock measured on the earlier forecasts, per month (shifts measured): "
        + ", ".join(
            f"{month} {row['shock_sd']:.2f} ({row['shifts']})"
            for month, row in summary["measured_shocks"].items()
        )
    )
    walk = Table(title=f"Overbooking headroom at walk risk {walk_risk:.0%}")
    for column in (
        "hotel",
        "capacity",
        "mean headroom, fixed shock",
        "nights with headroom",
        "walked share, fixed shock (all nights)",
        "walked share, fixed shock (nights with headroom)",
        "walked share, the table's shock",
    ):
        walk.add_column(column, justify="right")
    for hotel, row in summary["hotels"].items():
        advised = row["walked_share_when_headroom_advised"]
        walk.add_row(
            hotel,
            "/".join(str(c) for c in row["capacity"]),
            f"{row['mean_headroom']:.1f}",
            str(row["nights_with_headroom"]),
            f"{row['walked_share']:.1%}",
            "-" if advised is None else f"{advised:.1%}",
            f"{row['rolling_shock']['all']['walked']:.1%}",
        )
    console.print(walk)
    for hotel, row in summary["hotels"].items():
        shares = ", ".join(
            f"{name.split('/')[-1]}: {share:.1%}"
            for name, share in row["walked_share_by_variant"].items()
            if name.startswith("identical_rows/exact")
        )
        console.print(f"{hotel}, walked share by shared shock (identical rows, exact): {shares}")
    cbpe = summary["cbpe"]
    months_table = Table(
        title="CBPE: estimated vs realised ROC AUC of the month ahead (open bookings on the 1st)"
    )
    for column in (
        "as of",
        "bookings",
        "estimated",
        "95 % band",
        "realised",
        "error",
        "est. / real calibration error",
    ):
        months_table.add_column(column, justify="right")
    for row in cbpe["months"]:
        months_table.add_row(
            row["as_of"],
            str(row["bookings"]),
            f"{row['estimated_roc_auc']:.3f}",
            f"{row['estimated_roc_auc_low']:.3f}..{row['estimated_roc_auc_high']:.3f}",
            f"{row['realised_roc_auc']:.3f}",
            f"{row['estimated_roc_auc'] - row['realised_roc_auc']:+.3f}",
            f"{row['estimated_calibration_error']:.3f} / {row['realised_calibration_error']:.3f}",
        )
    console.print(months_table)
    target = "met" if cbpe["month_ahead_mae_roc_auc"] <= CBPE_MAE_TARGET else "MISSED"
    console.print(
        f"CBPE MAE of ROC AUC, month ahead: {cbpe['month_ahead_mae_roc_auc']:.4f} "
        f"(max {cbpe['month_ahead_max_error_roc_auc']:.4f}; target <= {CBPE_MAE_TARGET}: "
        f"{target}); every month of the horizon: {cbpe['every_horizon_month_mae_roc_auc']:.4f}"
    )
    console.print(
        f"Realised ROC AUC inside the 95 % band: {cbpe['month_ahead_inside_band']} of "
        f"{len(cbpe['months'])} months; calibration error, estimated against realised: MAE "
        f"{cbpe['month_ahead_mae_calibration_error']:.4f}"
    )


if __name__ == "__main__":
    main()
