from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from booking_platform.core.cleaning import clean_bookings, history, open_bookings
from booking_platform.core.snapshots import (
    month_starts,
    snapshot_as_of,
    take_snapshot,
    write_snapshot,
)
from booking_platform.core.source import OUTCOME_COLUMNS, read_bookings
from booking_platform_tests.synthetic import make_bookings, write_csv

AS_OF = date(2016, 9, 1)


@pytest.fixture
def raw(tmp_path: Path) -> pd.DataFrame:
    return read_bookings(write_csv(make_bookings(3000), tmp_path / "full.csv")).frame


def test_a_snapshot_holds_what_was_known_on_its_date(raw: pd.DataFrame, tmp_path: Path) -> None:
    path = write_snapshot(raw, AS_OF, tmp_path / "landing")
    assert path.name == "bookings_2016-09-01.csv.gz" and snapshot_as_of(path) == AS_OF
    snapshot = read_bookings(path).frame
    full = clean_bookings(raw).cleaned.set_index("booking_id")
    made = full.loc[snapshot["booking_id"]]
    assert (made["booking_date"] < pd.Timestamp(AS_OF)).all()
    assert len(snapshot) == int((full["booking_date"] < pd.Timestamp(AS_OF)).sum())

    unlabelled = snapshot["is_canceled"].isna().to_numpy()
    assert unlabelled.any()
    # empty outcomes exactly for bookings still open on the date, all three columns at once
    assert snapshot.loc[unlabelled, list(OUTCOME_COLUMNS)].isna().all().all()
    still_open = made["arrival_date"].ge(pd.Timestamp(AS_OF)) & ~(
        made["reservation_status"].eq("Canceled")
        & made["reservation_status_date"].lt(pd.Timestamp(AS_OF))
    )
    assert (still_open.to_numpy() == unlabelled).all()


def test_a_snapshot_gives_the_same_history_and_open_bookings_as_the_full_export(
    raw: pd.DataFrame,
) -> None:
    cleaned = clean_bookings(take_snapshot(raw, AS_OF), AS_OF)
    assert cleaned.quarantined.empty
    full = clean_bookings(raw).cleaned
    for part in (history, open_bookings):
        ours, theirs = part(cleaned.cleaned, AS_OF), part(full, AS_OF)
        assert ours["booking_id"].tolist() == theirs["booking_id"].tolist()
    assert history(cleaned.cleaned, AS_OF)["is_canceled"].dtype == "int64"


def test_missing_outcomes_are_quarantined_where_they_cannot_be_missing(
    raw: pd.DataFrame,
) -> None:
    snapshot = take_snapshot(raw, AS_OF).reset_index(drop=True)
    typed = clean_bookings(snapshot).cleaned.set_index("booking_id")
    arrived = snapshot.index[
        typed.loc[snapshot["booking_id"], "arrival_date"].lt(pd.Timestamp(AS_OF)).to_numpy()
    ]
    snapshot.loc[arrived[0], list(OUTCOME_COLUMNS)] = None
    snapshot.loc[arrived[1], "reservation_status"] = None
    result = clean_bookings(snapshot, AS_OF)
    reasons = dict(zip(result.quarantined["booking_id"], result.quarantined["reason"], strict=True))
    assert reasons == {
        snapshot.loc[arrived[0], "booking_id"]: (
            "arrived before the snapshot date but has no outcome"
        ),
        snapshot.loc[arrived[1], "booking_id"]: (
            "outcome columns partly empty; unknown reservation_status"
        ),
    }
    assert len(result.cleaned) + len(result.quarantined) == len(snapshot)


def test_month_starts_and_snapshot_names() -> None:
    assert month_starts(date(2016, 11, 15), date(2017, 2, 1)) == [
        date(2016, 11, 1),
        date(2016, 12, 1),
        date(2017, 1, 1),
        date(2017, 2, 1),
    ]
    assert snapshot_as_of(Path("bookings_2017-02-30.csv")) is None
    assert snapshot_as_of(Path("notes.txt")) is None
    assert snapshot_as_of(Path("bookings_2017-02-01.csv")) == date(2017, 2, 1)
