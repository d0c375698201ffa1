from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from booking_platform.core.cleaning import clean_bookings, history
from booking_platform.core.eda import build_eda, duplicate_rows, write_report
from booking_platform.core.source import read_bookings
from booking_platform_tests.synthetic import make_bookings, write_csv

AS_OF = date(2017, 5, 1)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def cleaned(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    frame = make_bookings(3000)
    # a group block entered room by room: row 10 three more times, row 20 once more
    frame = pd.concat([frame, frame.iloc[[10, 10, 10, 20]]], ignore_index=True)
    path = write_csv(frame, tmp_path_factory.mktemp("eda") / "bookings.csv")
    return clean_bookings(read_bookings(path).frame).cleaned


def test_rates_are_the_share_cancelled_among_arrived_bookings(cleaned: pd.DataFrame) -> None:
    report = build_eda(cleaned, AS_OF)
    try:
        views = {view.name: view for view in report.views}
        known = history(cleaned, AS_OF)
        assert report.history_bookings == len(known) < len(cleaned)
        by_hotel = views["by_hotel"].table.set_index("hotel")
        expected = known.groupby("hotel")["is_canceled"].agg(["size", "mean"])
        assert by_hotel["bookings"].to_dict() == expected["size"].to_dict()
        assert by_hotel["cancel_rate"].to_dict() == pytest.approx(expected["mean"].to_dict())
        deposit = views["by_deposit_type"].table.set_index("deposit_type")["cancel_rate"]
        # the synthetic signal: non-refundable deposits are cancelled far more often
        assert deposit["Non Refund"] > deposit["No Deposit"] + 0.3
        assert views["seasonality"].table["bookings"].sum() == len(known)
        assert set(views) >= {
            "seasonality",
            "by_lead_time",
            "by_market_segment",
            "by_customer_type",
            "adr",
            "requests_and_parking",
            "correlations",
            "duplicates",
        }
    finally:
        report.close()


def test_duplicates_are_counted_beyond_the_first_of_each_identical_group(
    cleaned: pd.DataFrame,
) -> None:
    repeated = duplicate_rows(cleaned)
    assert sorted(repeated["copies"].unique().tolist()) == [2, 4]
    assert len(repeated) == 6
    report = build_eda(cleaned, AS_OF)
    report.close()
    assert (report.duplicate_rows, report.duplicate_groups) == (4, 2)
    duplicates = next(view for view in report.views if view.name == "duplicates")
    assert duplicates.note.startswith("4 rows repeat another row in every source column")


def test_report_writes_small_pngs_and_one_self_contained_page(
    cleaned: pd.DataFrame, tmp_path: Path
) -> None:
    report = build_eda(cleaned, AS_OF)
    try:
        paths = write_report(report, tmp_path / "eda")
    finally:
        report.close()
    pictures = [paths[view.name] for view in report.views]
    assert all(p.read_bytes().startswith(PNG_SIGNATURE) for p in pictures)
    # the pictures are stored in Dagster's event log: keep them to tens of kilobytes
    assert max(p.stat().st_size for p in pictures) < 120_000
    page = paths["html"].read_text()
    assert page.count("data:image/png;base64,") == len(report.views)
    assert "Duplicate rows" in page and "Cancellation rate by hotel" in page


def test_no_history_is_a_clear_error(cleaned: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="no bookings arrived before the as-of date 2015-01-01"):
        build_eda(cleaned, date(2015, 1, 1))
