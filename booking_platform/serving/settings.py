"""The HTTP service's settings, from the environment (the CLI sets them from its flags).

BOOKING_SERVE_CHALLENGER_SHARE  share of routing keys sent to the challenger (0..1); 0.1
BOOKING_SERVE_SHADOW            1: score the challenger on every request, always answer with the
                                champion; 0
BOOKING_SERVE_POLL_SECONDS      how often the registry aliases are checked for a new version; 30
BOOKING_SERVE_MAX_BATCH         most bookings in one request; 1000
BOOKING_SERVE_MAX_BODY_BYTES    largest request body; 4 MiB (1,000 bookings are about 0.8 MB)
BOOKING_SERVE_LOG_FLUSH_SECONDS how long predictions may wait in memory before the log; 0.5
BOOKING_SERVE_MAX_EXPLAINED     most bookings one `?explain=true` request may ask reasons for; 100
BOOKING_SERVE_EXPLAINED_PER_SECOND  bookings a worker explains per second, over all requests
                                (a burst of one second's worth, or of one request's); 200
BOOKING_SERVE_HEADER_SECONDS    time a client has to send a request's line and headers; 10
BOOKING_SERVE_BODY_SECONDS      time a client has to send a request's body once its headers are in;
                                30
Uvicorn's own host, port and workers are command-line flags of `booking-platform serve`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class ServeSettings:
    challenger_share: float = 0.1
    shadow: bool = False
    poll_seconds: float = 30.0
    max_batch: int = 1000
    max_body_bytes: int = 4 * 1024 * 1024
    log_flush_seconds: float = 0.5
    # exact TreeSHAP costs ~2 CPU-ms a booking: 100 is 0.2 s; 200 a second is 40 % of a core
    max_explained: int = 100
    explained_per_second: float = 200.0
    header_seconds: float = 10.0
    body_seconds: float = 30.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.challenger_share <= 1.0:
            raise ValueError(f"challenger share must be within 0..1, got {self.challenger_share}")
        if (
            self.poll_seconds <= 0
            or self.max_batch < 1
            or self.max_body_bytes < 1024
            or self.log_flush_seconds <= 0
            or self.max_explained < 0
            or self.explained_per_second <= 0
            or self.header_seconds <= 0
            or self.body_seconds <= 0
        ):
            raise ValueError(f"invalid serving settings: {self}")

    def to_env(self) -> dict[str, str]:
        """The environment that makes `load_serve_settings` return these settings (workers)."""
        return {
            "BOOKING_SERVE_CHALLENGER_SHARE": str(self.challenger_share),
            "BOOKING_SERVE_SHADOW": "1" if self.shadow else "0",
            "BOOKING_SERVE_POLL_SECONDS": str(self.poll_seconds),
            "BOOKING_SERVE_MAX_BATCH": str(self.max_batch),
            "BOOKING_SERVE_MAX_BODY_BYTES": str(self.max_body_bytes),
            "BOOKING_SERVE_LOG_FLUSH_SECONDS": str(self.log_flush_seconds),
            "BOOKING_SERVE_MAX_EXPLAINED": str(self.max_explained),
            "BOOKING_SERVE_EXPLAINED_PER_SECOND": str(self.explained_per_second),
            "BOOKING_SERVE_HEADER_SECONDS": str(self.header_seconds),
            "BOOKING_SERVE_BODY_SECONDS": str(self.body_seconds),
        }


def load_serve_settings(env: dict[str, str] | None = None) -> ServeSettings:
    env = dict(os.environ if env is None else env)
    defaults = ServeSettings()
    return ServeSettings(
        challenger_share=float(
            env.get("BOOKING_SERVE_CHALLENGER_SHARE") or defaults.challenger_share
        ),
        shadow=(env.get("BOOKING_SERVE_SHADOW") or "0").lower() in ("1", "true", "yes"),
        poll_seconds=float(env.get("BOOKING_SERVE_POLL_SECONDS") or defaults.poll_seconds),
        max_batch=int(env.get("BOOKING_SERVE_MAX_BATCH") or defaults.max_batch),
        max_body_bytes=int(env.get("BOOKING_SERVE_MAX_BODY_BYTES") or defaults.max_body_bytes),
        log_flush_seconds=float(
            env.get("BOOKING_SERVE_LOG_FLUSH_SECONDS") or defaults.log_flush_seconds
        ),
        max_explained=int(env.get("BOOKING_SERVE_MAX_EXPLAINED") or defaults.max_explained),
        explained_per_second=float(
            env.get("BOOKING_SERVE_EXPLAINED_PER_SECOND") or defaults.explained_per_second
        ),
        header_seconds=float(env.get("BOOKING_SERVE_HEADER_SECONDS") or defaults.header_seconds),
        body_seconds=float(env.get("BOOKING_SERVE_BODY_SECONDS") or defaults.body_seconds),
    )
