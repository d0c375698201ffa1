"""A corpus of bad and abusive HTTP requests against a real `booking-platform serve`.

The server runs with its default settings (2 workers; the limits of serving/settings.py, or
BOOKING_SERVE_* from the environment) on a free 127.0.0.1 port, in its own process group, and
is stopped by that group whatever happens. Each case prints one line: the verdict OK / WRONG,
the case, what was sent, the answer the README and the code document, and what came back (the
status and the first words of the error). Exit code 1 when any case is WRONG.

    .venv/bin/python benchmarks/abusive_requests.py

Without BOOKING_PLATFORM_HOME the home is built here: the main job on a synthetic export
(booking_platform_tests/synthetic.py), champion v1. With it, that home's registry (and compiled
models) is copied to a scratch home, so this traffic never lands in its prediction log.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

# the server and the booking come from the tests' helpers, so the two cannot drift apart
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from booking_platform.config import Settings, load_settings  # noqa: E402
from booking_platform.serving.settings import load_serve_settings  # noqa: E402
from booking_platform_tests.serving.conftest import (  # noqa: E402
    Server,
    home_with_champion,
    start_server,
    stop_server,
    wait_until_ready,
)
from booking_platform_tests.serving.test_api import BOOKING  # noqa: E402

SERVE = load_serve_settings()  # what the server reads from the same environment
JSON = "application/json"
Outcome = tuple[bool, str]  # (answered as documented, what came back)


@dataclass(frozen=True)
class Case:
    name: str
    sent: str  # what was sent, in a few words
    expected: str  # the documented answer
    run: Callable[[Server], Outcome]


def _booking(**change: object) -> bytes:
    # json.dumps writes NaN/Infinity literals and integers of any size, as an attacker may
    return json.dumps({**BOOKING, **change}).encode()


def _spliced(text: str) -> bytes:
    """The booking with raw JSON text added before its closing brace (duplicate keys etc.)."""
    return (json.dumps(BOOKING)[:-1] + ", " + text + "}").encode("utf-8", "surrogateescape")


def _said(response: httpx.Response) -> str:
    try:
        answer = response.json()
        detail = answer.get("detail") if isinstance(answer, dict) else None
        if isinstance(detail, list):
            words = f"{detail[0]['type']}: {detail[0]['msg']}"
        else:
            words = detail or f"cancel_probability {answer['cancel_probability']:.3f}"
    except (ValueError, KeyError, IndexError, TypeError):
        words = response.text
    return f"{response.status_code} {' '.join(str(words).split())[:70]}"


def _case(
    name: str,
    sent: str,
    expected: int | set[int],
    body: Any = None,  # bytes, or an iterator of them (sent chunked)
    *,
    method: str = "POST",
    path: str = "/predict",
    content_type: str | None = JSON,
    check: Callable[[httpx.Response], bool] = lambda _: True,
) -> Case:
    statuses = {expected} if isinstance(expected, int) else expected

    def run(server: Server) -> Outcome:
        headers = {"content-type": content_type} if content_type else {}
        with server.client(timeout=120) as client:
            response = client.request(method, path, content=body, headers=headers)
        return response.status_code in statuses and check(response), _said(response)

    return Case(name, sent, "/".join(map(str, sorted(statuses))), run)


def _port(server: Server) -> int:
    return int(server.url.rsplit(":", 1)[1])


def _raw(port: int, fast: bytes, slow: bytes = b"", pace: float = 0.5) -> tuple[float, bytes]:
    """Send `fast` at once, then `slow` a byte every `pace` s; read until the server closes.
    (seconds the connection was held, what the server said). Gives up after 120 s."""
    started, said = time.monotonic(), b""
    with socket.create_connection(("127.0.0.1", port), timeout=120) as connection:
        try:
            connection.sendall(fast)
            for byte in (slow[i : i + 1] for i in range(len(slow))):
                connection.sendall(byte)
                if select.select([connection], [], [], pace)[0]:
                    break  # the server answered (or hung up) before the request was complete
            while chunk := connection.recv(1 << 16):
                said += chunk
        except OSError:  # reset, broken pipe or our own timeout: `said` tells which
            pass
    return time.monotonic() - started, said


def _raw_said(said: bytes) -> tuple[int | None, str]:
    if not said.startswith(b"HTTP/"):
        return None, "closed without an answer" if not said else said[:40].decode(errors="replace")
    status = int(said.split(b" ", 2)[1])
    body = said.partition(b"\r\n\r\n")[2][:70].decode(errors="replace")
    return status, f"{status} {' '.join(body.split())}"


def _raw_case(name: str, sent: str, expected: set[int], request: bytes) -> Case:
    def run(server: Server) -> Outcome:
        status, text = _raw_said(_raw(_port(server), request)[1])
        return status in expected, text

    return Case(name, sent, "/".join(map(str, sorted(expected))), run)


def _slow_case(name: str, sent: str, fast: bytes, slow: bytes, deadline: float) -> Case:
    """A client that never completes its request: 408 and closed within the deadline."""

    def run(server: Server) -> Outcome:
        held, said = _raw(_port(server), fast, slow)
        status = _raw_said(said)[0]
        within = held <= deadline + 3  # + the scheduler's latency on a loaded machine
        return status in (408, None) and within, f"{status or 'closed'} after {held:.1f} s"

    return Case(name, sent, f"408 <= {deadline:g} s", run)


def _concurrently(count: int, request: Callable[[], int]) -> Counter:
    """`count` calls of `request` (a status, or an exception's name) released together."""
    barrier = threading.Barrier(count)

    def one(_: int) -> int | str:
        barrier.wait()
        try:
            return request()
        except httpx.HTTPError as error:
            return type(error).__name__

    with ThreadPoolExecutor(count) as pool:
        return Counter(pool.map(one, range(count)))


def _explain_burst(server: Server) -> Outcome:
    # the budget is per worker (a bucket of max(per second, per request) bookings): a dozen
    # full requests at once empty both workers' buckets, the rest must be told when to retry
    body, answers = [BOOKING] * SERVE.max_explained, []

    def explain() -> int:
        response = httpx.post(f"{server.url}/predict?explain=true", json=body, timeout=120)
        answers.append((response.status_code, response.headers.get("retry-after")))
        return response.status_code

    statuses = _concurrently(12, explain)
    told = all(retry for status, retry in answers if status == 429)
    ok = set(statuses) <= {200, 429} and statuses[429] > 0 and told
    return ok, " ".join(f"{s} x{n}" for s, n in sorted(statuses.items(), key=str))


def _many_connections(server: Server) -> Outcome:
    statuses = _concurrently(
        200, lambda: httpx.post(f"{server.url}/predict", json=BOOKING, timeout=120).status_code
    )
    return statuses == Counter({200: 200}), " ".join(f"{s} x{n}" for s, n in statuses.items())


def _held_connections(server: Server) -> Outcome:
    """200 connections each holding half a request head: does a real client still get in?"""
    held = [socket.create_connection(("127.0.0.1", _port(server))) for _ in range(200)]
    try:
        for connection in held:
            connection.sendall(b"POST /predict HTTP/1.1\r\nhost: x\r\n")
        started = time.monotonic()
        response = httpx.post(f"{server.url}/predict", json=BOOKING, timeout=60)
        seconds = time.monotonic() - started
    finally:
        for connection in held:
            connection.close()
    return response.status_code == 200 and seconds < 5, f"{_said(response)[:40]} in {seconds:.2f} s"


HEAD = b"POST /predict HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
MIB = 1 << 20
B = _booking
LEAN = json.dumps({k: v for k, v in BOOKING.items() if k != "deposit_type"}).encode()
BATCH, EXPLAINED = 5 * SERVE.max_batch, SERVE.max_explained + 1
SMALL = {"check": lambda r: len(r.content) < 10_000}  # a 422 must not echo 1 MB back
# fmt: off
CASES = [
    # the body as a whole
    _case("body not JSON", "hello, world", 422, b"hello, world"),
    _case("broken JSON", '{"booking_id": 1,', 422, b'{"booking_id": 1,'),
    _case("empty body", "nothing", 422, b""),
    _case("content-type text/plain", "a booking", 415, B(), content_type="text/plain"),
    _case("no content-type", "a booking", 415, B(), content_type=None),
    _case("empty list", "[]", 422, b"[]"),
    _case("far beyond the batch cap", f"{BATCH:,} bookings", 413,
          json.dumps([BOOKING] * BATCH).encode()),
    _case("body beyond the size cap", "5 MiB, length declared", 413,
          b'{"pad": "' + b"x" * 5 * MIB + b'"}'),
    _case("body beyond the size cap, chunked", "5 MiB, no length", 413,
          iter([b"[" + b" " * MIB] * 5)),
    _raw_case("content-length not a number", "content-length: abc", {400},
              HEAD + b"content-length: abc\r\n\r\n{}"),
    # numbers
    _case("adults 1,000,000", "adults=1000000", 422, B(adults=1_000_000)),
    _case("lead_time 1e23", "lead_time=1e23", 422, B(lead_time=1e23)),
    _case("lead_time 10**30", "an integer beyond int64", 422, B(lead_time=10**30)),
    _case("adr 1e308", "adr=1e308", 422, B(adr=1e308)),
    _case("adr 1e999 (inf as a float)", "adr=1e999", 422,
          B(adr=1e308).replace(b"1e+308", b"1e999")),
    _case("nights in the millions", "stays_in_week_nights=5000000", 422,
          B(stays_in_week_nights=5_000_000)),
    _case("NaN literal", "adr=NaN", 422, B(adr=float("nan"))),
    _case("Infinity literals", "lead_time=Infinity adr=-Infinity", 422,
          B(lead_time=float("inf"), adr=-float("inf"))),
    _case("negative numbers", "lead_time=-1 adr=-50 booking_id=-3", 422,
          B(lead_time=-1, adr=-50, booking_id=-3)),
    _case("strings in numeric fields", 'adr="95.5" lead_time="30"', 422,
          B(adr="95.5", lead_time="30")),
    _case("a boolean for a count", "adults=true", 422, B(adults=True)),
    # vocabularies, fields, shapes
    _case("a hotel the model never saw", 'hotel="Motel"', 200, B(hotel="Motel")),
    _case("unknown meal", 'meal="XX"', 422, B(meal="XX")),
    _case("new country (open vocabulary)", 'country="ZZZ": scored', 200, B(country="ZZZ")),
    _case("new agent (open vocabulary)", "agent=999999: scored", 200, B(agent=999_999)),
    _case("missing required field", "no deposit_type", 422, LEAN),
    _case("empty object", "{}", 422, b"{}"),
    _case("extra unknown field", 'surname="Smith"', 422, B(surname="Smith")),
    _case("deeply nested list", "[ x 1,000,000", 422, b"[" * 1_000_000 + b"]" * 1_000_000),
    _case("deeply nested object", '{"a": x 100,000', 422,
          b'{"a":' * 100_000 + b"1" + b"}" * 100_000),
    _case("deep nesting in a field", "customer_id=[ x 100,000", 422,
          _spliced('"customer_id": ' + "[" * 100_000 + "]" * 100_000)),
    _case("1 MB string value", "customer_id of 1 MB", 422, B(customer_id="x" * MIB), **SMALL),
    _case("1 MB category value", "hotel of 1 MB", 422, B(hotel="x" * MIB), **SMALL),
    _case("duplicate key, last out of bounds", "adults=2, adults=1000000", 422,
          _spliced('"adults": 1000000')),
    _case("duplicate key, last valid", "adults=1000000, adults=2", 200,
          b'{"adults": 1000000, ' + B()[1:]),
    _case("control characters and emoji", r'customer_id="a\u0000\n😀"', 200,
          B(customer_id="a\u0000\n\U0001f600")),
    _case("control character in a category", r'hotel="City Hotel\u0000"', 422,
          B(hotel="City Hotel\u0000")),
    _case("lone surrogate", r'customer_id="\ud800"', 422, _spliced(r'"customer_id": "\ud800"')),
    _case("invalid UTF-8 in a string", "customer_id=bytes ff fe", 422,
          _spliced('"customer_id": "\udcff\udcfe"')),
    # query, methods, paths
    _case("explain beyond the per-request cap", f"?explain=true, {EXPLAINED} bookings", 413,
          json.dumps([BOOKING] * EXPLAINED).encode(), path="/predict?explain=true"),
    Case("explain beyond the per-second budget", f"12 x {SERVE.max_explained} at once",
         "200/429+Retry-After", _explain_burst),
    _case("explain not a boolean", "?explain=maybe", 422, B(), path="/predict?explain=maybe"),
    _case("unknown query parameter", "?foo=bar: ignored", 200, B(), path="/predict?foo=bar"),
    _case("as_of not a date", "?as_of=2017-02-30", 422, B(), path="/predict?as_of=2017-02-30"),
    _case("GET /predict", "GET", 405, method="GET"),
    _case("PUT /predict", "PUT, a booking", 405, B(), method="PUT"),
    _case("DELETE /health", "DELETE", 405, method="DELETE", path="/health"),
    _case("unknown path", "GET /admin", 404, method="GET", path="/admin"),
    _raw_case("path traversal", "GET /predict/../../etc/passwd", {404},
              b"GET /predict/../../etc/passwd HTTP/1.1\r\nhost: x\r\n\r\n"),
    _raw_case("100 kB path", "GET /xxx...", {400, 404, 414},
              b"GET /" + b"x" * 100_000 + b" HTTP/1.1\r\nhost: x\r\n\r\n"),
    _raw_case("64 MiB request head", "a 64 MiB header line", {400, 413, 431},
              b"GET /health HTTP/1.1\r\nhost: x\r\nx-pad: " + b"y" * 64 * MIB + b"\r\n\r\n"),
    # slow and many clients
    _slow_case("idle connection", "connects, sends nothing", b"", b"", SERVE.header_seconds),
    _slow_case("headers byte by byte", "a head byte every 0.5 s", b"", HEAD * 4,
               SERVE.header_seconds),
    _slow_case("body byte by byte", "a body byte every 0.5 s",
               HEAD + b"content-length: 1000\r\n\r\n", B()[:1000], SERVE.body_seconds),
    Case("200 connections at once", "one booking each", "all 200", _many_connections),
    Case("200 half-open connections", "200 held heads + a booking", "200 in < 5 s",
         _held_connections),
]
# fmt: on
AFTER = [  # the server survived all of the above
    _case("health after all", "GET /health", 200, method="GET", path="/health"),
    _case("one booking after all", "one valid booking", 200, _booking()),
]


def _scratch_home(root: Path) -> Settings:
    """A home with a champion: built here, or BOOKING_PLATFORM_HOME's registry copied."""
    if not os.environ.get("BOOKING_PLATFORM_HOME"):
        print("building a home: the main job on a synthetic export ...", file=sys.stderr)
        return home_with_champion(root)
    given = load_settings()
    home = root / "home"
    shutil.copytree(given.home / "mlflow", home / "mlflow")
    scratch = Settings(home=home, source=given.source, as_of=given.as_of)
    if given.compiled_models_path.is_dir():  # compiling the champion again takes minutes
        shutil.copytree(given.compiled_models_path, scratch.compiled_models_path)
    return scratch


def main() -> int:
    wrong = 0
    with tempfile.TemporaryDirectory(prefix="abusive-requests-") as folder:
        settings = _scratch_home(Path(folder))
        server = None
        try:
            server = start_server(settings)
            wait_until_ready(server)
            for case in CASES + AFTER:
                try:
                    ok, got = case.run(server)
                except Exception as error:  # a case that cannot even be sent is a finding too
                    ok, got = False, f"{type(error).__name__}: {error}"[:80]
                wrong += not ok
                verdict = "OK   " if ok else "WRONG"
                line = f"{verdict} {case.name:36} {case.sent:40} {case.expected:22} {got}"
                print(line, flush=True)
            alive = server.process.poll() is None
        finally:
            if server is not None:
                stop_server(server)  # os.killpg on its process group
    if not alive:
        wrong += 1
        print("WRONG the server process exited during the cases")
    print(f"{wrong} case(s) WRONG" if wrong else "every case answered as documented")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
