"""A throwaway cluster on freshly named resources, for the cluster test and the benchmark.

Its own PostgreSQL databases, its own RabbitMQ vhost (dagster-celery's queue is always named
"dagster": only a vhost keeps two clusters on one broker apart), free ports; everything is
dropped again on the way out. Processes are started and stopped through the CLI, as
`make cluster` / `make cluster-down` do.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from booking_platform.cluster.postgres import drop_database
from booking_platform.cluster.services import free_port
from booking_platform.config import Settings, load_settings
from booking_platform.core.processes import live_processes

RABBITMQ = ("127.0.0.1", 5672)
POSTGRES = ("127.0.0.1", 5432)


def missing_services() -> list[str]:
    """What a scratch cluster needs and this host lacks (empty when it can run one)."""
    missing = [
        f"{name} on {host}:{port}"
        for name, (host, port) in (("PostgreSQL", POSTGRES), ("RabbitMQ", RABBITMQ))
        if not _listening(host, port)
    ]
    if shutil.which("rabbitmqctl") is None:
        missing.append("rabbitmqctl (to create a vhost of its own)")
    return missing


def _listening(host: str, port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex((host, port)) == 0


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=120)


@dataclass
class ScratchCluster:
    env: dict[str, str]
    settings: Settings
    vhost: str

    def cli(self, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
        """Run `booking-platform ARGS` against this cluster; output captured as text."""
        return subprocess.run(
            [sys.executable, "-m", "booking_platform.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def databases(self) -> list[str]:
        cluster = self.settings.cluster
        return [cluster.pg_db, cluster.mlflow_db]


@contextmanager
def scratch_cluster(
    root: Path, source: Path, extra_env: dict[str, str]
) -> Iterator[ScratchCluster]:
    """Environment of a cluster on fresh names under `root` (not started); dropped after."""
    name = f"bp_scratch_{uuid.uuid4().hex[:10]}"
    env = {
        **os.environ,
        "BOOKING_PLATFORM_HOME": str(root / "home"),
        "BOOKINGS_SOURCE": str(source),
        "BOOKING_PLATFORM_PROFILE": "cluster",
        "BOOKING_PLATFORM_PG_DB": name,
        "BOOKING_PLATFORM_BROKER_URL": f"amqp://guest:guest@127.0.0.1:5672/{name}",
        "BOOKING_PLATFORM_DAGIT_PORT": str(free_port()),
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}",
        **extra_env,
    }
    for inherited in ("DAGSTER_HOME", "MLFLOW_REGISTRY_URI"):
        env.pop(inherited, None)
    _rabbitmqctl("add_vhost", name)
    cluster = ScratchCluster(env=env, settings=load_settings(env), vhost=name)
    try:
        _rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        yield cluster
    finally:
        for database in cluster.databases():
            drop_database(cluster.settings.cluster.pg_url, database)
        _rabbitmqctl("delete_vhost", name)


@contextmanager
def running(cluster: ScratchCluster) -> Iterator[dict[str, int]]:
    """`booking-platform cluster up` ... `cluster down`; yields name -> PID of each process and
    fails on the way out if any process group it started is still alive."""
    pid_files = cluster.settings.cluster_dir
    started = cluster.cli("cluster", "up", timeout=600)
    pids = {p.stem: int(p.read_text().split()[0]) for p in pid_files.glob("*.pid")}
    try:
        if started.returncode != 0:
            raise RuntimeError(f"cluster up failed:\n{started.stdout}\n{started.stderr}")
        yield pids
    finally:
        stopped = cluster.cli("cluster", "down", timeout=600)
        left = {n: live_processes(group=p) for n, p in pids.items() if live_processes(group=p)}
        if stopped.returncode != 0 or left:
            raise RuntimeError(f"cluster down left {left}:\n{stopped.stdout}\n{stopped.stderr}")
