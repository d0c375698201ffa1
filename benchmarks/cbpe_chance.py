"""How far would CBPE's month-ahead ROC AUC miss by chance alone, for a model that is right?
(issue 16 point 4)

Each month as the net demand replay makes it (core/demand_replay.py `replay_month`): the bookings
open on the 1st and arriving that month, their CBPE estimate, their realised ROC AUC. Beside the
realised error, the error a model whose probabilities are exactly right would still show: the
bookings' outcomes drawn from those probabilities (DRAWS times), graded against the same
estimate. Drawn with every booking on its own, with identical rows cancelling together (the
estimate's own draws, net_demand.cancellation_units), and with a shared log-odds shock per hotel
on top (net demand's shock, at the sds its table takes most).

    .venv/bin/python benchmarks/cbpe_chance.py --from 2016-07 --to 2017-08
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from _common import source_parser
from rich.console import Console
from rich.progress import track
from rich.table import Table
from scipy.special import expit, logit

from booking_platform.core.cleaning import clean_bookings
from booking_platform.core.demand_replay import replay_month
from booking_platform.core.performance_estimation import roc_auc_per_draw, simulated_labels
from booking_platform.core.snapshots import month_starts, parse_month_or_date
from booking_platform.core.source import read_bookings
from booking_platform.core.training import SEED

DRAWS = 400
SHOCKS = (0.5, 0.75)  # log-odds sd: what the replay's net demand table chose for its intervals


def chance_errors(
    month: pd.DataFrame, estimate: float, rng: np.random.Generator
) -> dict[str, float]:
    """Mean absolute distance of a right model's drawn ROC AUC from `estimate`, per way of
    drawing the outcomes."""
    proba = month["cancel_probability"].to_numpy()
    hotels = pd.factorize(month["hotel"])[0]
    log_odds = logit(np.clip(proba, 1e-9, 1 - 1e-9))
    ways = {"independent": (None, 0.0), "groups": (month["unit"].to_numpy(), 0.0)}
    ways |= {f"groups, shock {sd}": (month["unit"].to_numpy(), sd) for sd in SHOCKS}
    errors = {}
    for name, (units, sd) in ways.items():
        shock = rng.normal(0.0, sd, (DRAWS, hotels.max() + 1))[:, hotels]
        drawn_from = expit(log_odds + shock) if sd else proba
        labels = simulated_labels(drawn_from, DRAWS, int(rng.integers(2**32)), units)
        auc = roc_auc_per_draw(proba, labels)
        errors[name] = float(np.nanmean(np.abs(auc - estimate)))
    return errors


def main() -> None:
    parser = source_parser(__doc__.splitlines()[0])
    parser.add_argument("--from", dest="start", type=parse_month_or_date, default="2016-07")
    parser.add_argument("--to", dest="end", type=parse_month_or_date, default="2017-08")
    args = parser.parse_args()
    raw = read_bookings(args.source).frame
    final = clean_bookings(raw).cleaned
    rng = np.random.default_rng(SEED)
    rows = []
    for as_of in track(month_starts(args.start, args.end), description="replaying"):
        forecast = replay_month(raw, final, as_of)
        month_key = f"{as_of:%Y-%m}"
        estimate = forecast.estimates.set_index("arrival_month").loc[month_key]
        scored = forecast.scored
        month = scored[scored["arrival_date"].dt.strftime("%Y-%m") == month_key]
        rows.append(
            {
                "as of": month_key,
                "bookings": len(month),
                "units": month["unit"].nunique(),
                "estimated": estimate["estimated_roc_auc"],
                "realised": estimate["realised_roc_auc"],
                "realised error": abs(estimate["estimated_roc_auc"] - estimate["realised_roc_auc"]),
                **chance_errors(month, estimate["estimated_roc_auc"], rng),
            }
        )
    frame = pd.DataFrame(rows)
    table = Table(title="CBPE month ahead: realised error, and a right model's error by chance")
    for column in frame.columns:
        table.add_column(column, justify="right")
    for _, row in frame.iterrows():
        table.add_row(
            row["as of"],
            f"{row['bookings']:,}",
            f"{row['units']:,}",
            *(f"{value:.4f}" for value in row.iloc[3:]),
        )
    means = frame.iloc[:, 5:].mean()
    table.add_row("mean", "", "", "", "", *(f"{value:.4f}" for value in means))
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
