"""The workers of `booking-platform serve`: a listening socket each, connections spread over them,
and a port already served is refused instead of shared."""

import os
import re
import signal
import socket
import subprocess
import time
from collections import Counter
from pathlib import Path

import httpx

from booking_platform.config import Settings
from booking_platform_tests.serving.conftest import (
    CLI,
    Server,
    as_request,
    cleaned_rows,
    free_port,
    set_alias,
)

TCP_STATES = {"0A": "LISTEN", "01": "ESTABLISHED"}


def _children(parent: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # the name in brackets may hold spaces; the parent's PID is the 2nd field after it
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == parent:
            children.append(int(stat.parent.name))
    return children


def _sockets_by_worker(parent: int, port: int) -> dict[int, dict[str, str]]:
    """For each child process with TCP sockets on `port` (a worker once it listens; not
    multiprocessing's resource tracker), those sockets: state by the socket's inode."""
    states = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port:
            states[fields[9]] = TCP_STATES.get(fields[3], fields[3])
    by_worker = {}
    for pid in _children(parent):
        sockets = {}
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            match = re.fullmatch(r"socket:\[(\d+)\]", os.readlink(fd))
            if match and match.group(1) in states:
                sockets[match.group(1)] = states[match.group(1)]
        if sockets:
            by_worker[pid] = sockets
    return by_worker


def _count(sockets: dict[int, dict[str, str]], state: str) -> list[int]:
    return [Counter(states.values())[state] for states in sockets.values()]


def _wait_for_two_listening_workers(server: Server) -> dict[int, dict[str, str]]:
    port = int(server.url.rsplit(":", 1)[1])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # a worker listens once its models are loaded
        listening = _sockets_by_worker(server.process.pid, port)
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
        held = _sockets_by_worker(server.process.pid, port)
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
    while killed in _sockets_by_worker(server.process.pid, port):
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
