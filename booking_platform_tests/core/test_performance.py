from datetime import date

import pandas as pd
import pytest

from booking_platform.core.performance import realised_performance


def _cleaned() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "booking_id": [1, 2, 3, 4, 5, 6],
            "arrival_date": pd.to_datetime(
                ["2017-03-05", "2017-03-20", "2017-03-25", "2017-04-02", "2017-04-09", "2017-06-01"]
            ),
            "is_canceled": [1, 0, 0, 1, 0, 1],
        }
    )


def _predictions(as_of: str, scores: dict[int, float], version: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "booking_id": list(scores),
            "cancel_probability": list(scores.values()),
            "model_version": version,
            "as_of": pd.Timestamp(as_of).date(),
        }
    )


def test_the_last_score_before_arrival_counts_and_only_arrived_bookings() -> None:
    predictions = pd.concat(
        [
            # first scores: booking 1 looked safe, 2 risky
            _predictions("2017-03-01", {1: 0.1, 2: 0.9, 3: 0.2, 4: 0.6, 5: 0.3, 6: 0.5}, "1"),
            # rescored before arrival by v2: these are the scores that count for 4 and 5
            _predictions("2017-04-01", {4: 0.8, 5: 0.1, 6: 0.7}, "2"),
        ]
    )
    table = realised_performance(predictions, _cleaned(), as_of=date(2017, 5, 1))
    assert table["arrival_month"].tolist() == ["2017-03", "2017-04"]  # June has not arrived
    march, april = table.to_dict("records")
    assert (march["bookings"], march["cancellations"], march["model_versions"]) == (3, 1, "1")
    assert march["roc_auc"] == 0.0  # the cancelled booking had the lowest score
    assert march["mean_probability"] == pytest.approx(0.4)
    assert (april["bookings"], april["model_versions"]) == (2, "2")
    assert april["roc_auc"] == 1.0
    assert april["cancel_rate"] == 0.5


def test_nothing_arrived_yet_gives_an_empty_table() -> None:
    predictions = _predictions("2017-03-01", {1: 0.5}, "1")
    table = realised_performance(predictions, _cleaned(), as_of=date(2017, 3, 1))
    assert table.empty and "roc_auc" in table.columns
