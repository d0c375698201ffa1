"""The log of online predictions: an append-only sqlite file in WAL mode under the data home.

Several uvicorn worker processes append to it at once (sqlite serialises writers, WAL lets
readers in meanwhile), and the ab_test_report asset reads it without touching DuckDB, which
admits one writer process. Requests only append to a list in memory; a background thread
writes what has gathered every `flush_seconds` in one transaction, so the request path never
waits on the disk. Up to `flush_seconds` of predictions are lost if the process is killed.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)
TABLE = "online_predictions"
COLUMNS = (
    "logged_at",  # ISO UTC time of the request
    "request_id",
    "booking_id",
    "routing_key",
    "variant",  # the arm that scored this row: champion or challenger
    "model_version",
    "served",  # 1: the answer returned; 0: a shadow score
    "cancel_probability",
    "champion_version",
    "challenger_version",  # '' when there was no challenger
    "latency_ms",  # the request's time in the service, parsing to response
)
DDL = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    logged_at TEXT NOT NULL, request_id TEXT NOT NULL, booking_id INTEGER NOT NULL,
    routing_key TEXT NOT NULL, variant TEXT NOT NULL, model_version TEXT NOT NULL,
    served INTEGER NOT NULL, cancel_probability REAL NOT NULL, champion_version TEXT NOT NULL,
    challenger_version TEXT NOT NULL, latency_ms REAL NOT NULL
)
"""


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
        self._pending: list[tuple] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        _connect(path).close()  # fail at start-up, not at the first flush, if it is unwritable

    def append(self, rows: list[tuple]) -> None:
        with self._lock:
            self._pending.extend(rows)

    def flush(self, connection: sqlite3.Connection) -> int:
        with self._lock:
            rows, self._pending = self._pending, []
        if rows:
            try:
                with connection:
                    connection.executemany(
                        f"INSERT INTO {TABLE} VALUES ({', '.join('?' * len(COLUMNS))})", rows
                    )
            except sqlite3.Error:
                with self._lock:  # keep them for the next flush
                    self._pending[:0] = rows
                raise
        return len(rows)

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
    """Every logged prediction (empty, with the columns, before the service logged any)."""
    if not path.exists():
        return pd.DataFrame(columns=list(COLUMNS))
    connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        return pd.read_sql_query(f"SELECT * FROM {TABLE}", connection)
    finally:
        connection.close()
