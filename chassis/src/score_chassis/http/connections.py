"""The HTTP connections of a service's uvicorn, with the two limits uvicorn lacks: a deadline
for each request to arrive in, and a bound on the size of its head (ADR 027).

uvicorn times out a connection only while it is idle between requests (`timeout_keep_alive`):
a client that connects and says nothing, or sends its head or its body a byte at a time, holds
a connection, a file descriptor and a task for as long as it likes, and a few hundred such
clients leave none for anyone else (slow loris). Nor does it bound a head parsed by httptools:
a header of gigabytes is kept in memory whole. The protocol below is uvicorn's own, with a
timer from the moment a connection opens (or a kept-alive one begins its next request) until
the request's last byte has arrived, and a count of the head's bytes.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from score_chassis.settings import ServiceSettings


class LimitedHttp(HttpToolsProtocol):
    """HTTP/1.1 as uvicorn parses it, a request given `request_seconds` to arrive in whole and
    `max_head_bytes` for its request line and headers; past either, answered (408, 431) and
    hung up on."""

    request_seconds: float = 30.0
    max_head_bytes: int = 64 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # uvicorn's, whatever they are
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._head_done = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()  # a connection that says nothing is a request that never arrives

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes, self._head_done = 0, False
        if self._deadline is None:  # the connection's first request: timed since it opened
            self._arm()

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._count(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self._count(len(name) + len(value) + 4)

    def on_headers_complete(self) -> None:
        self._head_done = True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()  # arrived: the app takes what time it needs to answer
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        self._disarm()  # the connection is the WebSocket protocol's from now on
        super().handle_websocket_upgrade()

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.request_seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self.max_head_bytes:
            larger = f"the request line and headers are larger than {self.max_head_bytes} bytes"
            self._refuse(431, "Request Header Fields Too Large", larger)
            self.headers.clear()  # kept by the parse so far: let them go now
            raise _Refused  # stops the parse; uvicorn's answer to that is sent to no one

    def send_400_response(self, msg: str) -> None:
        if not self.transport.is_closing():  # else refused already, and answered
            super().send_400_response(msg)

    def _too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self._head_done and self.cycle is not None:
            # The app is reading the body: it sees the client gone, and answers no one.
            self.cycle.disconnected = True
            self.cycle.message_event.set()
            if self.cycle.response_started:
                self.transport.close()
                return
        late = f"the request did not arrive within {self.request_seconds:g} seconds"
        self._refuse(408, "Request Timeout", late)

    def _refuse(self, status: int, reason: str, detail: str) -> None:
        """Answer in problem details (the app never saw the request) and hang up."""
        problem = {"title": reason, "status": status, "detail": detail}
        body = json.dumps(problem).encode()
        head = (
            f"HTTP/1.1 {status} {reason}\r\n"
            "content-type: application/problem+json\r\n"
            f"content-length: {len(body)}\r\n"
            "connection: close\r\n\r\n"
        ).encode()
        self.transport.write(head + body)
        self.transport.close()


def limited_http(settings: ServiceSettings) -> type[LimitedHttp]:
    """The protocol class for uvicorn's `http=`, with the limits of `settings`."""
    limits = {
        "request_seconds": settings.http_request_seconds,
        "max_head_bytes": settings.http_max_head_bytes,
    }
    return type("ServiceHttp", (LimitedHttp,), limits)


class _Refused(Exception):
    """Raised in a parser's callback to stop the parse of a request already answered."""
