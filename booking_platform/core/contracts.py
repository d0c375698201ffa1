"""The data contracts (pandera) of the cleaned bookings and the predictions: what a valid row is,
said once. Cleaning quarantines the rows that break the bookings contract, each with the rules
it breaks as its reason; the checks validate the stored tables with the same contracts; Dagit
shows them as the tables' column schemas (defs/table_metadata.py).

pandera is imported inside the functions: it costs ~0.4 s on top of pandas, and the service and
the CLI's fast commands import cleaning (type_bookings) without ever validating.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import TYPE_CHECKING

import pandas as pd

from booking_platform.core.bounds import BOUND_CHECK, pandera_columns
from booking_platform.core.source import (
    FEATURE_SOURCE_COLUMNS,
    HOTEL_NAME,
    OUTCOME_COLUMNS,
    SOURCE_SCHEMA,
    numbers_as_written,
)

if TYPE_CHECKING:
    import pandera.pandas as pa

RESERVATION_STATUSES = ("Canceled", "Check-Out", "No-Show")
# NA means "none" for these columns in the PMS export (README of the data set): never required
NA_FILL = {"children": 0.0, "agent": 0.0, "company": 0.0, "country": "Unknown"}
MISSING = "not_nullable"  # pandera's name for a required column's NA
# pandera's names for a column missing, and for one the (strict) contract does not know
WHOLE_COLUMN = ("column_in_dataframe", "column_in_schema")
# the row rule judged on the columns as written: typing makes an unreadable value NA, which is
# a reason of its own, not an empty outcome
AS_WRITTEN = "as written"
PARTLY_EMPTY = "outcome columns partly empty"


def _rules(as_of: date | None, outcomes: bool) -> dict[str, object]:
    """The rules of a row as a whole, by the quarantine reason each gives: True where the row
    keeps the rule (a rule that cannot be judged, NA, is kept: another names what is missing)."""
    rules = {
        # a year or day missing or out of bounds is named as such, not once more here
        "impossible arrival date": lambda f: (
            f["arrival_date"].notna()
            | f[["arrival_date_year", "arrival_date_day_of_month"]].isna().any(axis=1)
        ),
        "zero guests": lambda f: ~(f["adults"] + f["children"] + f["babies"]).le(0),
        "booked after arrival": lambda f: ~f["booking_date"].gt(f["arrival_date"]),
    }
    if not outcomes:
        return rules

    def has_outcome(f: pd.DataFrame) -> pd.Series:
        # a snapshot leaves all three outcome columns empty for a booking still open on its date
        return f[list(OUTCOME_COLUMNS)].notna().any(axis=1)

    def known_status(f: pd.DataFrame) -> pd.Series:
        return f["reservation_status"].isin(RESERVATION_STATUSES)

    rules |= {
        PARTLY_EMPTY: lambda f: ~has_outcome(f) | f[list(OUTCOME_COLUMNS)].notna().all(axis=1),
        "unknown reservation_status": lambda f: ~has_outcome(f) | known_status(f),
        "is_canceled disagrees with reservation_status": lambda f: (
            ~known_status(f)
            | (f["is_canceled"].eq(1) == f["reservation_status"].isin(("Canceled", "No-Show")))
        ),
        "impossible reservation_status_date": lambda f: (
            ~has_outcome(f) | f["reservation_status_date"].notna()
        ),
        "reservation_status_date before booking date": lambda f: (
            ~f["reservation_status_date"].lt(f["booking_date"])
        ),
        "check-out dated before arrival": lambda f: (
            ~(
                f["reservation_status"].eq("Check-Out")
                & f["reservation_status_date"].lt(f["arrival_date"])
            )
        ),
    }
    if as_of is not None:
        rules["arrived before the snapshot date but has no outcome"] = lambda f: (
            has_outcome(f) | ~f["arrival_date"].lt(pd.Timestamp(as_of))
        )
    return rules


def bookings_contract(present: Iterable[str], as_of: date | None = None) -> pa.DataFrameSchema:
    """The contract of a typed bookings frame holding the columns `present` (an export may lack
    the post-booking ones): every number within core/bounds, the columns a booking cannot miss
    present, a hotel's name, and the row rules (`_rules`). With `as_of`, a booking that arrived
    before it must have its outcome (a snapshot taken that day)."""
    import pandera.pandas as pa  # noqa: PLC0415 (slow to import, see the module's docstring)

    present = list(present)
    required = [c for c in present if c in FEATURE_SOURCE_COLUMNS and c not in NA_FILL]
    columns = pandera_columns(present, required={*required, "booking_id"})
    columns |= {c: pa.Column(nullable=False) for c in required if c not in columns}
    # hotel names are open (a chain adds hotels): a value that is no name is refused
    columns["hotel"] = pa.Column(
        nullable=False,
        checks=pa.Check.str_matches(
            rf"^{HOTEL_NAME}$", error="hotel name not a name", description="a hotel's name"
        ),
    )
    rules = _rules(as_of, outcomes="is_canceled" in present)
    return pa.DataFrameSchema(
        columns,
        checks=[
            pa.Check(
                rule,
                ignore_na=False,
                error=text,  # the quarantine's reason
                description=f"never: {text}",  # the rule, as Dagit's column schema states it
                name=AS_WRITTEN if text == PARTLY_EMPTY else None,
            )
            for text, rule in rules.items()
        ],
        name="cleaned_bookings",
        description="Typed bookings: what cleaning keeps, and quarantines the rest of",
    )


def predictions_contract() -> pa.DataFrameSchema:
    """One row per open booking and as-of date: a probability in [0, 1], the decision at the
    model's threshold, the model version, and the reasons (reason_1 and the JSON `reasons` at
    least: a booking may have fewer than REASONS_PER_BOOKING contributions worth naming)."""
    import pandera.pandas as pa  # noqa: PLC0415 (slow to import, see the module's docstring)

    # here, not above: explanations imports features, which imports cleaning, which imports us
    from booking_platform.core.explanations import REASONS_PER_BOOKING  # noqa: PLC0415

    probability = pa.Check.in_range(0.0, 1.0, error="outside [0, 1]", description="in [0, 1]")
    reasons = {
        f"reason_{i}": pa.Column(nullable=i > 1, description="text for reading")
        for i in range(1, REASONS_PER_BOOKING + 1)
    }
    return pa.DataFrameSchema(
        {
            "booking_id": pa.Column(unique=True, checks=pa.Check.ge(0)),
            "cancel_probability": pa.Column(checks=probability),
            "predicted_cancel": pa.Column(checks=pa.Check.isin([True, False])),
            "threshold": pa.Column(checks=probability),
            "model_version": pa.Column(),
            **reasons,
            "reasons": pa.Column(description="reason_1.. as JSON: feature, value, contribution"),
            "as_of": pa.Column(),
            "scored_at": pa.Column(),
        },
        strict=True,
        name="predictions",
        description="The champion's scores of the bookings open on each as-of date",
    )


def failure_cases(frame: pd.DataFrame, contract: pa.DataFrameSchema) -> pd.DataFrame:
    """pandera's failure cases of `frame` (column, check, check_number, failure_case, index), one
    row per broken check and row: empty when the frame keeps the contract."""
    import pandera.errors  # noqa: PLC0415 (slow to import, see the module's docstring)

    try:
        contract.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as errors:
        cases = errors.failure_cases
        # a row rule reports each column of a row that breaks it: one case per row is enough
        rule = cases["schema_context"].eq("DataFrameSchema") & ~cases["check"].isin(WHOLE_COLUMN)
        once = cases[rule].drop_duplicates(["check", "index"])
        return pd.concat([cases[~rule], once]).reset_index(drop=True)
    return pd.DataFrame(
        columns=["schema_context", "column", "check", "check_number", "failure_case", "index"]
    )


def broken_rows(frame: pd.DataFrame, contract: pa.DataFrameSchema) -> dict[str, set]:
    """The row labels breaking the contract, per column (or row rule, by its reason); a column
    missing altogether, or one the contract does not know, breaks every row."""
    cases = failure_cases(frame, contract)
    whole_column = cases["check"].isin(WHOLE_COLUMN)
    broken = {str(c): set(frame.index) for c in cases.loc[whole_column, "failure_case"]}
    cases = cases[~whole_column]
    named = cases["column"].where(cases["schema_context"].eq("Column"), cases["check"])
    for what, rows in cases.groupby(named)["index"]:
        broken.setdefault(str(what), set()).update(rows)
    return broken


def quarantine_reasons(
    raw: pd.DataFrame, typed: pd.DataFrame, as_of: date | None = None
) -> pd.Series:
    """One text per row of `raw` (its index): every rule of the bookings contract the row breaks,
    joined by '; ' in the contract's order (empty when valid). A number outside its bounds is
    named with its column and its value as written ("adults 1e308 above 100"), a missing one as
    "missing value in adults".

    The columns are judged as read (numbers parsed, nothing masked or filled), the row rules on
    `typed` (type_bookings: out-of-bounds numbers NA, so no rule computes with them)."""
    import pandera.pandas as pa  # noqa: PLC0415 (slow to import, see the module's docstring)

    contract = bookings_contract(raw.columns, as_of)
    as_read = raw.assign(
        **{
            # numbers written as text: what they say (the source refuses text that is no number)
            column: numbers_as_written(raw[column])
            for column in raw.columns
            if SOURCE_SCHEMA.get(column, "str") != "str"
        }
    )
    written = [c for c in contract.checks if c.name == AS_WRITTEN]
    typed_rules = [c for c in contract.checks if c.name != AS_WRITTEN]
    cases = pd.concat(
        [
            failure_cases(as_read, pa.DataFrameSchema(contract.columns, checks=written)),
            failure_cases(typed, pa.DataFrameSchema(checks=typed_rules)),
        ],
        ignore_index=True,
    )
    if cases.empty:
        return pd.Series("", index=raw.index, dtype=object)
    column_order = {name: i for i, name in enumerate(contract.columns)}
    rule_order = {check.error: i for i, check in enumerate(contract.checks)}
    texts, ranks = [], []
    for case in cases.itertuples():
        if case.schema_context == "Column":
            check = (
                None
                if case.check == MISSING
                else contract.columns[case.column].checks[int(case.check_number)]
            )
            if check is None:
                text = f"missing value in {case.column}"
            elif check.name == BOUND_CHECK:
                text = f"{case.column} {raw.at[case.index, case.column]} {check.error}"
            else:
                text = str(check.error)
            rank = (0, column_order[case.column], -1 if check is None else int(case.check_number))
        else:  # a row rule
            text, rank = str(case.check), (1, rule_order[case.check], 0)
        texts.append(text)
        ranks.append(rank)
    broken = pd.DataFrame({"index": cases["index"], "rank": ranks, "text": texts})
    joined = broken.sort_values(["index", "rank"]).groupby("index")["text"].agg("; ".join)
    return joined.reindex(raw.index, fill_value="").astype(object)
