"""uvicorn's httptools protocol with deadlines for a request's head and body.

uvicorn times out only an idle kept-alive connection: a client that opens a connection and sends
nothing, or its headers a byte at a time, or a body slower than it promised, holds a connection
(and a slot of the worker) for as long as it likes. Here the request line and headers must be
complete within BOOKING_SERVE_HEADER_SECONDS of the connection being made (or of the request's
first byte, on a kept-alive connection), and the body within BOOKING_SERVE_BODY_SECONDS of the
headers; otherwise the client gets a 408 and the connection is closed. httptools bounds neither
the request line nor the headers: a head longer than MAX_HEAD_BYTES gets a 431 and the
connection is closed (the head held is at most that plus one read of the socket).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from booking_platform.serving.settings import load_serve_settings

CLOSING_RESPONSE = (
    b"HTTP/1.1 %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s"
)
MAX_HEAD_BYTES = 64 * 1024  # request line and headers; nginx allows 32 KiB by default
LINGER_SECONDS = 2.0  # how long a refused head's remaining bytes are read and dropped


class DeadlineHttpToolsProtocol(HttpToolsProtocol):
    """What `booking-platform serve` runs (uvicorn's `http` option names this class)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = load_serve_settings()
        self._header_seconds, self._body_seconds = settings.header_seconds, settings.body_seconds
        self._deadline: asyncio.TimerHandle | None = None
        self._head_pending, self._head_bytes = True, 0  # a request whose headers are incomplete
        self._draining = False

    def _arm(self, seconds: float, what: str) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expire, what, seconds)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self, what: str, seconds: float) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # the app's receive() then says http.disconnect
        self._close_with(
            b"408 Request Timeout", f"the request's {what} did not arrive within {seconds:g} s"
        )

    def _close_with(self, status: bytes, message: str) -> None:
        text = message.encode()
        self.transport.write(CLOSING_RESPONSE % (status, len(text), text))
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._draining:
            return
        if self._head_pending:
            self._head_bytes += len(data)
        super().data_received(data)
        too_long = self._head_pending and self._head_bytes > MAX_HEAD_BYTES
        if too_long and not self.transport.is_closing():
            self._refuse_head()

    def _refuse_head(self) -> None:
        """431, then a lingering close: closing with the client's bytes unread makes the kernel
        send a reset, which can destroy the answer before the client reads it. So stop sending,
        drop what still arrives for LINGER_SECONDS, then close."""
        self._disarm()
        self._draining = True
        text = f"the request line and headers exceed {MAX_HEAD_BYTES} bytes".encode()
        status = b"431 Request Header Fields Too Large"
        self.transport.write(CLOSING_RESPONSE % (status, len(text), text))
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self._header_seconds, "headers")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm(self._header_seconds, "headers")

    def on_headers_complete(self) -> None:
        self._head_pending = False
        super().on_headers_complete()
        self._arm(self._body_seconds, "body")

    def on_message_complete(self) -> None:
        self._disarm()
        self._head_pending, self._head_bytes = True, 0  # the next request on this connection
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)
