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
from booking_platform.serving.workers import sockets_by_worker
from booking_platform_tests.serving.conftest import (
    CLI,
    Server,
    as_request,
    cleaned_rows,
    free_port,
    set_alias,
    start_server,
    stop_server,
    wait_until_ready,
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


def _serve_process(settings: Settings, port: int) -> subprocess.Popen:
    return subprocess.Popen(
        [str(CLI), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        env={**os.environ, "BOOKING_PLATFORM_HOME": str(settings.home)},
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _children(parent: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == parent:
                children.append(int(stat.parent.name))
        except (FileNotFoundError, ProcessLookupError):
            continue
    return children


def test_a_second_server_started_while_the_first_loads_is_refused(served_home: Settings) -> None:
    """Both once served: the first's workers had not bound the port yet (they bind once their
    models are loaded), so the second's port check passed and it joined with SO_REUSEPORT."""
    set_alias(served_home, "challenger", None)
    port = free_port()
    first = _serve_process(served_home, port)
    second = None
    try:
        deadline = time.monotonic() + 120
        while not _children(first.pid):  # past its port check, its workers loading models
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.2)
        assert not sockets_by_worker(first.pid, port)  # nothing bound yet
        second = _serve_process(served_home, port)
        _, stderr = second.communicate(timeout=120)
        assert second.returncode == 3, stderr
        assert (
            f"error: cannot serve on 127.0.0.1:{port}: another booking-platform server "
            f"(pid {first.pid}) serves it"
        ) in stderr
        _wait_for_two_listening_workers(Server(f"http://127.0.0.1:{port}", first, served_home))
        booking = as_request(cleaned_rows(served_home).iloc[0])
        response = httpx.post(f"http://127.0.0.1:{port}/predict", json=booking, timeout=30)
        assert response.status_code == 200
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)


def test_serve_says_what_it_is_doing_while_it_loads(served_home: Settings, tmp_path: Path) -> None:
    set_alias(served_home, "challenger", None)
    log = tmp_path / "serve.log"
    with log.open("w") as output:
        server = start_server(served_home, "--workers", "2", output=output)
    try:
        wait_until_ready(server)
        port = server.url.rsplit(":", 1)[1]
        deadline = time.monotonic() + 60  # the second worker may still be loading
        while log.read_text().count(f"listening on http://127.0.0.1:{port}") < 2:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
    finally:
        stop_server(server)
    said = log.read_text()
    assert f"starting 2 worker(s) for http://127.0.0.1:{port}" in said
    assert said.count("loading champion v1 of booking_cancellation") == 2
    # one worker compiles (or finds the trees compiled by an earlier test), the other finds them
    assert "champion v1: compiled trees found in " in said
    assert re.search(r"compiled champion v1 in \d+\.\d s|compiled trees found", said)
    assert re.search(r"loaded champion v1 in \d+\.\d s", said)
    assert re.search(
        rf"^\d\d:\d\d:\d\d serve\[\d+\] listening on http://127.0.0.1:{port}$", said, re.M
    )
