"""Champion/challenger on a real server: sticky routing and its share over 10,000 keys,
shadow scoring, hot reload after an alias move, and the prediction log behind them."""

import threading
import time

import dagster as dg
import httpx
import numpy as np
import pandas as pd

from booking_platform.config import Settings
from booking_platform.core import warehouse
from booking_platform.core.prediction_log import read_prediction_log
from booking_platform.defs.assets.serving import ab_test_report
from booking_platform.defs.resources import build_resources
from booking_platform.serving.routing import bucket, goes_to_challenger
from booking_platform_tests.serving.conftest import as_request, cleaned_rows, set_alias, stop_server
from booking_platform_tests.serving.test_api import BOOKING

KEYS = 10_000
SHARE = 0.3
# binomial sd of the share over 10,000 keys is 0.0046: 0.02 is over 4 sd
SHARE_TOLERANCE = 0.02


def test_buckets_are_stable_and_uniform() -> None:
    buckets = np.array([bucket(str(k)) for k in range(KEYS)])
    assert ((buckets >= 0) & (buckets < 1)).all()
    # blake2b is fixed: the same key lands in the same bucket in any process, any day
    assert bucket("42") == bucket("42") and round(bucket("42"), 12) == round(bucket("42"), 12)
    counts, _ = np.histogram(buckets, bins=10, range=(0, 1))
    assert (abs(counts - KEYS / 10) < 4 * np.sqrt(KEYS / 10)).all(), counts


def _post_all(client: httpx.Client, bookings: list[dict]) -> list[dict]:
    answers = []
    for start in range(0, len(bookings), 1000):
        response = client.post("/predict", json=bookings[start : start + 1000])
        assert response.status_code == 200, response.text
        answers += response.json()
    return answers


def _log(settings: Settings, rows: int, timeout: float = 30) -> pd.DataFrame:
    """The prediction log once it holds `rows` rows (it is written every half second)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = read_prediction_log(settings.online_predictions_path)
        if len(log) >= rows:
            return log
        time.sleep(0.25)
    raise AssertionError(f"the log holds {len(log)} rows, expected {rows}")


def test_ab_routing_is_sticky_and_splits_by_the_configured_share(
    served_home: Settings, serve
) -> None:
    set_alias(served_home, "challenger", "2")
    try:
        server = serve("--challenger-share", str(SHARE))
        bookings = [{**BOOKING, "booking_id": key} for key in range(KEYS)]
        with server.client() as client:
            assert client.get("/models").json()["challenger"]["version"] == "2"
            first = _post_all(client, bookings)
            again = _post_all(client, bookings[::-1])[::-1]
            # the customer, when given, is the routing key: all of one customer's bookings
            # go to the same arm
            customer = [
                {**BOOKING, "booking_id": 50_000 + i, "customer_id": "c-17"} for i in range(40)
            ]
            by_customer = client.post("/predict", json=customer).json()
    finally:
        set_alias(served_home, "challenger", None)
    variants = [a["variant"] for a in first]
    assert variants == [a["variant"] for a in again]  # sticky
    expected = [
        "challenger" if goes_to_challenger(str(k), SHARE) else "champion" for k in range(KEYS)
    ]
    assert variants == expected  # the same hash in every process
    share = variants.count("challenger") / KEYS
    assert abs(share - SHARE) < SHARE_TOLERANCE, share
    assert {(a["variant"], a["model_version"]) for a in first} == {
        ("champion", "1"),
        ("challenger", "2"),
    }
    assert len({a["variant"] for a in by_customer}) == 1
    assert by_customer[0]["variant"] == (
        "challenger" if goes_to_challenger("c-17", SHARE) else "champion"
    )

    log = _log(served_home, 2 * KEYS + 40)
    assert len(log) == 2 * KEYS + 40 and (log["served"] == 1).all()
    served = log.groupby("variant")["model_version"].unique().to_dict()
    assert {k: list(v) for k, v in served.items()} == {"champion": ["1"], "challenger": ["2"]}
    assert set(log["champion_version"]) == {"1"} and set(log["challenger_version"]) == {"2"}
    assert (log["latency_ms"] > 0).all() and log["logged_at"].str.endswith("+00:00").all()


def test_shadow_mode_scores_the_challenger_but_answers_with_the_champion(
    served_home: Settings, serve
) -> None:
    cleaned = cleaned_rows(served_home).head(300)
    bookings = [as_request(row) for _, row in cleaned.iterrows()]
    set_alias(served_home, "challenger", "2")
    try:
        server = serve("--shadow", "--challenger-share", "0.5")
        with server.client() as client:
            answers = _post_all(client, bookings)
            assert client.get("/models").json()["shadow"] is True
    finally:
        set_alias(served_home, "challenger", None)
    assert {(a["variant"], a["model_version"]) for a in answers} == {("champion", "1")}
    log = _log(served_home, 2 * len(bookings))
    shadow = log[log["served"] == 0].set_index("booking_id")
    served = log[log["served"] == 1].set_index("booking_id")
    assert len(shadow) == len(served) == len(bookings)
    assert set(shadow["variant"]) == {"challenger"} and set(shadow["model_version"]) == {"2"}
    # the shadow score is the challenger's own: a different model, so different numbers
    assert not np.allclose(shadow["cancel_probability"], served["cancel_probability"])
    np.testing.assert_allclose(
        served.loc[[a["booking_id"] for a in answers], "cancel_probability"],
        [a["cancel_probability"] for a in answers],
    )


def test_hot_reload_after_the_champion_alias_moves(served_home: Settings, serve) -> None:
    # one worker: each worker polls and swaps on its own, so across two a client may meet the
    # new version on one connection and the old on another for up to a poll and a load
    server = serve("--poll-seconds", "0.5", "--workers", "1")
    statuses: list[tuple[int, str]] = []
    stop = threading.Event()

    def keep_predicting() -> None:
        with server.client() as client:
            while not stop.is_set():
                response = client.post("/predict", json=BOOKING)
                statuses.append((response.status_code, response.json().get("model_version")))

    traffic = threading.Thread(target=keep_predicting)
    traffic.start()
    try:
        with server.client() as client:
            assert client.get("/models").json()["champion"]["version"] == "1"
            time.sleep(0.5)
            set_alias(served_home, "champion", "2")
            deadline = time.monotonic() + 60
            while client.get("/models").json()["champion"]["version"] != "2":
                assert time.monotonic() < deadline, "the new champion was not picked up"
                time.sleep(0.2)
            answer = client.post("/predict", json=BOOKING).json()
            time.sleep(0.5)
    finally:
        stop.set()
        traffic.join()
        set_alias(served_home, "champion", "1")
    assert answer["model_version"] == "2" and answer["variant"] == "champion"
    # traffic during the swap: every answer whole, from one version or the other
    assert {status for status, _ in statuses} == {200}
    assert {version for _, version in statuses} == {"1", "2"}
    versions = [version for _, version in statuses]
    assert versions == sorted(versions)  # never back to the old model once swapped


def test_ab_test_report_compares_the_arms_on_labelled_traffic(served_home: Settings, serve) -> None:
    cleaned = cleaned_rows(served_home)
    history = cleaned[cleaned["arrival_date"] < pd.Timestamp(served_home.as_of)].head(2400)
    bookings = [as_request(row) for _, row in history.iterrows()]
    set_alias(served_home, "challenger", "2")
    try:
        with serve("--challenger-share", "0.5").client() as client:
            _post_all(client, bookings[:1200])
        with serve("--shadow").client() as client:
            _post_all(client, bookings[1200:])
        _log(served_home, 1200 + 2 * 1200)
        with dg.instance_for_test() as instance:
            result = dg.materialize(
                [ab_test_report], resources=build_resources(served_home), instance=instance
            )
    finally:
        set_alias(served_home, "challenger", None)
    assert result.success
    (event,) = result.get_asset_materialization_events()
    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    assert (metadata["champion_version"], metadata["challenger_version"]) == ("1", "2")
    assert metadata["logged_predictions"] == 3600
    # the champion answered its A/B half and all of the shadow phase; the challenger scored
    # its A/B half and shadowed the rest
    assert metadata["champion_labelled"] + metadata["challenger_labelled"] == 1200 + 2 * 1200
    assert metadata["champion_roc_auc"] > 0.8 and metadata["challenger_roc_auc"] > 0.7
    assert metadata["paired_labelled_bookings"] == 1200
    assert metadata["paired_champion_roc_auc"] > 0.8 and "paired_note" not in metadata
    with warehouse.connect(served_home.warehouse_path, read_only=True) as connection:
        table = warehouse.read_table(connection, "ab_test_report")
    assert set(zip(table["variant"], table["model_version"], strict=True)) == {
        ("champion", "1"),
        ("challenger", "2"),
    }
    assert table["served"].sum() == 2400 and table["shadow"].sum() == 1200


def test_predictions_waiting_in_memory_are_written_when_the_server_stops(
    served_home: Settings, serve
) -> None:
    """The log is written off the request path; a normal stop (SIGTERM to every worker) must
    still write what is waiting, in each of the two workers."""
    set_alias(served_home, "challenger", None)
    bookings = [as_request(row) for _, row in cleaned_rows(served_home).head(40).iterrows()]
    server = serve("--workers", "2", env={"BOOKING_SERVE_LOG_FLUSH_SECONDS": "3600"})
    for booking in bookings:  # a connection each: the kernel spreads them over the workers
        response = httpx.post(f"{server.url}/predict", json=booking, timeout=30)
        assert response.status_code == 200, response.text
    time.sleep(1)
    assert read_prediction_log(served_home.online_predictions_path).empty  # all still waiting
    stop_server(server)
    assert server.process.returncode == 0
    log = read_prediction_log(served_home.online_predictions_path)
    assert sorted(log["booking_id"]) == sorted(b["booking_id"] for b in bookings)
    assert log["request_id"].nunique() == len(bookings)
