"""Asset checks: the audit of each staged export (blocking: a failing one stops the run before
accepted_bookings publishes anything), the promotion gate on candidate_model and the checks of
what batch_predictions wrote."""

import hashlib
import warnings
from datetime import date

import dagster as dg
import duckdb
import pandas as pd

from booking_platform.core import gate, registry
from booking_platform.core.cleaning import open_bookings
from booking_platform.core.contracts import bookings_contract, broken_rows
from booking_platform.core.export_audit import Accepted, judge_volume
from booking_platform.core.scoring import audit_predictions
from booking_platform.core.source import OUTCOME_COLUMNS
from booking_platform.core.tables import (
    CLEANED_BOOKINGS,
    PREDICTIONS,
    QUARANTINED_BOOKINGS,
    RAW_BOOKINGS,
)
from booking_platform.core.warehouse import (
    column_types,
    count_rows,
    read_slice,
    staged_name,
    table_exists,
)
from booking_platform.defs.assets.ingestion import (
    ACCEPT_SHRINK_TAG,
    cleaned_bookings,
    raw_bookings,
)
from booking_platform.defs.assets.modeling import Candidate, candidate_model
from booking_platform.defs.assets.predictions import batch_predictions
from booking_platform.defs.executors import PROMOTION_POOL
from booking_platform.defs.partitions import as_of_partitions
from booking_platform.defs.resources import MlflowRegistry, PlatformSettings, Warehouse

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


def _last_accepted(
    connection: duckdb.DuckDBPyConnection, table: str, as_of: date
) -> Accepted | None:
    """The published slice of `table` at or before `as_of` that a new export is compared with:
    that date's own slice on a rerun, else the nearest earlier one (exports grow over time)."""
    if not table_exists(connection, table):
        return None
    row = connection.execute(
        f'SELECT as_of, count(*) FROM "{table}" WHERE as_of <= ? '
        "GROUP BY as_of ORDER BY as_of DESC LIMIT 1",
        [as_of],
    ).fetchone()
    return Accepted(as_of=row[0], rows=int(row[1])) if row else None


def _volume_check(
    context: dg.AssetCheckExecutionContext, warehouse: Warehouse, max_shrink: float, table: str
) -> dg.AssetCheckResult:
    """The staged slice of `table` against the last accepted one (core/export_audit.py)."""
    as_of = _as_of(context)
    with warehouse.connect(read_only=True) as connection:
        staged = read_slice(connection, staged_name(table), as_of)
        previous = _last_accepted(connection, table, as_of)
    intended = context.run.tags.get(ACCEPT_SHRINK_TAG, "").lower() in ("1", "true", "yes")
    verdict = judge_volume(table, len(staged), previous, max_shrink, intended)
    # the rows' content, independent of the file's format: equal for an identical export
    content = hashlib.sha256(pd.util.hash_pandas_object(staged, index=False).to_numpy().tobytes())
    return dg.AssetCheckResult(
        passed=verdict.passed,
        description=verdict.description,
        metadata={
            "rows": len(staged),
            "content_sha256": content.hexdigest(),
            "previous_as_of": str(previous.as_of) if previous else "none",
            "previous_rows": previous.rows if previous else 0,
            "shrink": round(verdict.shrink, 4) if verdict.shrink is not None else "n/a",
            "max_shrink": max_shrink,
            "accept_shrink": intended,
        },
    )


@dg.asset_check(
    asset=raw_bookings,
    partitions_def=as_of_partitions,
    blocking=True,
    description="Row count and content checksum recorded; an export with no rows, or one that "
    "shrinks by more than BOOKINGS_MAX_SHRINK against the last accepted, is refused.",
)
def raw_bookings_volume(
    context: dg.AssetCheckExecutionContext, platform: PlatformSettings, warehouse: Warehouse
) -> dg.AssetCheckResult:
    return _volume_check(context, warehouse, platform.max_shrink, RAW_BOOKINGS.name)


@dg.asset_check(
    asset=cleaned_bookings,
    partitions_def=as_of_partitions,
    blocking=True,
    description="Valid rows: none, or a shrink beyond BOOKINGS_MAX_SHRINK against the last "
    "accepted export, is refused (e.g. an export whose every row is invalid).",
)
def cleaned_bookings_volume(
    context: dg.AssetCheckExecutionContext, platform: PlatformSettings, warehouse: Warehouse
) -> dg.AssetCheckResult:
    return _volume_check(context, warehouse, platform.max_shrink, CLEANED_BOOKINGS.name)


@dg.asset_check(
    asset=cleaned_bookings,
    partitions_def=as_of_partitions,
    blocking=True,
    description="Columns exist with the expected types.",
)
def cleaned_bookings_schema(warehouse: Warehouse) -> dg.AssetCheckResult:
    with warehouse.connect(read_only=True) as connection:
        actual = column_types(connection, staged_name(CLEANED_BOOKINGS.name))
    wrong = {c: actual.get(c, "missing") for c, t in EXPECTED_TYPES.items() if actual.get(c) != t}
    return dg.AssetCheckResult(
        passed=not wrong, metadata={"wrong_columns": dg.MetadataValue.json(wrong)}
    )


def contract_violations(cleaned: pd.DataFrame, as_of: date) -> dict[str, int]:
    """Rows per column (or row rule) of a cleaned slice that break the bookings contract: the
    one cleaning quarantines on (core/contracts.py)."""
    broken = broken_rows(cleaned, bookings_contract(cleaned.columns, as_of))
    return {what: len(rows) for what, rows in broken.items()}


@dg.asset_check(
    asset=cleaned_bookings,
    partitions_def=as_of_partitions,
    blocking=True,
    description="Every row keeps the bookings contract cleaning quarantined on "
    "(core/contracts.py): numbers within core/bounds.py, at least one guest, booked before "
    "arrival, outcomes consistent.",
)
def cleaned_bookings_ranges(
    context: dg.AssetCheckExecutionContext, warehouse: Warehouse
) -> dg.AssetCheckResult:
    as_of = _as_of(context)
    with warehouse.connect(read_only=True) as connection:
        cleaned = read_slice(connection, staged_name(CLEANED_BOOKINGS.name), as_of)
    violations = contract_violations(cleaned, as_of)
    return dg.AssetCheckResult(
        passed=not violations, metadata={"violations": dg.MetadataValue.json(violations)}
    )


@dg.asset_check(
    asset=cleaned_bookings,
    partitions_def=as_of_partitions,
    blocking=True,
    description="No nulls (but the outcome of a booking still open); raw = cleaned + quarantined.",
)
def cleaned_bookings_complete(
    context: dg.AssetCheckExecutionContext, warehouse: Warehouse
) -> dg.AssetCheckResult:
    as_of = _as_of(context)
    with warehouse.connect(read_only=True) as connection:
        cleaned = read_slice(connection, staged_name(CLEANED_BOOKINGS.name), as_of)
        raw_rows, quarantined = (
            count_rows(connection, staged_name(table), as_of)
            for table in (RAW_BOOKINGS.name, QUARANTINED_BOOKINGS.name)
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
    pool=PROMOTION_POOL,
    description="Promotion gate: floors, then not worse than the champion on the same holdout.",
)
def promotion_gate(
    candidate_model: Candidate, mlflow_registry: MlflowRegistry
) -> dg.AssetCheckResult:
    # judged against the champion of the candidate's own date: in a backfill of earlier dates,
    # the model that was champion then, not one trained on later arrivals
    champion = mlflow_registry.champion_as_of(date.fromisoformat(candidate_model.as_of))
    decision = gate.judge(
        candidate_model.validated,
        champion.model if champion else None,
        champion.version if champion else None,
    )
    metadata: dict[str, object] = {
        "comparisons": dg.MetadataValue.md("\n".join(f"- {c}" for c in decision.comparisons)),
        "verdict": "promote" if decision.passed else "keep champion" if decision.kept else "refuse",
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
        # keeping the champion is no failure of the run: registered_model registers nothing and
        # batch_predictions scores with the champion, so a rerun still brings predictions level
        severity=dg.AssetCheckSeverity.WARN if decision.kept else dg.AssetCheckSeverity.ERROR,
        description="; ".join(decision.comparisons),
        metadata=metadata,
    )


PREDICTION_CHECKS = {
    "one_row_per_open_booking": "Exactly one prediction per booking open on the as-of date.",
    "probabilities_in_range": "Every probability present and within [0, 1].",
    "reasons_present": "Every prediction has its top reasons stored.",
    "scored_by_champion_as_of": "Scored by the model that was champion as of the as-of date.",
}


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(
            name,
            asset=batch_predictions,
            description=description,
            partitions_def=as_of_partitions,
            # realised_performance must not grade predictions that failed these
            blocking=True,
        )
        for name, description in PREDICTION_CHECKS.items()
    ],
)
def batch_predictions_checks(
    context: dg.AssetCheckExecutionContext, warehouse: Warehouse, mlflow_registry: MlflowRegistry
):
    """One read of the as-of date's predictions, four verdicts."""
    as_of = _as_of(context)
    with warehouse.connect(read_only=True) as connection:
        predictions = read_slice(connection, PREDICTIONS.name, as_of)
        cleaned = read_slice(connection, CLEANED_BOOKINGS.name, as_of)
    audit = audit_predictions(predictions, open_bookings(cleaned, as_of)["booking_id"])
    champion = mlflow_registry.champion_entry_as_of(as_of)
    expected = str(champion.version) if champion else "none"

    def result(name: str, passed: bool, **metadata: object) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(
            asset_key=batch_predictions.key, check_name=name, passed=passed, metadata=metadata
        )

    yield result(
        "one_row_per_open_booking",
        audit.missing == audit.unexpected == audit.duplicated == 0,
        rows=len(predictions),
        open_bookings_without_prediction=audit.missing,
        predicted_bookings_not_open=audit.unexpected,
        duplicated_bookings=audit.duplicated,
    )
    yield result("probabilities_in_range", audit.out_of_range == 0, out_of_range=audit.out_of_range)
    yield result("reasons_present", audit.without_reasons == 0, without=audit.without_reasons)
    yield result(
        "scored_by_champion_as_of",
        audit.versions == (expected,),
        scored_by=", ".join(audit.versions) or "none",
        champion_as_of=expected,
    )
