"""The HTTP server's guards against slow or idle clients: uvicorn's h11 protocol with a
deadline for the request head, a deadline for the body, and a cap on open connections.

uvicorn (0.3x-0.5x) times out only idle keep-alive connections: a client that sends half
a request head, or a body one byte a minute, holds its connection (and a file
descriptor) for ever. :func:`guarded_protocol` returns a protocol class that closes
such a connection when ``header_timeout_s`` passes before the head is complete, or
``body_timeout_s`` passes between the head and the end of the body, and that closes a
new connection at once when ``max_connections`` are already open. Each closure is
counted in ``enforcer_http_connections_closed_total{reason}``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("enforcer.api")
OnClose = Callable[[str], None]


def guarded_protocol(*, header_timeout_s: float, body_timeout_s: float,
                     max_connections: int, on_close: OnClose) -> type[asyncio.Protocol]:
    """An h11 protocol class enforcing the three limits (see the module docstring)."""

    class GuardedH11(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None
        _waiting_for: str = ""

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                on_close("too_many_connections")
                transport.abort()
                return
            self._arm("header")

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._deadline is None and self.conn.their_state is h11.IDLE:
                self._arm("header")  # the next request on a kept-alive connection
            super().data_received(data)
            self._follow()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._follow()

        def _follow(self) -> None:
            """Move the deadline along with the request's progress."""
            state = self.conn.their_state
            if state is h11.SEND_BODY:
                if self._waiting_for != "body":
                    self._disarm()
                    self._arm("body")
            elif state is not h11.IDLE:  # DONE, MUST_CLOSE, CLOSED, ERROR: nothing to read
                self._disarm()

        def _arm(self, what: str) -> None:
            self._disarm()
            timeout = header_timeout_s if what == "header" else body_timeout_s
            self._waiting_for = what
            self._deadline = self.loop.call_later(timeout, self._expired)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            self._deadline, self._waiting_for = None, ""

        def _expired(self) -> None:
            what, self._deadline = self._waiting_for, None
            if what == "body" and self.flow.read_paused:
                self._arm("body")  # we stopped reading (the app is slow), not the client
                return
            on_close(f"{what}_timeout")
            log.info("closing a connection from %s: request %s not received in time",
                     self.client[0] if self.client else "?", what)
            self.transport.abort()

    return GuardedH11


def uvicorn_config(app: Any, *, listen_host: str, port: int, http: Any,
                   on_close: OnClose) -> uvicorn.Config:
    """The daemon's uvicorn settings (``http`` is ``settings.http``)."""
    return uvicorn.Config(
        app, host=listen_host, port=port, log_level="warning", lifespan="off",
        access_log=False, timeout_keep_alive=int(max(1, http.keep_alive_s)),
        limit_concurrency=http.max_connections + 1,  # our cap (below) closes first
        h11_max_incomplete_event_size=http.max_header_bytes,
        http=guarded_protocol(header_timeout_s=http.header_timeout_s,
                              body_timeout_s=http.body_timeout_s,
                              max_connections=http.max_connections, on_close=on_close))
