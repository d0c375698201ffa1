"""The workers of `booking-platform serve`: a listening socket each, connections spread over them,
and a port already served is refused instead of shared."""

import os
import signal
import socket
import subprocess
import time
from collections import Counter

import httpx

from booking_platform.config import Settings
from booking_platform.serving.workers import sockets_by_worker
from booking_platform_tests.serving.conftest import (
    CLI,
    Server,
    as_request,
    cleaned_rows,
    free_port,
    set_alias,
)


def _count(sockets: dict[int, dict[str, str]], state: str) -> list[int]:
    return [Counter(states.values())[state] for states in sockets.values()]


def _wait_for_two_listening_workers(server: Server) -> dict[int, dict[str, str]]:
    port = int(server.url.rsplit(":", 1)[1])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # a worker listens once its models are loaded
        listening = sockets_by_worker(server.process.pid, port)
        if _count(listening, "LISTEN") == [1, 1]:
            return listening
        time.sleep(0.5)
    raise AssertionError(f"not two listening workers after 120 s: {listening}")


def test_each_worker_listens_on_its_own_socket_and_takes_a_share_of_the_connections(
    served_home: Settings, serve
) -> None:
    set_alias(served_home, "challenger", None)
    server = serve("--workers", "2")
    port = int(server.url.rsplit(":", 1)[1])
    listening = _wait_for_two_listening_workers(server)
    first, second = (set(sockets) for sockets in listening.values())
    assert not first & second  # not one socket inherited by both

    booking = as_request(cleaned_rows(served_home).iloc[0])
    clients = [httpx.Client(base_url=server.url, timeout=30) for _ in range(16)]
    try:
        for client in clients:  # each keeps its connection open after answering
            assert client.post("/predict", json=booking).status_code == 200
        held = sockets_by_worker(server.process.pid, port)
    finally:
        for client in clients:
            client.close()
    # with one socket shared, the worker that woke first could take all 16
    assert sum(_count(held, "ESTABLISHED")) == 16
    assert min(_count(held, "ESTABLISHED")) >= 1, held


def test_a_worker_that_dies_is_replaced_and_the_server_keeps_answering(
    served_home: Settings, serve
) -> None:
    set_alias(served_home, "challenger", None)
    server = serve("--workers", "2")
    killed = next(iter(_wait_for_two_listening_workers(server)))
    os.kill(killed, signal.SIGKILL)
    port = int(server.url.rsplit(":", 1)[1])
    while killed in sockets_by_worker(server.process.pid, port):
        time.sleep(0.1)  # until its socket has left the port's group, or a connection hits it
    booking = as_request(cleaned_rows(served_home).iloc[0])
    assert httpx.post(f"{server.url}/predict", json=booking, timeout=30).status_code == 200
    replaced = _wait_for_two_listening_workers(server)
    assert killed not in replaced
    assert server.process.poll() is None


def test_a_port_already_served_is_refused_not_shared(served_home: Settings) -> None:
    port = free_port()
    with socket.create_server(("127.0.0.1", port)):
        finished = subprocess.run(
            [str(CLI), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env={**os.environ, "BOOKING_PLATFORM_HOME": str(served_home.home)},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert finished.returncode == 3
    assert f"cannot serve on 127.0.0.1:{port}" in finished.stderr
