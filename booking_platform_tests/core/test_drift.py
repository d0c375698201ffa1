"""Like-with-like drift on real Evidently runs: a stable snapshot passes, a drifted one not."""

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from booking_platform.core.cleaning import clean_bookings
from booking_platform.core.drift import compute_drift, drift_verdict, seasonal_reference
from booking_platform.core.features import build_feature_set
from booking_platform.core.source import read_bookings
from booking_platform_tests.synthetic import make_bookings, write_csv

AS_OF = date(2017, 3, 1)


@pytest.fixture(scope="module")
def cleaned(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    path = write_csv(make_bookings(12000), tmp_path_factory.mktemp("drift") / "b.csv")
    return clean_bookings(read_bookings(path).frame).cleaned


def _verdict(cleaned: pd.DataFrame, tmp_path: Path) -> tuple[str | None, float]:
    feature_set = build_feature_set(cleaned, AS_OF)
    reference = seasonal_reference(feature_set)
    assert reference is not None
    summary = compute_drift(reference, feature_set.part("open")[1], tmp_path / "drift.html")
    assert (tmp_path / "drift.html").stat().st_size > 0
    return drift_verdict(summary.drift_share, summary.column_scores), summary.drift_share


def test_a_stable_snapshot_does_not_ask_for_retraining(
    cleaned: pd.DataFrame, tmp_path: Path
) -> None:
    verdict, share = _verdict(cleaned, tmp_path)
    assert verdict is None, verdict
    assert share < 0.5


def test_a_drifted_snapshot_asks_for_retraining(cleaned: pd.DataFrame, tmp_path: Path) -> None:
    # since December the hotel sells mostly to groups, with non-refundable deposits
    recent = cleaned["booking_date"] >= pd.Timestamp("2016-12-01")
    drifted = cleaned.copy()
    drifted.loc[recent, "market_segment"] = "Groups"
    drifted.loc[recent, "deposit_type"] = "Non Refund"
    verdict, _ = _verdict(drifted, tmp_path)
    assert verdict is not None
    assert "market_segment" in verdict and "deposit_type" in verdict


def test_no_reference_when_the_export_does_not_reach_back_a_year(cleaned: pd.DataFrame) -> None:
    young = cleaned[cleaned["arrival_date"] >= pd.Timestamp("2016-06-01")]
    assert seasonal_reference(build_feature_set(young, AS_OF)) is None
