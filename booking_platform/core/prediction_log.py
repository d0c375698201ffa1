"""The log of online predictions: an append-only sqlite file in WAL mode under the data home.

The service writes it and the ab_test_report asset reads it: the format lives here, in core/,
so that neither side imports the other (defs/ never imports the HTTP package).

Several uvicorn worker processes append to it at once (sqlite serialises writers, WAL lets
readers in meanwhile), and the ab_test_report asset reads it without touching DuckDB, which
admits one writer process. One row per request, its predictions as JSON arrays: at 100k
predictions a second, a row per prediction costs sqlite most of a core. Requests only append to
a list in memory; a background thread writes what has gathered every `flush_seconds` in one
transaction, so the request path never waits on the disk. Up to `flush_seconds` of
predictions are lost if the process is killed.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

import orjson
import pandas as pd

log = logging.getLogger(__name__)
TABLE = "online_requests"
DDL = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    logged_at TEXT NOT NULL,           -- ISO UTC time of the request
    request_id TEXT NOT NULL,
    champion_version TEXT NOT NULL,
    challenger_version TEXT NOT NULL,  -- '' when there was no challenger
    latency_ms REAL NOT NULL,          -- the request's time in the service, parsing to answer
    predictions TEXT NOT NULL          -- JSON: one array per PREDICTION_FIELDS entry
)
"""
PREDICTION_FIELDS = (
    "booking_id",
    "routing_key",
    "variant",  # the arm that scored it: champion or challenger
    "model_version",
    "served",  # 1: the answer returned; 0: a shadow score
    "cancel_probability",
)
COLUMNS = (
    "logged_at",
    "request_id",
    "champion_version",
    "challenger_version",
    "latency_ms",
    *PREDICTION_FIELDS,
)


@dataclass(frozen=True)
class LoggedRequest:
    logged_at: str
    request_id: str
    champion_version: str
    challenger_version: str
    latency_ms: float
    predictions: dict[str, list]  # PREDICTION_FIELDS -> one value per prediction


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=30)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at checkpoints, fast commits
    connection.execute(DDL)
    return connection


class PredictionLog:
    def __init__(self, path: Path, flush_seconds: float) -> None:
        self.path, self.flush_seconds = path, flush_seconds
        self._pending: list[LoggedRequest] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        _connect(path).close()  # fail at start-up, not at the first flush, if it is unwritable

    def append(self, request: LoggedRequest) -> None:
        with self._lock:
            self._pending.append(request)

    def flush(self, connection: sqlite3.Connection) -> int:
        with self._lock:
            requests, self._pending = self._pending, []
        if requests:
            rows = [
                (
                    r.logged_at,
                    r.request_id,
                    r.champion_version,
                    r.challenger_version,
                    r.latency_ms,
                    orjson.dumps(r.predictions).decode(),
                )
                for r in requests
            ]
            try:
                with connection:
                    connection.executemany(f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?)", rows)
            except sqlite3.Error:
                with self._lock:  # keep them for the next flush
                    self._pending[:0] = requests
                raise
        return len(requests)

    def _run(self) -> None:
        connection = _connect(self.path)
        try:
            while not self._stop.wait(self.flush_seconds):
                try:
                    self.flush(connection)
                except sqlite3.Error:
                    log.exception("could not write the prediction log; will retry")
            self.flush(connection)
        finally:
            connection.close()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)


def read_prediction_log(path: Path) -> pd.DataFrame:
    """Every logged prediction, one row each (empty, with the columns, before any)."""
    if not path.exists():
        return pd.DataFrame(columns=list(COLUMNS))
    connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        requests = pd.read_sql_query(f"SELECT * FROM {TABLE}", connection)
    finally:
        connection.close()
    if requests.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    parts = [pd.DataFrame(orjson.loads(text)) for text in requests["predictions"]]
    predictions = pd.concat(parts, ignore_index=True)
    per_request = requests.drop(columns="predictions").loc[
        requests.index.repeat([len(p) for p in parts])
    ]
    return pd.concat([per_request.reset_index(drop=True), predictions], axis=1)[list(COLUMNS)]
