"""Prometheus metrics of the HTTP service (GET /metrics), summed over its worker processes.

`booking-platform serve` runs several uvicorn workers; a scrape reaches one of them. In
prometheus-client's multiprocess mode every worker writes its counts to files in one directory
(PROMETHEUS_MULTIPROC_DIR) and the worker that answers a scrape reads them all, so any scrape
reports the whole service. `run_workers` creates that directory, fresh for each server, before
any worker imports prometheus-client (it reads the variable at import), and removes it at exit.
Without the variable (the app built in a test's own process) each app counts on its own.

Requests are counted by a plain ASGI middleware rather than Starlette's BaseHTTPMiddleware: the
prediction path is tuned to tens of microseconds per booking, and the latter adds a task per
request.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prometheus_multiprocess

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
OTHER_ROUTE = "other"  # any path the app does not serve: one label, however many are probed
# from a 1-booking answer (about a millisecond) to a 1,000-booking batch on a busy machine
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@contextmanager
def multiprocess_directory() -> Iterator[str]:
    """A fresh directory for the workers' counts, in the environment the workers inherit."""
    directory = tempfile.mkdtemp(prefix="booking-platform-metrics-")
    previous = os.environ.get(MULTIPROC_ENV)
    os.environ[MULTIPROC_ENV] = directory
    try:
        yield directory
    finally:
        if previous is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = previous
        shutil.rmtree(directory, ignore_errors=True)


class ServiceMetrics:
    """The service's counters and latency histogram, and their exposition."""

    def __init__(self, route_paths: Callable[[], Iterable[str]]) -> None:
        """`route_paths`: the app's routes and mounts, read at the first request (once all
        routes are defined)."""
        self._route_paths = route_paths
        self._routes: tuple[set[str], tuple[str, ...]] | None = None
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "booking_http_requests",
            "HTTP requests answered, by route, method and status code",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "booking_http_request_duration_seconds",
            "Time from a request's arrival to its answer, by route",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "booking_http_request_errors",
            "Requests answered with an error: client (4xx) or server (5xx or an exception)",
            ["route", "kind"],
            registry=self.registry,
        )
        self.answers = Counter(
            "booking_predictions",
            "Bookings scored, by arm, model version and whether the answer was returned "
            "(served=false: the challenger in shadow)",
            ["variant", "model_version", "served"],
            registry=self.registry,
        )

    def route(self, path: str) -> str:
        """The route a path is counted under: itself, its mount, or OTHER_ROUTE."""
        if self._routes is None:
            paths = set(self._route_paths())
            self._routes = paths, tuple(f"{p}/" for p in paths)
        exact, prefixes = self._routes
        if path in exact:
            return path
        return next((p[:-1] for p in prefixes if path.startswith(p)), OTHER_ROUTE)

    def count_answers(self, variant: str, version: str, count: int, served: bool = True) -> None:
        if count:
            self.answers.labels(variant, version, "true" if served else "false").inc(count)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(seconds)
        if status >= 400:
            self.errors.labels(route, "client" if status < 500 else "server").inc()

    def exposition(self) -> tuple[bytes, str]:
        """The text format, of every worker when in multiprocess mode."""
        if os.environ.get(MULTIPROC_ENV):
            registry = CollectorRegistry()
            prometheus_multiprocess.MultiProcessCollector(registry)
        else:
            registry = self.registry
        return generate_latest(registry), CONTENT_TYPE_LATEST

    def middleware(self, app: Any) -> Any:
        """ASGI middleware counting every HTTP request with its status and latency."""

        async def counted(scope: dict, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            started = time.perf_counter()
            status = 500  # an exception before the response starts is the server's error

            async def send_counted(message: dict) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await app(scope, receive, send_counted)
            finally:
                seconds = time.perf_counter() - started
                self.observe(self.route(scope["path"]), scope["method"], status, seconds)

        return counted
