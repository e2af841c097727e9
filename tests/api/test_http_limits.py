"""Slow and idle clients against the real HTTP server (uvicorn + the guarded h11
protocol) on loopback: half-sent request heads and bodies are closed after their
deadline, connections past the cap are closed at once, and the server keeps answering."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from prometheus_client import CollectorRegistry

from enforcer.api import create_app
from enforcer.api.embedded import EmbeddedServer
from enforcer.api.server import uvicorn_config
from enforcer.api.testing import RecordingEngine
from enforcer.config import HttpSettings
from enforcer.metrics import Metrics
from enforcer.store import Store
from tests.api.api_env import make_settings

HTTP = HttpSettings(listen="127.0.0.1:0", header_timeout_s=0.5, body_timeout_s=0.5,
                    max_connections=40, keep_alive_s=1)


@dataclass
class Served:
    port: int
    metrics: Metrics

    def closed(self, reason: str) -> float:
        v = self.metrics.registry.get_sample_value(
            "enforcer_http_connections_closed_total", {"reason": reason})
        return v or 0.0


@pytest.fixture
def served(store: Store) -> Iterator[Served]:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    app = create_app(settings=make_settings(), store=store, engine=RecordingEngine(),
                     registry=registry, metrics=metrics)
    counter = metrics.http_connections_closed
    server = EmbeddedServer(uvicorn_config(
        app, listen_host="127.0.0.1", port=0, http=HTTP,
        on_close=lambda reason: counter.labels(reason=reason).inc()))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        time.sleep(0.01)
    assert server.started
    port = server.servers[0].sockets[0].getsockname()[1]
    yield Served(port, metrics)
    server.should_exit = True
    thread.join(10)


def _connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    return s


def _closed_by_server(s: socket.socket) -> bool:
    """True when the server closed ``s`` (EOF or reset) within the socket's timeout."""
    try:
        while True:
            data = s.recv(4096)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def _healthy(port: int) -> bool:
    return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200


def test_half_sent_heads_are_closed(served: Served) -> None:
    socks = []
    for _ in range(30):  # 30 connections that never finish their request head
        s = _connect(served.port)
        s.sendall(b"POST /v1/hooks/escalation HTTP/1.1\r\nHost: x\r\nwebhook-id: a")
        socks.append(s)
    assert all(_closed_by_server(s) for s in socks)
    for s in socks:
        s.close()
    assert served.closed("header_timeout") >= 30
    assert _healthy(served.port)


def test_idle_connections_without_a_byte_are_closed(served: Served) -> None:
    s = _connect(served.port)
    assert _closed_by_server(s)
    s.close()
    assert served.closed("header_timeout") >= 1


def test_half_sent_body_is_closed(served: Served) -> None:
    s = _connect(served.port)
    s.sendall(b"POST /v1/hooks/escalation HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
              b"content-type: application/json\r\n\r\n{\"tick")
    assert _closed_by_server(s)
    s.close()
    assert served.closed("body_timeout") == 1
    assert _healthy(served.port)


def test_keep_alive_connection_gets_a_new_head_deadline(served: Served) -> None:
    s = _connect(served.port)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    first = s.recv(4096)
    assert first.startswith(b"HTTP/1.1 200")
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # second head never finished
    assert _closed_by_server(s)
    s.close()


def test_connections_past_the_cap_are_closed_and_service_resumes(served: Served) -> None:
    socks = [_connect(served.port) for _ in range(60)]  # cap is 40
    for s in socks:
        s.settimeout(10)
    closed = sum(_closed_by_server(s) for s in socks)  # all of them, sooner or later
    assert closed == 60
    assert served.closed("too_many_connections") >= 1
    for s in socks:
        s.close()
    assert _healthy(served.port)
