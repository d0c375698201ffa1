"""Failed runs on record (table failed_runs, a webhook on a real local HTTP server) and retries
of the steps that fail for passing reasons only."""

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.error import HTTPError, URLError

import dagster as dg
import pytest
from mlflow.exceptions import MlflowException

from booking_platform.config import Settings
from booking_platform.core import warehouse
from booking_platform.core.failures import is_passing
from booking_platform.core.source import SourceError
from booking_platform.core.tables import FAILED_RUNS
from booking_platform.defs.assets.ingestion import raw_bookings
from booking_platform.defs.failures import run_failure_recorder
from booking_platform.defs.partitions import as_of_partitions
from booking_platform.defs.resources import FailureAlerts, Warehouse, build_resources
from booking_platform_tests.conftest import SYNTHETIC_AS_OF, run_main_job
from booking_platform_tests.serving.conftest import free_port


@dataclass
class LocalServer:
    url: str
    statuses: list[int]  # answered in turn; the last one from then on
    body: bytes = b""
    received: list[dict] = field(default_factory=list)
    requests: int = 0


@pytest.fixture
def local_server() -> Iterator[LocalServer]:
    """A real HTTP server on 127.0.0.1: records POSTed JSON, answers GETs with `body`."""
    state = LocalServer(url="", statuses=[200])

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            state.requests += 1
            status = state.statuses.pop(0) if len(state.statuses) > 1 else state.statuses[0]
            self.send_response(status)
            self.end_headers()
            if self.command == "GET" and status == 200:
                self.wfile.write(state.body)

        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            length = int(self.headers["Content-Length"])
            state.received.append(json.loads(self.rfile.read(length)))
            self._answer()

        def do_GET(self) -> None:  # noqa: N802
            self._answer()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def _record_failure(settings: Settings, instance: dg.DagsterInstance, webhook: str) -> None:
    result = run_main_job(settings, instance)
    assert not result.success
    context = dg.build_run_status_sensor_context(
        sensor_name=run_failure_recorder.name,
        dagster_event=result.get_run_failure_event(),
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        resources={
            "warehouse": Warehouse(location=settings.warehouse_location),
            "failure_alerts": FailureAlerts(webhook_url=webhook),
        },
    ).for_run_failure()
    run_failure_recorder(context)


def test_a_failed_run_is_recorded_with_its_step_and_error_and_sent_to_the_webhook(
    tmp_path: Path, instance: dg.DagsterInstance, local_server: LocalServer
) -> None:
    settings = Settings(
        home=tmp_path / "home", source=str(tmp_path / "gone.csv"), as_of=SYNTHETIC_AS_OF
    )
    _record_failure(settings, instance, f"{local_server.url}/hooks/failures")
    with warehouse.connect(settings.warehouse_path, read_only=True) as connection:
        (row,) = warehouse.read_table(connection, FAILED_RUNS.name).to_dict("records")
    assert row["job_name"] == "booking_platform_job"
    assert row["step"] == "raw_bookings"
    assert row["partition"] == str(SYNTHETIC_AS_OF)
    assert "SourceError" in row["error"] and "gone.csv: file not found" in row["error"]
    assert row["run_url"].endswith(f"/runs/{row['run_id']}")
    (posted,) = local_server.received
    assert posted == {"failed_runs": [row]}


def test_a_webhook_that_is_down_does_not_lose_the_record(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    settings = Settings(
        home=tmp_path / "home", source=str(tmp_path / "gone.csv"), as_of=SYNTHETIC_AS_OF
    )
    _record_failure(settings, instance, f"http://127.0.0.1:{free_port()}/nobody")
    _record_failure(settings, instance, "")
    with warehouse.connect(settings.warehouse_path, read_only=True) as connection:
        table = warehouse.read_table(connection, FAILED_RUNS.name)
    assert len(table) == 2 and table["run_id"].nunique() == 2


def _materialise_raw(settings: Settings, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    instance.add_dynamic_partitions(as_of_partitions.name, [str(settings.as_of)])
    return dg.materialize(
        [raw_bookings],
        partition_key=str(settings.as_of),
        resources=build_resources(settings),
        instance=instance,
        raise_on_error=False,
    )


def test_a_url_source_that_fails_for_a_moment_is_retried_and_a_missing_one_is_not(
    tmp_path: Path, instance: dg.DagsterInstance, local_server: LocalServer, synthetic_source: Path
) -> None:
    local_server.body = synthetic_source.read_bytes()
    local_server.statuses = [503, 200]  # the server is restarting, then answers
    url = f"{local_server.url}/exports/hotel_bookings.csv"
    settings = Settings(home=tmp_path / "home", source=url, as_of=date(2017, 5, 1))
    assert _materialise_raw(settings, instance).success
    assert local_server.requests == 2

    local_server.requests, local_server.statuses = 0, [404]
    gone = Settings(
        home=tmp_path / "other", source=url.replace("exports", "nothing"), as_of=date(2017, 5, 1)
    )
    result = _materialise_raw(gone, instance)
    assert not result.success
    assert local_server.requests == 1  # no retry: the answer will not change


def test_passing_errors_are_told_from_lasting_ones() -> None:
    def raised_from(cause: Exception) -> Exception:
        try:
            raise SourceError("download failed") from cause
        except SourceError as error:
            return error

    assert is_passing(raised_from(URLError(ConnectionRefusedError(111, "refused"))))
    assert is_passing(raised_from(HTTPError("u", 503, "busy", {}, None)))
    assert not is_passing(raised_from(HTTPError("u", 404, "not found", {}, None)))
    assert not is_passing(ValueError("column 'lead_time' must be numeric"))
    assert is_passing(MlflowException("API request to http://x/api failed with exception boom"))
    assert not is_passing(MlflowException("Registered Model with name=x not found"))
