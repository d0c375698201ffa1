"""`make cluster` / `make cluster-down`: the cluster profile's processes on this host.

MLflow server, code server (`dagster api grpc`), Dagster daemon, webserver and N Celery workers,
each started in a session of its own (so a stop reaches its children, e.g. the run processes of
the code server) with SIGINT/SIGTERM at their defaults (a shell's background job would pass on
ignored signals). Each writes `<name>.pid` ("pid start-time", so a recycled PID is never
signalled) under `$BOOKING_PLATFORM_HOME/cluster/` and logs to `cluster/logs/<name>.log`.
PostgreSQL and RabbitMQ are services of the host: they are used, not started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from booking_platform.cluster.postgres import ensure_database
from booking_platform.config import Settings
from booking_platform.core.processes import live_processes, start_ticks

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CELERY_QUEUE = "dagster"  # dagster-celery's default queue
CODE_LOCATION = "booking_platform"
STOP_SECONDS = 30
LOAD_WORKSPACE = {"daemon", "webserver"}


class ClusterError(RuntimeError):
    """The cluster cannot start (or is already running); the message says why."""


@dataclass(frozen=True)
class Service:
    name: str
    argv: list[str]
    ready: Callable[[], bool]


def logs_dir(settings: Settings) -> Path:
    return settings.cluster_dir / "logs"


def worker_name(index: int) -> str:
    """The Celery node name of worker `index` (its PID file and log are named after it too)."""
    return f"worker-{index}"


def mlflow_port(settings: Settings) -> int:
    return urlsplit(settings.mlflow_tracking_uri).port or 5000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _logged(path: Path, text: str) -> Callable[[], bool]:
    return lambda: path.is_file() and text in path.read_text(errors="replace")


def write_workspace(settings: Settings, code_port: int) -> Path:
    """Webserver and daemon load the definitions from the one code server (as in Kubernetes)."""
    path = settings.cluster_dir / "workspace.yaml"
    path.write_text(
        "load_from:\n"
        "  - grpc_server:\n"
        "      host: 127.0.0.1\n"
        f"      port: {code_port}\n"
        f"      location_name: {CODE_LOCATION}\n"
    )
    return path


def services(settings: Settings, code_port: int) -> list[Service]:
    """What `make cluster` starts, in order (each waits for the one before to be ready)."""
    cluster, logs = settings.cluster, logs_dir(settings)
    workspace = str(settings.cluster_dir / "workspace.yaml")
    artifacts = cluster.mlflow_artifacts or (settings.cluster_dir / "mlflow-artifacts").as_uri()
    port = mlflow_port(settings)
    listed = [
        Service(
            "mlflow",
            [
                str(BIN / "mlflow"),
                "server",
                "--backend-store-uri",
                cluster.database_url(cluster.mlflow_db),
                # proxied artifacts: clients upload and download through the server
                "--artifacts-destination",
                artifacts,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            lambda: _answers(f"http://127.0.0.1:{port}/health"),
        ),
        Service(
            "code-server",
            [
                str(BIN / "dagster"),
                "api",
                "grpc",
                "--module-name",
                "booking_platform.definitions",
                "--working-directory",
                str(REPO_ROOT),
                "--host",
                "127.0.0.1",
                "--port",
                str(code_port),
                "--location-name",
                CODE_LOCATION,
            ],
            lambda: _listening(code_port),
        ),
        Service(
            "daemon",
            [str(BIN / "dagster-daemon"), "run", "-w", workspace],
            _logged(logs / "daemon.log", "daemon"),
        ),
        Service(
            "webserver",
            [
                str(BIN / "dagster-webserver"),
                "-w",
                workspace,
                "-h",
                "127.0.0.1",
                "-p",
                str(cluster.dagit_port),
            ],
            lambda: _answers(f"{cluster.dagit_url}/server_info"),
        ),
    ]
    for index in range(1, cluster.workers + 1):
        name = worker_name(index)
        listed.append(
            Service(
                name,
                [
                    str(BIN / "celery"),
                    "-A",
                    "booking_platform.cluster.celery_app",
                    "worker",
                    "-Q",
                    CELERY_QUEUE,
                    "-n",
                    f"{name}@%h",
                    # one process per worker, one step at a time: a worker is an OS process
                    "--pool",
                    "solo",
                    "--prefetch-multiplier",
                    "1",
                    "--without-gossip",
                    "--without-mingle",
                    "--loglevel",
                    "INFO",
                ],
                _logged(logs / f"{name}.log", "ready."),
            )
        )
    return listed


def running(settings: Settings) -> dict[str, int]:
    """Services whose PID file names a live process that is still the one started."""
    alive = {}
    for pid_file in sorted(settings.cluster_dir.glob("*.pid")):
        pid, started = pid_file.read_text().split()
        if start_ticks(int(pid)) == started:
            alive[pid_file.stem] = int(pid)
    return alive


def _default_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _start(service: Service, settings: Settings, env: dict[str, str]) -> int:
    log = (logs_dir(settings) / f"{service.name}.log").open("w")
    with log:
        process = subprocess.Popen(
            service.argv,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_default_signals,  # noqa: PLW1509 (no threads here yet)
        )
    (settings.cluster_dir / f"{service.name}.pid").write_text(
        f"{process.pid} {start_ticks(process.pid)}\n"
    )
    return process.pid


def _wait_ready(service: Service, settings: Settings, pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not service.ready():
        if start_ticks(pid) is None or time.monotonic() > deadline:
            log = (logs_dir(settings) / f"{service.name}.log").read_text(errors="replace")
            raise ClusterError(f"{service.name} did not start; its log ends:\n{log[-2000:]}")
        time.sleep(0.5)


def start_cluster(settings: Settings, timeout: float = 240) -> dict[str, int]:
    """Start every service (DAGSTER_HOME prepared by the caller); returns name -> PID.

    Refuses when a service of this home still runs; stops what it started if one fails.
    """
    if alive := running(settings):
        raise ClusterError(
            f"the cluster of {settings.home} is already running ({', '.join(alive)}): "
            "`make cluster-down` first"
        )
    logs_dir(settings).mkdir(parents=True, exist_ok=True)
    ensure_database(settings.cluster.pg_url, settings.cluster.mlflow_db)
    code_port = free_port()
    write_workspace(settings, code_port)
    # gRPC calls to a busy code server (starting a run) may take longer than Dagster's 60 s
    env = {"DAGSTER_GRPC_TIMEOUT_SECONDS": "300", **os.environ, "PYTHONUNBUFFERED": "1"}
    started: dict[str, int] = {}
    try:
        # start-up is mostly imports: overlap them, but webserver and daemon load the
        # workspace once at start, so they follow a code server that answers
        listed = services(settings, code_port)
        first = [s for s in listed if s.name not in LOAD_WORKSPACE]
        for service in first:
            started[service.name] = _start(service, settings, env)
        (code_server,) = [s for s in first if s.name == "code-server"]
        _wait_ready(code_server, settings, started[code_server.name], timeout)
        for service in listed:
            if service.name in LOAD_WORKSPACE:
                started[service.name] = _start(service, settings, env)
        for service in listed:
            _wait_ready(service, settings, started[service.name], timeout)
    except BaseException:
        stop_cluster(settings)
        raise
    return started


def stop_cluster(settings: Settings, timeout: float = STOP_SECONDS) -> dict[str, str]:
    """Stop every service of this home by its process group: SIGTERM, then SIGKILL after
    `timeout` seconds. Returns name -> how it stopped; PID files are removed."""
    alive = running(settings)
    # webserver and daemon first: nothing new is launched while runs and workers stop
    order = ["webserver", "daemon", "code-server"]
    names = [n for n in order if n in alive] + sorted(n for n in alive if n not in order)
    for name in names:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(alive[name], signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(live_processes(group=alive[n]) for n in names) and time.monotonic() < deadline:
        time.sleep(0.5)
    how = {}
    for name in names:
        how[name] = "SIGTERM"
        if live_processes(group=alive[name]):
            os.killpg(alive[name], signal.SIGKILL)
            how[name] = f"SIGKILL after {timeout:.0f} s"
    for pid_file in settings.cluster_dir.glob("*.pid"):
        pid_file.unlink()
    return how
