"""PMS snapshots: what an export taken on an as-of date would have held.

A snapshot on date T holds every booking made before T. Outcomes are as known on T: a booking
that arrived before T, or was cancelled before T, keeps them; one still open on T has its three
outcome columns empty. Replaying the real data as a series of snapshots lets two years of history
arrive as if live, into the landing folder the landing sensor watches.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd

from booking_platform.core.cleaning import outcome_unknown_on, type_bookings
from booking_platform.core.source import OUTCOME_COLUMNS

SNAPSHOT_NAME = re.compile(r"^bookings_(\d{4}-\d{2}-\d{2})\.csv(\.gz)?$")


def snapshot_name(as_of: date) -> str:
    return f"bookings_{as_of.isoformat()}.csv.gz"


@dataclass(frozen=True)
class LandedSnapshot:
    as_of: date
    path: Path
    signature: str  # size and modification time: a file landed again has a new one


class UnusableSnapshot(OSError):
    """A landing entry named like a snapshot that cannot be ingested; the message says why."""


def check_landed(landing_dir: Path, path: Path) -> LandedSnapshot:
    """The snapshot at `path`, readable now, or UnusableSnapshot naming the entry and the reason.

    A symlink is followed only when its target is inside the landing folder: the folder is the
    trust boundary (what lands there is what the PMS exported), so a link out of it is refused.
    """
    as_of = snapshot_as_of(path)
    if as_of is None:
        raise UnusableSnapshot(f"{path}: not a snapshot name (bookings_YYYY-MM-DD.csv[.gz])")
    try:
        target = path.resolve(strict=True)
        if not target.is_relative_to(landing_dir.resolve()):
            raise UnusableSnapshot(f"{path}: a link to {target}, outside the landing folder")
        status = os.stat(target)
        if not stat.S_ISREG(status.st_mode):
            raise UnusableSnapshot(f"{path}: not a regular file")
        with open(target, "rb"):  # readable now (permissions), not only listed
            pass
    except UnusableSnapshot:
        raise
    except OSError as error:  # dangling link, removed since listing, permission denied
        raise UnusableSnapshot(f"{path}: cannot be read ({error.strerror or error})") from error
    return LandedSnapshot(as_of, path, f"{status.st_size}:{status.st_mtime_ns}")


def scan_landing(landing_dir: Path) -> tuple[list[LandedSnapshot], list[str]]:
    """The usable snapshots in the landing folder, oldest first, and why each other entry named
    like a snapshot is not usable (one bad entry never hides the others)."""
    try:
        entries = list(landing_dir.iterdir())
    except OSError:  # no landing folder (yet)
        return [], []
    usable, refused = [], []
    for path in entries:
        if snapshot_as_of(path) is None:
            continue
        try:
            usable.append(check_landed(landing_dir, path))
        except UnusableSnapshot as error:
            refused.append(str(error))
    return sorted(usable, key=lambda s: (s.as_of, s.path.name)), sorted(refused)


def snapshot_path(landing_dir: Path, as_of: date) -> Path | None:
    """The snapshot landed for `as_of` (.csv.gz or .csv), if any.

    Raises UnusableSnapshot when one is there but cannot be ingested (rather than silently
    reading the configured source instead).
    """
    for name in (snapshot_name(as_of), snapshot_name(as_of).removesuffix(".gz")):
        path = landing_dir / name
        if path.is_symlink() or path.exists():
            return check_landed(landing_dir, path).path
    return None


def snapshot_as_of(path: Path) -> date | None:
    """The as-of date a landing file's name declares, or None for a name that is not a snapshot."""
    match = SNAPSHOT_NAME.match(path.name)
    if match is None:
        return None
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        return None


def take_snapshot(raw: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """The rows (raw text, with booking_id) of an export taken on `as_of`.

    Rows whose dates do not parse are kept in every snapshot, so cleaning quarantines them with
    a reason instead of the replay losing them.
    """
    typed = type_bookings(raw)
    cutoff = pd.Timestamp(as_of)
    undated = typed["booking_date"].isna()
    made = (typed["booking_date"] < cutoff) | undated
    still_open = outcome_unknown_on(typed, cutoff)
    snapshot = raw[made.to_numpy()].copy()
    snapshot.loc[still_open[made].to_numpy(), list(OUTCOME_COLUMNS)] = None
    return snapshot


def parse_month_or_date(text: str) -> date:
    """YYYY-MM (the first of that month) or YYYY-MM-DD."""
    return date.fromisoformat(f"{text}-01" if len(text) == 7 else text)


def month_starts(first: date, last: date) -> list[date]:
    """The first day of every month from `first`'s month to `last`'s month, inclusive."""
    return [d.date() for d in pd.date_range(first.replace(day=1), last.replace(day=1), freq="MS")]


def write_snapshot(raw: pd.DataFrame, as_of: date, landing_dir: Path) -> Path:
    """Write the snapshot atomically (a watcher never sees half a file); returns its path."""
    landing_dir.mkdir(parents=True, exist_ok=True)
    path = landing_dir / snapshot_name(as_of)
    partial = landing_dir / f".{path.name}.part"
    take_snapshot(raw, as_of).to_csv(
        partial, index=False, compression={"method": "gzip", "compresslevel": 1}
    )
    partial.rename(path)
    return path
