"""A corpus of bad exports and landing entries against a home holding an accepted export.

Each case runs the ingestion of the platform's own job (raw_bookings, cleaned_bookings, their
blocking checks, accepted_bookings) in process on a real Dagster instance and DuckDB file, or
scans the landing folder the way the landing sensor does, and prints one line: the case, what
the platform did (refused by which step or check, with the first words of its message, or
accepted), whether the published tables are what the case expects (unchanged after a refusal),
and the verdict OK / WRONG. Exit code 1 when any case is WRONG.

    .venv/bin/python benchmarks/bad_inputs.py [--rows 12000] [--source FILE]

Without --source the good export is synthetic (booking_platform_tests/synthetic.py); with it,
the corpus is derived from that file (e.g. the real data).
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import dagster as dg
import pandas as pd

from booking_platform.config import Settings
from booking_platform.core import warehouse
from booking_platform.core.snapshots import scan_landing, snapshot_name, write_snapshot
from booking_platform.core.source import read_bookings
from booking_platform.definitions import build_definitions
from booking_platform.defs.jobs import MAIN_JOB_NAME
from booking_platform.defs.partitions import as_of_partitions

AS_OF = date(2017, 5, 1)
INGESTION = [dg.AssetKey(k) for k in ("raw_bookings", "cleaned_bookings", "accepted_bookings")]
TABLES = ("raw_bookings", "cleaned_bookings", "quarantined_bookings")


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[pd.DataFrame, Path], Path]  # from the good export's text frame to a file
    accepted: bool = False  # what the platform must do
    as_of: date = AS_OF


def _csv(frame: pd.DataFrame, path: Path) -> Path:
    frame.drop(columns="booking_id").to_csv(path, index=False)
    return path


def _text(content: bytes) -> Callable[[pd.DataFrame, Path], Path]:
    def make(_: pd.DataFrame, path: Path) -> Path:
        path.write_bytes(content)
        return path

    return make


def _edit(change: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[pd.DataFrame, Path], Path]:
    return lambda frame, path: _csv(change(frame.copy()), path)


def _set(column: str, value: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame[column] = value
        return frame

    return change


def _truncated_gzip(frame: pd.DataFrame, path: Path) -> Path:
    gz = path.with_suffix(".csv.gz")
    data = gzip.compress(frame.drop(columns="booking_id").to_csv(index=False).encode())
    gz.write_bytes(data[: len(data) // 2])
    return gz


def _first_and_last(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.iloc[[0, len(frame) - 1]]


EXPORT_CASES = [
    Case("missing column deposit_type", _edit(lambda f: f.drop(columns="deposit_type"))),
    Case("semicolon-separated", lambda f, p: (f.to_csv(p, sep=";", index=False), p)[1]),
    Case("text in adr", _edit(lambda f: f.assign(adr=f["adr"].where(f.index != 3, "cheap")))),
    Case("empty file", _text(b"")),
    Case("header only", lambda f, p: _csv(f.head(0), p)),
    Case("broken zip", lambda f, p: _text(b"PK\x03\x04 truncated")(f, p.with_suffix(".zip"))),
    Case("binary garbage", _text(bytes(range(256)) * 64)),
    Case("truncated gzip", _truncated_gzip),
    Case(
        "duplicated booking_id", lambda f, p: (f.assign(booking_id=1).to_csv(p, index=False), p)[1]
    ),
    Case("two rows (shrinks ~100%)", _edit(_first_and_last)),
    Case("70% of the rows (shrinks 30%)", _edit(lambda f: f.head(int(len(f) * 0.7)))),
    Case("90% of the rows (shrinks 10%)", _edit(lambda f: f.head(int(len(f) * 0.9))), True),
    Case("every row invalid (adr -1)", _edit(_set("adr", "-1"))),
    Case("every arrival in 2030", _edit(_set("arrival_date_year", "2030"))),
    Case("every arrival month misspelt", _edit(_set("arrival_date_month", "Juli"))),
    Case("the whole export again (grows)", _edit(lambda f: f), True),
    Case("as-of 1990-01-01", _edit(lambda f: f), as_of=date(1990, 1, 1)),
    Case("as-of 2030-01-01", _edit(lambda f: f), as_of=date(2030, 1, 1)),
]


def _published(settings: Settings) -> dict[str, tuple]:
    with warehouse.connect(settings.warehouse_path, read_only=True) as connection:
        return {
            t: connection.execute(f"SELECT count(*), sum(hash(booking_id)) FROM {t}").fetchone()
            for t in TABLES
        }


def _ingest(settings: Settings, instance: dg.DagsterInstance) -> tuple[bool, str]:
    """Run the ingestion; (accepted, what happened in a few words)."""
    job = build_definitions(settings).resolve_job_def(MAIN_JOB_NAME)
    instance.add_dynamic_partitions(as_of_partitions.name, [str(settings.as_of)])
    result = job.execute_in_process(
        instance=instance,
        partition_key=str(settings.as_of),
        raise_on_error=False,
        asset_selection=INGESTION,
        run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
    )
    if result.success:
        return True, "accepted"
    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            check = event.asset_check_evaluation_data
            if not check.passed:
                return False, f"refused by check {check.check_name}: {check.description}"
        if event.is_step_failure:
            error = event.step_failure_data.error
            message = (error.cause or error).message.strip().splitlines()[0]
            return False, f"refused by step {event.step_key}: {message}"
    return False, "failed without a named step"


def _landing_cases(root: Path, raw: pd.DataFrame) -> list[tuple[str, bool, str]]:
    """(case, handled as expected, what the scan said) for bad landing entries."""
    landing = root / "landing"
    good = write_snapshot(raw, AS_OF, landing)
    outside = root / "outside.csv.gz"
    outside.write_bytes(good.read_bytes())
    (landing / snapshot_name(date(2017, 6, 1))).symlink_to(outside)
    (landing / snapshot_name(date(2017, 7, 1))).symlink_to(landing / "gone.csv.gz")
    (landing / snapshot_name(date(2017, 8, 1))).mkdir()
    unreadable = landing / snapshot_name(date(2017, 9, 1))
    unreadable.write_bytes(good.read_bytes())
    unreadable.chmod(0)
    usable, refused = scan_landing(landing)

    def reason(day: date) -> str:
        name = snapshot_name(day)
        return next((r.split(f"{name}: ", 1)[1] for r in refused if f"/{name}: " in r), "ingested")

    root_can_read = os.geteuid() == 0  # permissions do not stop root
    return [
        (
            "landing: link out of the folder",
            "outside the landing" in reason(date(2017, 6, 1)),
            reason(date(2017, 6, 1)),
        ),
        (
            "landing: dangling link",
            "cannot be read" in reason(date(2017, 7, 1)),
            reason(date(2017, 7, 1)),
        ),
        (
            "landing: folder named like a snapshot",
            "not a regular" in reason(date(2017, 8, 1)),
            reason(date(2017, 8, 1)),
        ),
        (
            "landing: unreadable file",
            root_can_read or "cannot be read" in reason(date(2017, 9, 1)),
            "root can read it: ingested" if root_can_read else reason(date(2017, 9, 1)),
        ),
        (
            "landing: the good snapshot still ingested",
            [s.path.name for s in usable] == [good.name] + ([unreadable.name] * root_can_read),
            ", ".join(s.path.name for s in usable),
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, help="the good export (default: synthetic)")
    parser.add_argument("--rows", type=int, default=12000, help="synthetic rows (no --source)")
    args = parser.parse_args(argv)
    wrong = 0
    with tempfile.TemporaryDirectory(prefix="bad-inputs-") as folder:
        root = Path(folder)
        if args.source:
            good = args.source
        else:
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
            from booking_platform_tests.synthetic import make_bookings, write_csv

            good = write_csv(make_bookings(args.rows), root / "good.csv")
        raw = read_bookings(good).frame
        settings = Settings(home=root / "home", source=str(good), as_of=AS_OF)
        (root / "dagster").mkdir()
        with dg.instance_for_test(temp_dir=str(root / "dagster")) as instance:
            accepted, said = _ingest(settings, instance)
            assert accepted, f"the good export was not accepted: {said}"
            for case in EXPORT_CASES:
                source = case.make(raw, root / f"{len(os.listdir(root))}.csv")
                before = _published(settings)
                accepted, said = _ingest(
                    replace(settings, source=str(source), as_of=case.as_of), instance
                )
                unchanged = _published(settings) == before
                ok = accepted == case.accepted and (accepted or unchanged)
                wrong += not ok
                tables = "tables unchanged" if unchanged else "tables replaced"
                print(f"{'OK   ' if ok else 'WRONG'} {case.name:32} {tables:16} {said[:150]}")
        for name, ok, said in _landing_cases(root, raw):
            wrong += not ok
            print(f"{'OK   ' if ok else 'WRONG'} {name:32} {'':16} {said[:150]}")
    print(f"{wrong} case(s) WRONG" if wrong else "every case handled as expected")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
