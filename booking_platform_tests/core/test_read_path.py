"""Analysts and runs on one warehouse: the read copy never blocks a run; a held lock is named."""

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from booking_platform.core import warehouse
from booking_platform.core.tables import CLEANED_BOOKINGS

AS_OF = date(2017, 5, 1)


@contextmanager
def held_open(path: Path, read_only: bool = True) -> Iterator[subprocess.Popen]:
    """Another process (an analyst's session) holding a DuckDB connection on `path`; it prints
    what it reads on request, so the test sees what an open session sees."""
    session = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys\n"
            f"connection = duckdb.connect({str(path)!r}, read_only={read_only})\n"
            "print('open', flush=True)\n"
            "for line in sys.stdin:\n"
            "    print(connection.execute(line).fetchall(), flush=True)\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert session.stdout.readline().strip() == "open"
        yield session
    finally:
        os.kill(session.pid, signal.SIGKILL)
        session.wait(timeout=10)


def _ask(session: subprocess.Popen, sql: str) -> str:
    session.stdin.write(sql + "\n")
    session.stdin.flush()
    return session.stdout.readline().strip()


def _write(path: Path, rows: int, lock_wait_seconds: float = 2) -> None:
    frame = pd.DataFrame({"booking_id": range(rows)})
    with warehouse.connect(path, lock_wait_seconds=lock_wait_seconds) as connection:
        warehouse.replace_slices(connection, AS_OF, {CLEANED_BOOKINGS.name: frame})


def test_an_analyst_on_the_read_copy_never_blocks_a_run(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    _write(path, 3)
    copy = warehouse.publish_read_copy(path)
    assert copy == tmp_path / "warehouse_read.duckdb"
    with held_open(copy) as analyst:
        assert _ask(analyst, f"SELECT count(*) FROM {CLEANED_BOOKINGS.name}") == "[(3,)]"
        _write(path, 5)  # a run writes while the analyst's session stays open
        assert warehouse.publish_read_copy(path, lock_wait_seconds=2) == copy
        # the open session keeps its consistent (older) state; a new one sees the new run
        assert _ask(analyst, f"SELECT count(*) FROM {CLEANED_BOOKINGS.name}") == "[(3,)]"
    with warehouse.connect(copy, read_only=True) as connection:
        assert connection.execute(f"SELECT count(*) FROM {CLEANED_BOOKINGS.name}").fetchone() == (
            5,
        )
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


def test_a_run_meeting_a_held_lock_waits_a_bounded_time_and_names_it(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    _write(path, 3)
    with held_open(path) as analyst:
        with pytest.raises(warehouse.WarehouseLocked) as refused:
            _write(path, 5, lock_wait_seconds=1)
        message = str(refused.value)
        assert f"could not lock the warehouse {path} within 1 s" in message
        assert f"PID {analyst.pid}" in message
        assert "warehouse_read.duckdb instead" in message
    _write(path, 5)  # the lock released, the run goes on
