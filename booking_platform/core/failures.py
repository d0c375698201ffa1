"""Failed runs on record: a warehouse table anyone can query, and an optional webhook.

Also which errors are passing (a network hiccup, a busy store) and worth a retry, as opposed to
bad input or a bug that fails the same way every time.
"""

from __future__ import annotations

import json
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from booking_platform.core import warehouse
from booking_platform.core.tables import FAILED_RUNS

WEBHOOK_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class FailedRun:
    run_id: str
    job_name: str
    partition: str  # the as-of date the run was for; "" when it had none
    failed_at: str  # ISO timestamp (UTC)
    step: str  # the step that failed; "" when the run failed outside any step
    error: str  # the error's type and message
    run_url: str  # the run's page in Dagit


def record_failure(connection: Any, failure: FailedRun) -> None:
    """Add the failure to the failed_runs table (DuckDB or PostgreSQL, core/warehouse.connect);
    recording the same run and step again replaces it."""
    rows = pd.DataFrame([asdict(failure)])
    if warehouse.table_exists(connection, FAILED_RUNS.name):
        kept = warehouse.read_table(connection, FAILED_RUNS.name)
        same = (kept["run_id"] == failure.run_id) & (kept["step"] == failure.step)
        rows = pd.concat([kept[~same], rows], ignore_index=True)
    warehouse.replace_tables(connection, {FAILED_RUNS.name: rows})


def post_webhook(url: str, failures: list[FailedRun]) -> None:
    """POST the failures as JSON ({"failed_runs": [...]}); raises OSError when it cannot."""
    body = json.dumps({"failed_runs": [asdict(f) for f in failures]}).encode()
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:  # noqa: S310
        response.read()


def _causes(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _passing(error: BaseException) -> bool:
    if isinstance(error, urllib.error.HTTPError):  # an answer: only overload is passing
        return error.code == 429 or error.code >= 500
    if isinstance(error, (ConnectionError, TimeoutError, urllib.error.URLError)):
        return True
    message = str(error)
    if isinstance(error, sqlite3.OperationalError) or "OperationalError" in type(error).__name__:
        return "database is locked" in message
    # MLflow's REST client, once its own retries are spent: no answer, a timeout, a 5xx
    if type(error).__name__ in ("MlflowException", "RestException"):
        code = str(getattr(error, "error_code", ""))
        return (
            code in ("TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED")
            or "database is locked" in message
            or (
                message.startswith("API request to")
                and any(
                    words in message
                    for words in ("failed with exception", "timeout", "failed with error code 5")
                )
            )
        )
    return False


def is_passing(error: BaseException) -> bool:
    """Whether the error, or one it was raised from, is a passing one: no connection, a
    timeout, a server error (5xx, 429) or a locked sqlite store. Bad input and bugs are not."""
    return any(_passing(cause) for cause in _causes(error))
