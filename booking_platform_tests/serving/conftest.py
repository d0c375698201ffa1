"""A data home with two registered models (champion v1, a second version v2 without alias) and
a real `booking-platform serve` process on a free 127.0.0.1 port."""

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO

import dagster as dg
import httpx
import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from booking_platform.config import MODEL_NAME, Settings
from booking_platform.core import registry, warehouse
from booking_platform.core.cleaning import clean_bookings
from booking_platform.core.features import build_feature_set
from booking_platform.core.source import FEATURE_SOURCE_COLUMNS, read_bookings
from booking_platform.core.training import train_and_validate
from booking_platform_tests.conftest import REPO_ROOT, SYNTHETIC_ROWS, run_main_job
from booking_platform_tests.synthetic import make_bookings, write_csv

CLI = REPO_ROOT / ".venv" / "bin" / "booking-platform"
AS_OF = date(2017, 5, 1)
SECOND_MODEL_PARAMS = {"n_estimators": 40, "num_leaves": 7}


def home_with_champion(root: Path) -> Settings:
    """A home under `root` where the main job has run on a synthetic export: warehouse,
    champion v1 (no challenger), batch predictions. Also used by benchmarks/abusive_requests.py."""
    source = write_csv(make_bookings(SYNTHETIC_ROWS), root / "bookings.csv")
    settings = Settings(home=root / "home", source=str(source), as_of=AS_OF)
    with dg.instance_for_test() as instance:
        if not run_main_job(settings, instance).success:
            raise RuntimeError(f"the main job failed on the synthetic export in {root}")
    return settings


@pytest.fixture(scope="session")
def served_home(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The main job's outputs (warehouse, champion v1, batch predictions) plus version 2 of the
    model, registered without an alias, for tests to move aliases to."""
    root = tmp_path_factory.mktemp("serving")
    settings = home_with_champion(root)
    source = Path(settings.source)
    feature_set = build_feature_set(clean_bookings(read_bookings(source).frame).cleaned, AS_OF)
    history, features = feature_set.part("history")
    validated = train_and_validate(history, feature_set.builder, AS_OF, SECOND_MODEL_PARAMS)
    experiment = registry.use_store(settings.mlflow_tracking_uri, settings.mlflow_artifact_root)
    _, uri = registry.log_candidate(
        experiment, validated, features, SECOND_MODEL_PARAMS, tags={}, plots={}
    )
    assert str(mlflow.register_model(uri, MODEL_NAME).version) == "2"
    return settings


def registry_client(settings: Settings) -> MlflowClient:
    registry.use_store(settings.mlflow_tracking_uri, settings.mlflow_artifact_root)
    return MlflowClient()


def set_alias(settings: Settings, alias: str, version: str | None) -> None:
    client = registry_client(settings)
    if version is None:
        if registry.alias_version(MODEL_NAME, alias) is not None:
            client.delete_registered_model_alias(MODEL_NAME, alias)
    else:
        client.set_registered_model_alias(MODEL_NAME, alias, version)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    settings: Settings

    def client(self, timeout: float = 30.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout)


def start_server(
    settings: Settings, *flags: str, env: dict[str, str] | None = None, output: IO | None = None
) -> Server:
    """`booking-platform serve` in its own process group, ready when /health answers at all;
    its stdout and stderr go to `output` when given."""
    port = free_port()
    process = subprocess.Popen(
        [str(CLI), "serve", "--host", "127.0.0.1", "--port", str(port), *flags],
        env={
            **os.environ,
            "BOOKING_PLATFORM_HOME": str(settings.home),
            "BOOKINGS_SOURCE": settings.source,
            "BOOKINGS_AS_OF": str(settings.as_of),
            **(env or {}),
        },
        stdout=output,
        stderr=output,
        start_new_session=True,
    )
    server = Server(f"http://127.0.0.1:{port}", process, settings)
    # a worker answers once its models are loaded; the session's first start also compiles the
    # champion's trees (~18 s on a quiet machine, several times that on a busy one)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            httpx.get(f"{server.url}/health", timeout=2)
            return server
        except httpx.TransportError:
            time.sleep(0.2)
    stop_server(server)
    raise RuntimeError("the server did not start within 300 s")


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        os.killpg(server.process.pid, signal.SIGTERM)
        try:
            server.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait()


def wait_until_ready(server: Server, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = httpx.get(f"{server.url}/health", timeout=5)
        if response.status_code == 200:
            return response.json()
        time.sleep(0.2)
    raise AssertionError(f"not ready after {timeout} s: {response.json()}")


@pytest.fixture
def serve(served_home: Settings) -> Iterator:
    """Start servers on the served home with a fresh prediction log; stopped after the test."""
    for path in served_home.online_predictions_path.parent.glob("online_predictions.sqlite*"):
        path.unlink()
    started: list[Server] = []

    def start(*flags: str, env: dict[str, str] | None = None) -> Server:
        server = start_server(served_home, *flags, env=env)
        started.append(server)
        wait_until_ready(server)
        return server

    yield start
    for server in started:
        stop_server(server)


def cleaned_rows(settings: Settings) -> pd.DataFrame:
    with warehouse.connect(settings.warehouse_path, read_only=True) as connection:
        return warehouse.read_table(connection, "cleaned_bookings")


def as_request(row: pd.Series) -> dict:
    """A cleaned booking back in the source schema, as a client would send it."""
    booking: dict[str, object] = {"booking_id": int(row["booking_id"])}
    for column, kind in FEATURE_SOURCE_COLUMNS.items():
        value = row[column]
        if pd.isna(value):
            booking[column] = None
        elif kind == "str":
            booking[column] = str(value)
        else:
            booking[column] = int(value) if kind == "int" else float(value)
    return booking
