"""`make dev` (Dagit webserver + daemon) for the end-to-end and browser tests.

The server runs in its own session on a free port of 127.0.0.1. It is stopped by its process
group: SIGTERM first, SIGKILL after 30 s to whatever is left, and the caller is told if anything
of that session is still alive (`dagster dev` exits before its children do).
"""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from booking_platform.core.processes import live_processes
from booking_platform_tests.conftest import REPO_ROOT


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop_session(server: subprocess.Popen) -> None:
    """SIGTERM to the whole process group, SIGKILL after 30 s to whatever is left."""
    try:
        os.killpg(server.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 30
    while live_processes(session=server.pid) and time.monotonic() < deadline:
        server.poll()
        time.sleep(0.5)
    if live_processes(session=server.pid):
        os.killpg(server.pid, signal.SIGKILL)
        time.sleep(1)
    server.wait(timeout=10)


@contextmanager
def running_dagit(env: dict[str, str], log_path: Path, start_seconds: float) -> Iterator[str]:
    """Start `python -m booking_platform.dev` (what `make dev` runs); yield its URL; stop it."""
    port = free_port()
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "booking_platform.dev",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + start_seconds
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/server_info", timeout=5):
                        break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        pytest.fail(f"Dagit did not start: {log_path.read_text()[-3000:]}")
                    time.sleep(1)
            yield url
        finally:
            stop_session(server)
    assert live_processes(session=server.pid) == [], "processes left behind by `make dev`"
