"""How many bookings a worker may explain: `?explain=true` costs ~2 CPU-ms a booking (exact
TreeSHAP), 1,000 of them 8 s of CPU, and eight such requests once made a one-booking request
wait 16 s. Each request may ask for at most BOOKING_SERVE_MAX_EXPLAINED bookings; over all
requests a worker explains at most BOOKING_SERVE_EXPLAINED_PER_SECOND bookings a second (a token
bucket holding one second's worth, and at least one request's), and one explanation at a time,
on a thread of its own, so the event loop keeps answering plain predictions meanwhile. A request
over the budget gets a 429 saying when to retry, not a place in a queue.
"""

from __future__ import annotations

import math
import time


class ExplainBudget:
    """A token bucket of bookings to explain, refilled at `per_second`, holding `capacity`.
    Used from the worker's event loop only, so it needs no lock."""

    def __init__(self, per_second: float, capacity: float) -> None:
        self.per_second, self.capacity = per_second, capacity
        self._tokens = capacity
        self._updated = time.monotonic()

    def take(self, bookings: int) -> float:
        """0 when `bookings` may be explained now (and takes them), else the seconds until
        they could be."""
        now = time.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.per_second)
        self._updated = now
        if bookings <= self._tokens:
            self._tokens -= bookings
            return 0.0
        return (bookings - self._tokens) / self.per_second


def retry_after(seconds: float) -> str:
    """The Retry-After header's value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
