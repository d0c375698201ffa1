"""Reading a bookings source (CSV, gzipped or zipped CSV, or URL) into a frame of raw strings.

Everything that makes the whole file unusable (missing file, unreadable or truncated zip or gzip,
empty file, wrong delimiter, missing or duplicated column, text in a numeric column, a booking_id
that is not a unique whole number) raises SourceError naming the file and the problem, before
anything downstream is written. Row-level problems are left to cleaning, which quarantines them.
"""

from __future__ import annotations

import calendar
import gzip
import hashlib
import urllib.request
import zipfile
import zlib
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from booking_platform.core.bounds import MAX_BOOKING_ID, whole_numbers
from booking_platform.core.shared_strings import share_repeated_strings

# The source schema: column -> kind. "int"/"float" must parse as numbers; "str" is free text.
FEATURE_SOURCE_COLUMNS: dict[str, str] = {
    "hotel": "str",
    "lead_time": "int",
    "arrival_date_year": "int",
    "arrival_date_month": "str",
    "arrival_date_week_number": "int",
    "arrival_date_day_of_month": "int",
    "stays_in_weekend_nights": "int",
    "stays_in_week_nights": "int",
    "adults": "int",
    "children": "float",
    "babies": "int",
    "meal": "str",
    "country": "str",
    "market_segment": "str",
    "distribution_channel": "str",
    "is_repeated_guest": "int",
    "previous_cancellations": "int",
    "previous_bookings_not_canceled": "int",
    "reserved_room_type": "str",
    "assigned_room_type": "str",
    "booking_changes": "int",
    "deposit_type": "str",
    "agent": "float",
    "company": "float",
    "days_in_waiting_list": "int",
    "customer_type": "str",
    "adr": "float",
    "required_car_parking_spaces": "int",
    "total_of_special_requests": "int",
}
# Outcome columns: present in a PMS export, optional in a file sent for scoring.
OUTCOME_COLUMNS: dict[str, str] = {
    "is_canceled": "int",
    "reservation_status": "str",
    "reservation_status_date": "str",
}
SOURCE_SCHEMA: dict[str, str] = {**FEATURE_SOURCE_COLUMNS, **OUTCOME_COLUMNS}
# The closed vocabularies of the data set's dictionary. Hotel, country, agent, company and room
# types are open: a new one is a level the model has not seen, not an error (a chain adds
# hotels; the scaled exports of benchmarks/scaled_export.py have twenty).
CATEGORY_LEVELS: dict[str, tuple[str, ...]] = {
    "arrival_date_month": tuple(calendar.month_name[1:]),
    "meal": ("BB", "FB", "HB", "SC", "Undefined"),
    "market_segment": (
        "Aviation",
        "Complementary",
        "Corporate",
        "Direct",
        "Groups",
        "Offline TA/TO",
        "Online TA",
        "Undefined",
    ),
    "distribution_channel": ("Corporate", "Direct", "GDS", "TA/TO", "Undefined"),
    "deposit_type": ("No Deposit", "Non Refund", "Refundable"),
    "customer_type": ("Contract", "Group", "Transient", "Transient-Party"),
}
NA_MARKERS = ["", "NA", "NULL", "NaN", "nan"]
# What a hotel's name may be: letters, digits, spaces and a little punctuation, up to 80
HOTEL_NAME = r"[A-Za-z0-9][A-Za-z0-9 &'.,()-]{0,79}"


class SourceError(ValueError):
    """The source as a whole cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class RawSource:
    frame: pd.DataFrame  # every column as text (None for NA), plus an int booking_id
    path: Path
    sha256: str


def resolve_source(source: str, cache_dir: Path) -> Path:
    """Return a local path for `source`; an http(s) URL is downloaded once into `cache_dir`."""
    if source.startswith(("http://", "https://")):
        cache_dir.mkdir(parents=True, exist_ok=True)
        target = cache_dir / Path(source.split("?")[0]).name
        if not target.exists():
            partial = target.with_suffix(target.suffix + ".part")
            try:
                urllib.request.urlretrieve(source, partial)  # noqa: S310 (configured URL)
            except OSError as error:
                raise SourceError(f"{source}: download failed: {error}") from error
            partial.rename(target)
        return target
    path = Path(source)
    if not path.exists():
        raise SourceError(f"{path}: file not found (set BOOKINGS_SOURCE to a .csv or .zip)")
    return path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# a zip made on macOS holds, beside the CSV, resource forks under __MACOSX/ named ._<file>
def _is_data_member(name: str) -> bool:
    return name.endswith(".csv") and not name.startswith("__MACOSX/")


@contextmanager
def _open_csv(path: Path) -> Iterator[Path | IO[bytes]]:
    """The CSV's bytes: the file, its one .csv zip member, or the file ungzipped (pandas infers
    gzip and other compressions from the suffix)."""
    if path.suffix != ".zip":
        yield path  # pandas opens (and decompresses) the path itself
        return
    try:
        with zipfile.ZipFile(path) as archive:
            members = [n for n in archive.namelist() if _is_data_member(n)]
            if len(members) != 1:
                raise SourceError(
                    f"{path}: expected exactly one .csv inside the zip, found {members}"
                )
            with archive.open(members[0]) as handle:
                yield handle
    except zipfile.BadZipFile as error:
        raise SourceError(f"{path}: not a readable zip file ({error})") from error


def _read_text_frame(path: Path) -> pd.DataFrame:
    read = dict(dtype=str, keep_default_na=False, na_values=NA_MARKERS)
    try:
        with _open_csv(path) as handle:
            # the header as written: pandas renames a repeated name (adr, adr.1) and a frame
            # read by name would silently use one copy
            header = pd.read_csv(handle, header=None, nrows=1, dtype=str, keep_default_na=False)
        repeated = sorted({n for n in header.iloc[0] if (header.iloc[0] == n).sum() > 1})
        if repeated:
            raise SourceError(f"{path}: column(s) {repeated} appear more than once in the header")
        with _open_csv(path) as handle:
            return share_repeated_strings(pd.read_csv(handle, **read))
    except (EOFError, zlib.error, zipfile.BadZipFile, gzip.BadGzipFile) as error:
        # a truncated .gz or zip member ends early; a corrupt one fails its checksum
        raise SourceError(
            f"{path}: the compressed file is truncated or corrupt ({error})"
        ) from error


def numbers_as_written(values: pd.Series) -> pd.Series:
    """A column of numbers written as text, as float64: NaN where a value is missing or is no
    number. Each distinct text is parsed once: a column of 119k rows holds a few dozen distinct
    values (adr about 9k), and pandas' parser was 13x slower cell by cell (docs/measurements.md)."""
    if values.dtype != object:
        return pd.to_numeric(values, errors="coerce").astype("float64")
    codes, distinct = pd.factorize(values.to_numpy())  # a missing value gets code -1
    parsed = pd.to_numeric(pd.Series(distinct, dtype=object), errors="coerce")
    numbers = np.append(parsed.to_numpy(dtype="float64"), np.nan).take(codes)
    return pd.Series(numbers, index=values.index, name=values.name)


def _check_numeric(frame: pd.DataFrame, path: Path, schema: dict[str, str]) -> None:
    for column, kind in schema.items():
        if kind == "str" or column not in frame:
            continue
        text = frame[column]
        parsed = numbers_as_written(text)
        bad = text.notna() & parsed.isna()
        if bad.any():
            rows = (frame.index[bad] + 2).tolist()  # +2: header line, 1-based lines
            sample = text[bad].unique()[:3].tolist()
            raise SourceError(
                f"{path}: column {column!r} must be numeric but has text {sample} "
                f"on {int(bad.sum())} row(s), file lines {rows[:10]}"
                + (" ..." if len(rows) > 10 else "")
            )


def parse_bookings_frame(
    frame: pd.DataFrame, path: Path, required: Collection[str] = tuple(SOURCE_SCHEMA)
) -> pd.DataFrame:
    """Check a text frame against the source schema and give it a booking_id.

    `required`: the columns the file must have (a whole export by default). The booking_id is
    the source's own column when present, else the 1-based row number in the file, which is
    stable for a given export.
    """
    if frame.empty:
        raise SourceError(f"{path}: the file has no data rows")
    missing = [c for c in required if c not in frame.columns]
    if missing:
        if len(frame.columns) == 1 and any(sep in frame.columns[0] for sep in ";\t|"):
            raise SourceError(
                f"{path}: found a single column {frame.columns[0][:60]!r}...; the file must be "
                "comma-separated (wrong delimiter?)"
            )
        raise SourceError(f"{path}: missing column(s) {missing}")
    _check_numeric(frame, path, SOURCE_SCHEMA)
    frame = frame.copy()
    if "booking_id" in frame.columns:
        ids, invalid = whole_numbers("booking_id", frame["booking_id"])
        bad = invalid | (ids.duplicated(keep=False) & ~invalid)
        if bad.any():
            lines = (frame.index[bad] + 2).tolist()[:10]  # +2: header line, 1-based lines
            values = frame.loc[bad, "booking_id"].head(5).tolist()
            raise SourceError(
                f"{path}: booking_id must be unique whole numbers within 0..{MAX_BOOKING_ID}; "
                f"{int(bad.sum())} row(s) are not, e.g. {values} on file lines {lines}"
            )
        frame["booking_id"] = ids
    else:
        frame.insert(0, "booking_id", pd.RangeIndex(1, len(frame) + 1, dtype="int64"))
    return frame


def read_bookings(path: Path, required: Collection[str] = tuple(SOURCE_SCHEMA)) -> RawSource:
    """Read and check a bookings file; raises SourceError on anything that is not usable.

    `required`: the columns it must have (a whole export by default; see parse_bookings_frame).
    """
    if path.stat().st_size == 0:
        raise SourceError(f"{path}: the file is empty")
    try:
        frame = _read_text_frame(path)
    except pd.errors.EmptyDataError as error:
        raise SourceError(f"{path}: the file is empty") from error
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise SourceError(f"{path}: not a readable CSV ({error})") from error
    frame = parse_bookings_frame(frame, path, required)
    return RawSource(frame=frame, path=path, sha256=file_sha256(path))
