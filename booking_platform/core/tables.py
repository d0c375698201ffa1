"""The warehouse's tables, each declared once: its name, the columns that identify a row, whether
it is replaced one as-of slice at a time or whole, and what it holds.

The warehouse helpers, the assets, the checks, the CLI and the HTTP service name a table through
this module only (booking_platform_tests/core/test_tables.py holds the package to that), so a
table cannot be renamed in one place and read under its old name in another. Pure: no Dagster.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Table:
    name: str
    # the columns that identify a row; a sliced table's start with as_of
    keys: tuple[str, ...]
    # True: replaced one as-of date at a time (warehouse.replace_slices), other dates kept;
    # False: replaced whole (warehouse.replace_tables)
    sliced: bool
    description: str

    def __post_init__(self) -> None:
        if self.sliced != (self.keys[:1] == ("as_of",)):
            raise ValueError(f"{self.name}: a sliced table's keys start with as_of, no other's do")


RAW_BOOKINGS = Table(
    "raw_bookings",
    ("as_of", "booking_id"),
    sliced=True,
    description="Each export as read: every column as text, plus an integer booking_id.",
)
CLEANED_BOOKINGS = Table(
    "cleaned_bookings",
    ("as_of", "booking_id"),
    sliced=True,
    description="The valid bookings of each export, typed, with real arrival and booking dates.",
)
QUARANTINED_BOOKINGS = Table(
    "quarantined_bookings",
    ("as_of", "booking_id"),
    sliced=True,
    description="The invalid rows of each export as read (text), with every rule each breaks.",
)
ACCEPTED_EXPORTS = Table(
    "accepted_exports",
    ("as_of",),
    sliced=True,
    description="One row per published export: its file, sha256, rows and the run that staged it.",
)
PREDICTIONS = Table(
    "predictions",
    ("as_of", "booking_id"),
    sliced=True,
    description="The champion's cancellation probability and reasons for each open booking.",
)
NET_DEMAND = Table(
    "net_demand",
    ("as_of", "hotel", "night"),
    sliced=True,
    description="Rooms per hotel and night ahead: booked, expected to cancel, intervals, headroom.",
)
NET_DEMAND_REALISED = Table(
    "net_demand_realised",
    ("as_of", "hotel", "night"),
    sliced=True,
    description="The rooms each forecast's nights realised, filled in by later exports.",
)
NET_DEMAND_SHOCK_GRID = Table(
    "net_demand_shock_grid",
    ("as_of", "hotel", "night", "shock_sd"),
    sliced=True,
    description="Each forecast's intervals and headroom at every shared shock; graded later, "
    "they choose the next forecast's shock (in_net_demand: the one the table took).",
)
ESTIMATED_PERFORMANCE = Table(
    "estimated_performance",
    ("as_of", "arrival_month"),
    sliced=True,
    description="ROC AUC and calibration the open bookings will show, estimated before labels.",
)
MODEL_LEADERBOARD = Table(
    "model_leaderboard",
    ("as_of", "rank"),
    sliced=True,
    description="The model search's families and trials ranked by holdout ROC AUC.",
)
REALISED_PERFORMANCE = Table(
    "realised_performance",
    ("arrival_month",),
    sliced=False,
    description="Realised ROC AUC and calibration of past scores per arrival month.",
)
AB_TEST_REPORT = Table(
    "ab_test_report",
    ("variant", "model_version"),
    sliced=False,
    description="The HTTP service's arms (champion, challenger, shadow) on realised outcomes.",
)
FAILED_RUNS = Table(
    "failed_runs",
    ("run_id", "step"),
    sliced=False,
    description="Every failed run and step: job, as-of date, error and its page in Dagit.",
)

CATALOGUE: dict[str, Table] = {
    table.name: table
    for table in (
        RAW_BOOKINGS,
        CLEANED_BOOKINGS,
        QUARANTINED_BOOKINGS,
        ACCEPTED_EXPORTS,
        PREDICTIONS,
        NET_DEMAND,
        NET_DEMAND_REALISED,
        NET_DEMAND_SHOCK_GRID,
        ESTIMATED_PERFORMANCE,
        MODEL_LEADERBOARD,
        REALISED_PERFORMANCE,
        AB_TEST_REPORT,
        FAILED_RUNS,
    )
}
# what accepted_bookings publishes together, once the staged export passed its audit
PUBLISHED_TOGETHER = (RAW_BOOKINGS, CLEANED_BOOKINGS, QUARANTINED_BOOKINGS, ACCEPTED_EXPORTS)
