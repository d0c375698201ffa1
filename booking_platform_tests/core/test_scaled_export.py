"""The scaled export: N times the rows, new hotels, the same schema, cleaned like the original."""

from pathlib import Path

import pandas as pd
import pytest

from booking_platform.core.cleaning import clean_bookings
from booking_platform.core.scaled_export import MAX_SHIFT_DAYS, scale_export
from booking_platform.core.source import read_bookings
from booking_platform_tests.synthetic import make_bookings, write_csv


def _export_text(tmp_path: Path, rows: int) -> pd.DataFrame:
    """The export as text, as benchmarks/scaled_export.py reads it."""
    path = write_csv(make_bookings(rows), tmp_path / "export.csv")
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _cleaned(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    frame.to_csv(path, index=False)
    return clean_bookings(read_bookings(path).frame).cleaned


def test_three_times_the_export_is_three_times_the_bookings_of_six_hotels(tmp_path: Path) -> None:
    export = _export_text(tmp_path, 1500)
    scaled = scale_export(export, factor=3, seed=1)

    assert list(scaled.columns) == list(export.columns)
    assert len(scaled) == 3 * len(export)
    assert sorted(scaled["hotel"].unique()) == [
        "City Hotel",
        "City Hotel 2",
        "City Hotel 3",
        "Resort Hotel",
        "Resort Hotel 2",
        "Resort Hotel 3",
    ]
    pd.testing.assert_frame_equal(scaled.head(len(export)), export)  # copy 1 is the export
    assert scaled.equals(scale_export(export, factor=3, seed=1))  # seeded
    assert not scaled.equals(scale_export(export, factor=3, seed=2))

    original = _cleaned(export, tmp_path / "x1.csv")
    cleaned = _cleaned(scaled, tmp_path / "x3.csv")
    assert len(cleaned) == 3 * len(original)  # nothing more quarantined
    assert cleaned["booking_id"].is_unique
    copy = cleaned[cleaned["hotel"].str.endswith(" 2")].reset_index(drop=True)
    first = original.reset_index(drop=True)
    moved = (copy["arrival_date"] - first["arrival_date"]).dt.days
    assert moved.between(-MAX_SHIFT_DAYS, MAX_SHIFT_DAYS).all() and moved.nunique() > 1
    assert copy["lead_time"].equals(first["lead_time"])
    assert (copy["booking_date"] - first["booking_date"]).dt.days.equals(moved)
    status_moved = (copy["reservation_status_date"] - first["reservation_status_date"]).dt.days
    assert status_moved.equals(moved)
    ratio = copy["adr"][first["adr"] > 0] / first["adr"][first["adr"] > 0]
    assert ratio.between(0.75, 1.35).all() and ratio.std() > 0.01


def test_a_scaled_export_keeps_its_booking_ids_unique_when_it_has_them(tmp_path: Path) -> None:
    export = _export_text(tmp_path, 200).assign(booking_id=lambda f: (f.index * 7 + 3).astype(str))
    scaled = scale_export(export, factor=4)
    assert scaled["booking_id"].is_unique and len(scaled) == 800
    assert scaled["booking_id"].head(200).equals(export["booking_id"])


def test_a_factor_below_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        scale_export(_export_text(tmp_path, 10), factor=0)
