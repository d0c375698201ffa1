"""Asset checks: data checks on cleaned_bookings and the promotion gate on candidate_model."""

import warnings
from datetime import date

import dagster as dg
import pandas as pd

from booking_platform.core import gate, registry
from booking_platform.core.cleaning import MAX_ADR
from booking_platform.core.source import OUTCOME_COLUMNS
from booking_platform.core.warehouse import column_types, read_slice
from booking_platform.defs.assets.ingestion import (
    CLEANED_TABLE,
    QUARANTINE_TABLE,
    RAW_TABLE,
    cleaned_bookings,
)
from booking_platform.defs.assets.modeling import Candidate, candidate_model
from booking_platform.defs.partitions import as_of_partitions
from booking_platform.defs.resources import MlflowRegistry, Warehouse

# One verdict per as-of date needs partitioned asset checks, a preview feature in Dagster 1.13;
# its warning would be printed by every command that loads the definitions.
warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec")

EXPECTED_TYPES = {
    "booking_id": "BIGINT",
    "lead_time": "BIGINT",
    "adr": "DOUBLE",
    "arrival_date": "TIMESTAMP",
    "booking_date": "TIMESTAMP",
    "is_canceled": "BIGINT",
    "hotel": "VARCHAR",
}


def _as_of(context: dg.AssetCheckExecutionContext) -> date:
    """The as-of date of the run's partition: each check looks at that date's rows only."""
    return date.fromisoformat(context.partition_key)


@dg.asset_check(
    asset=cleaned_bookings,
    partitions_def=as_of_partitions,
    description="Columns exist with the expected types.",
)
def cleaned_bookings_schema(warehouse: Warehouse) -> dg.AssetCheckResult:
    with warehouse.connect(read_only=True) as connection:
        actual = column_types(connection, CLEANED_TABLE)
    wrong = {c: actual.get(c, "missing") for c, t in EXPECTED_TYPES.items() if actual.get(c) != t}
    return dg.AssetCheckResult(
        passed=not wrong, metadata={"wrong_columns": dg.MetadataValue.json(wrong)}
    )


@dg.asset_check(
    asset=cleaned_bookings,
    partitions_def=as_of_partitions,
    description="Values within business ranges.",
)
def cleaned_bookings_ranges(
    context: dg.AssetCheckExecutionContext, warehouse: Warehouse
) -> dg.AssetCheckResult:
    with warehouse.connect(read_only=True) as connection:
        bad_adr, bad_lead, no_guests, bad_dates = connection.execute(
            f"""SELECT count(*) FILTER (WHERE adr < 0 OR adr > {MAX_ADR}),
                       count(*) FILTER (WHERE lead_time < 0),
                       count(*) FILTER (WHERE adults + children + babies <= 0),
                       count(*) FILTER (WHERE booking_date > arrival_date)
                FROM {CLEANED_TABLE} WHERE as_of = ?""",
            [_as_of(context)],
        ).fetchone()
    return dg.AssetCheckResult(
        passed=bad_adr + bad_lead + no_guests + bad_dates == 0,
        metadata={
            "adr_out_of_range": bad_adr,
            "negative_lead_time": bad_lead,
            "zero_guests": no_guests,
            "booked_after_arrival": bad_dates,
        },
    )


@dg.asset_check(
    asset=cleaned_bookings,
    partitions_def=as_of_partitions,
    description="No nulls (but the outcome of a booking still open); raw = cleaned + quarantined.",
)
def cleaned_bookings_complete(
    context: dg.AssetCheckExecutionContext, warehouse: Warehouse
) -> dg.AssetCheckResult:
    as_of = _as_of(context)
    with warehouse.connect(read_only=True) as connection:
        cleaned = read_slice(connection, CLEANED_TABLE, as_of)
        raw_rows, quarantined = (
            len(read_slice(connection, table, as_of)) for table in (RAW_TABLE, QUARANTINE_TABLE)
        )
    still_open = cleaned["arrival_date"] >= pd.Timestamp(as_of)
    nulls = {
        c: int(n) for c, n in cleaned.drop(columns=list(OUTCOME_COLUMNS)).isna().sum().items() if n
    } | {
        c: int(n)
        for c, n in cleaned.loc[~still_open, list(OUTCOME_COLUMNS)].isna().sum().items()
        if n
    }
    return dg.AssetCheckResult(
        passed=not nulls and raw_rows == len(cleaned) + quarantined,
        metadata={
            "null_counts": dg.MetadataValue.json(nulls),
            "raw_rows": raw_rows,
            "cleaned_rows": len(cleaned),
            "quarantined_rows": quarantined,
        },
    )


@dg.asset_check(
    asset=candidate_model,
    partitions_def=as_of_partitions,
    blocking=True,
    description="Promotion gate: floors, then not worse than the champion on the same holdout.",
)
def promotion_gate(
    candidate_model: Candidate, mlflow_registry: MlflowRegistry
) -> dg.AssetCheckResult:
    champion = mlflow_registry.champion()
    decision = gate.judge(
        candidate_model.validated,
        champion.model if champion else None,
        champion.version if champion else None,
    )
    metadata: dict[str, object] = {
        "comparisons": dg.MetadataValue.md("\n".join(f"- {c}" for c in decision.comparisons)),
        "candidate_run_id": candidate_model.run_id,
        "champion_version": champion.version if champion else "none",
        "candidate_holdout_roc_auc": round(candidate_model.validated.metrics["roc_auc"], 4),
    }
    same_rows = {}
    if decision.champion_roc_auc is not None:
        same_rows = {
            "champion_roc_auc_same_rows": round(decision.champion_roc_auc, 4),
            "candidate_roc_auc_same_rows": round(decision.candidate_roc_auc_on_shared_rows, 4),
        }
        metadata |= same_rows
    # the verdict in MLflow too, on the candidate's run: who reads MLflow sees why
    registry.record_gate(candidate_model.run_id, decision.passed, decision.comparisons, same_rows)
    metadata["candidate_mlflow_run"] = dg.MetadataValue.url(
        mlflow_registry.run_url(candidate_model.run_id)
    )
    return dg.AssetCheckResult(
        passed=decision.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(decision.comparisons),
        metadata=metadata,
    )
