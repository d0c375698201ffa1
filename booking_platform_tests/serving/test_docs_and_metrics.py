"""What the service shows besides predictions, on a real server: /docs that open without
internet access, and Prometheus metrics summed over its worker processes."""

import re
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from booking_platform.config import Settings
from booking_platform_tests.serving.conftest import as_request, cleaned_rows, set_alias


def _assets(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


def test_docs_and_redoc_load_every_file_from_the_service_itself(
    served_home: Settings, serve
) -> None:
    server = serve()
    with server.client() as client:
        for page in ("/docs", "/redoc"):
            response = client.get(page)
            assert response.status_code == 200
            assets = _assets(response.text)
            assert assets and not re.search(r"https?://", response.text), response.text
            for asset in assets:  # served by the app: relative, present and not empty
                assert asset.startswith("/"), asset
                loaded = client.get(asset)
                assert loaded.status_code == 200, asset
                assert len(loaded.content) > 1000, asset
        bundle = client.get("/static-offline-docs/swagger-ui-bundle.js").text
        assert "SwaggerUIBundle" in bundle
        schema = client.get("/openapi.json").json()
        assert "/predict" in schema["paths"] and "/metrics" in schema["paths"]


@pytest.fixture
def challenger_v2(served_home: Settings) -> Iterator[None]:
    """Version 2 as challenger while the test runs; the other tests expect none."""
    set_alias(served_home, "challenger", "2")
    yield
    set_alias(served_home, "challenger", None)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_count_every_worker_requests_latency_errors_and_answers_per_arm(
    served_home: Settings, serve, challenger_v2: None
) -> None:
    server = serve("--workers", "2", "--challenger-share", "0.5")
    rows = cleaned_rows(served_home)
    bookings = [as_request(row) for _, row in rows.head(40).iterrows()]
    # a fresh connection each: the kernel spreads them over both workers
    for start in range(0, 40, 4):
        with server.client() as client:
            response = client.post("/predict", json=bookings[start : start + 4])
            assert response.status_code == 200, response.text
    with server.client() as client:
        assert client.post("/predict", json={"booking_id": 1}).status_code == 422
    predict = (("method", "POST"), ("route", "/predict"))
    for _ in range(6):  # each scrape answered by whichever worker takes the connection
        with server.client() as client:
            scraped = client.get("/metrics")
        assert scraped.status_code == 200
        assert scraped.headers["content-type"].startswith("text/plain")
        samples = _samples(scraped.text)
        # every scrape reports the whole service, whichever worker answered it
        assert samples["booking_http_requests_total", (*predict, ("status", "200"))] == 10
        assert samples["booking_http_requests_total", (*predict, ("status", "422"))] == 1
        errors = ("booking_http_request_errors_total", (("kind", "client"), ("route", "/predict")))
        assert samples[errors] == 1
        assert samples["booking_http_request_duration_seconds_count", predict] == 11
        answered = {
            labels: value
            for (name, labels), value in samples.items()
            if name == "booking_predictions_total"
        }
        assert sum(answered.values()) == 40
        arms = {(dict(labels)["variant"], dict(labels)["model_version"]) for labels in answered}
        assert arms == {("champion", "1"), ("challenger", "2")}  # half the keys go to each
