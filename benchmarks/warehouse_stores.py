"""How long the warehouse takes to replace and read the cleaned bookings, DuckDB against PostgreSQL.

The cluster profile moves the tables to PostgreSQL; this prints what that costs for the biggest
slice the platform writes (all cleaned bookings of one as-of date), side by side in one run:
medians of --repeats, each store written then read back, the ratio PostgreSQL / DuckDB.

    .venv/bin/python benchmarks/warehouse_stores.py [--repeats 5]
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _common import base_parser, cpu_snapshot, load_cleaned, median, others_cpu_line
from rich.console import Console
from rich.table import Table

from booking_platform.core import warehouse
from booking_platform_tests.postgres import fresh_database


def _timed(action: Callable[[], object], repeats: int) -> list[float]:
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        seconds.append(time.perf_counter() - start)
    return seconds


def main() -> None:
    args = base_parser(__doc__.splitlines()[0]).parse_args()
    cleaned = load_cleaned(args.source)
    console = Console()
    started, since = time.perf_counter(), cpu_snapshot()
    table = Table(
        title=f"replace and read {len(cleaned):,} cleaned bookings (median of {args.repeats})"
    )
    for column in ("store", "replace slice (s)", "read slice (s)"):
        table.add_column(column)
    figures = {}
    with tempfile.TemporaryDirectory() as folder, fresh_database("bp_bench") as url:
        for store, location in (("DuckDB", str(Path(folder) / "w.duckdb")), ("PostgreSQL", url)):
            with warehouse.connect(location) as connection:
                write = _timed(
                    lambda c=connection: warehouse.replace_slices(
                        c, args.as_of, {"cleaned_bookings": cleaned}
                    ),
                    args.repeats,
                )
                read = _timed(
                    lambda c=connection: warehouse.read_slice(c, "cleaned_bookings", args.as_of),
                    args.repeats,
                )
            figures[store] = (median(write), median(read))
            table.add_row(store, f"{median(write):.2f}", f"{median(read):.2f}")
    (duck_write, duck_read), (pg_write, pg_read) = figures["DuckDB"], figures["PostgreSQL"]
    table.add_row("ratio", f"{pg_write / duck_write:.1f}x", f"{pg_read / duck_read:.1f}x")
    console.print(table)
    console.print(others_cpu_line(since, time.perf_counter() - started)[1])


if __name__ == "__main__":
    main()
