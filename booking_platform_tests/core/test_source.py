import gzip
import http.server
import threading
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from booking_platform.core.features import SCORING_COLUMNS
from booking_platform.core.source import (
    SourceError,
    numbers_as_written,
    read_bookings,
    resolve_source,
)
from booking_platform_tests.synthetic import make_bookings, write_csv


def test_reads_csv_and_zip_with_stable_booking_ids(tmp_path: Path) -> None:
    csv = write_csv(make_bookings(50), tmp_path / "b.csv")
    archive = tmp_path / "b.csv.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.write(csv, "b.csv")
    from_csv, from_zip = read_bookings(csv), read_bookings(archive)
    assert from_csv.frame["booking_id"].tolist() == list(range(1, 51))
    pd.testing.assert_frame_equal(from_csv.frame, from_zip.frame)
    assert from_csv.sha256 != from_zip.sha256 and len(from_csv.sha256) == 64


def test_keeps_the_sources_own_booking_id(tmp_path: Path) -> None:
    frame = make_bookings(5).assign(booking_id=[50, 40, 30, 20, 10])
    source = read_bookings(write_csv(frame, tmp_path / "b.csv"))
    assert source.frame["booking_id"].tolist() == [50, 40, 30, 20, 10]


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="nope.csv: file not found"):
        resolve_source(str(tmp_path / "nope.csv"), tmp_path / "cache")


def test_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(SourceError, match="empty.csv: the file is empty"):
        read_bookings(empty)
    header_only = tmp_path / "header.csv"
    header_only.write_text(",".join(make_bookings(1).columns) + "\n")
    with pytest.raises(SourceError, match="header.csv: the file has no data rows"):
        read_bookings(header_only)


def test_missing_column_is_named(tmp_path: Path) -> None:
    path = write_csv(make_bookings(20).drop(columns=["adr", "hotel"]), tmp_path / "b.csv")
    with pytest.raises(SourceError, match=r"b.csv: missing column\(s\) \['hotel', 'adr'\]"):
        read_bookings(path)


def test_wrong_delimiter(tmp_path: Path) -> None:
    path = tmp_path / "semicolons.csv"
    make_bookings(20).to_csv(path, sep=";", index=False)
    with pytest.raises(SourceError, match="semicolons.csv: .*comma-separated"):
        read_bookings(path)


def test_text_in_numeric_column_names_column_and_lines(tmp_path: Path) -> None:
    frame = make_bookings(20).astype({"lead_time": object})
    frame.loc[[3, 7], "lead_time"] = "soon"
    path = write_csv(frame, tmp_path / "b.csv")
    with pytest.raises(SourceError, match=r"column 'lead_time' .*'soon'.* file lines \[5, 9\]"):
        read_bookings(path)


def test_unreadable_zip(tmp_path: Path) -> None:
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(SourceError, match="broken.zip: not a readable zip"):
        read_bookings(broken)


def test_scoring_files_may_omit_outcomes(tmp_path: Path) -> None:
    frame = make_bookings(10).drop(
        columns=["is_canceled", "reservation_status", "reservation_status_date"]
    )
    path = write_csv(frame, tmp_path / "to_score.csv")
    assert len(read_bookings(path, required=SCORING_COLUMNS).frame) == 10
    with pytest.raises(SourceError, match="missing column"):
        read_bookings(path)


def test_a_url_source_is_downloaded_once_and_cached(tmp_path: Path) -> None:
    served = tmp_path / "served"
    served.mkdir()
    write_csv(make_bookings(30), served / "hotel_bookings.csv")
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, directory=str(served), **kwargs)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/hotel_bookings.csv"
        first = resolve_source(url, tmp_path / "cache")
        second = resolve_source(url, tmp_path / "cache")
    finally:
        server.shutdown()
        thread.join()
    assert first == second == tmp_path / "cache" / "hotel_bookings.csv"
    assert requests == ["/hotel_bookings.csv"]
    assert len(read_bookings(first).frame) == 30


@pytest.mark.parametrize(
    ("ids", "bad"),
    [
        (["1.1", "1.9"], "['1.1', '1.9'] on file lines [2, 3]"),  # both were read as 1
        (["1e30", "2"], "['1e30'] on file lines [2]"),  # was -9223372036854775808
        (["9223372036854775808", "2"], "['9223372036854775808']"),  # one past int64
        (["-4", "2"], "['-4']"),
        (["7", "7"], "['7', '7'] on file lines [2, 3]"),
    ],
)
def test_booking_ids_must_be_unique_whole_numbers_in_range(
    tmp_path: Path, ids: list[str], bad: str
) -> None:
    frame = make_bookings(5).astype({"is_canceled": object})
    frame.insert(0, "booking_id", ids + [str(i) for i in range(100, 103)])
    with pytest.raises(
        SourceError, match="b.csv: booking_id must be unique whole numbers"
    ) as raised:
        read_bookings(write_csv(frame, tmp_path / "b.csv"))
    assert bad in str(raised.value)


def test_the_largest_booking_id_is_read_exactly(tmp_path: Path) -> None:
    frame = make_bookings(2)
    frame.insert(0, "booking_id", ["9223372036854775807", "9223372036854775806"])
    source = read_bookings(write_csv(frame, tmp_path / "b.csv"))
    assert source.frame["booking_id"].tolist() == [2**63 - 1, 2**63 - 2]


def test_a_duplicated_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "twice.csv"
    frame = make_bookings(5)
    text = frame.to_csv(index=False).splitlines()
    # a second adr column appended to the header and every row: pandas would call it adr.1
    path.write_text("\n".join([text[0] + ",adr"] + [line + ",5" for line in text[1:]]) + "\n")
    with pytest.raises(
        SourceError, match=r"twice.csv: column\(s\) \['adr'\] appear more than once"
    ):
        read_bookings(path)


def test_a_zip_from_macos_with_its_resource_fork_is_read(tmp_path: Path) -> None:
    csv = write_csv(make_bookings(20), tmp_path / "b.csv")
    archive = tmp_path / "b.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.write(csv, "b.csv")
        handle.writestr("__MACOSX/._b.csv", b"\x00\x05\x16\x07 resource fork")
    assert len(read_bookings(archive).frame) == 20


def test_a_truncated_gzip_names_the_file(tmp_path: Path) -> None:
    csv = write_csv(make_bookings(2000), tmp_path / "b.csv")
    whole = gzip.compress(csv.read_bytes())
    truncated = tmp_path / "bookings_2017-05-01.csv.gz"
    truncated.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(SourceError, match="bookings_2017-05-01.csv.gz: the compressed file is"):
        read_bookings(truncated)


def test_numbers_as_written_parse_as_pandas_parses_each_cell() -> None:
    text = pd.Series(
        ["1", "2.50", None, "1", "x", "1e308", "-0", " 3 ", "", "nan", "2.50", "1e400"],
        index=range(10, 22),
        name="adr",
        dtype=object,
    )
    parsed = numbers_as_written(text)
    cell_by_cell = pd.to_numeric(text, errors="coerce").astype("float64")
    pd.testing.assert_series_equal(parsed, cell_by_cell)
    assert parsed.iloc[:3].tolist()[:2] == [1.0, 2.5] and pd.isna(parsed.iloc[2])
    numeric = pd.Series([1, 2, None], dtype="Int64")
    assert numbers_as_written(numeric).tolist()[:2] == [1.0, 2.0]
