"""A real webhook receiver on loopback for the notification tests: verifies each
message's Standard Webhooks signature and counts the ``webhook-id``s it accepted. With
``hold_s`` it holds each request (``entered`` is set) until ``release`` or ``hold_s``
seconds, then answers: a slow or hung receiver."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from enforcer.api.signature import sign


@dataclass
class Receiver:
    url: str
    key: bytes
    status: int = 204  # what the receiver answers (503: "down")
    accepted: Counter[str] = field(default_factory=Counter)
    attempts: Counter[str] = field(default_factory=Counter)
    bodies: dict[str, Any] = field(default_factory=dict)
    bad_signatures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    hold_s: float = 0.0
    entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


@contextmanager
def receiver(key: bytes, path: str = "/noc") -> Iterator[Receiver]:
    box: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            rec = box[0]
            body = self.rfile.read(int(self.headers["content-length"]))
            msg_id = self.headers.get("webhook-id", "")
            stamp = self.headers.get("webhook-timestamp", "")
            good = sign(rec.key, msg_id, stamp, body) in (
                self.headers.get("webhook-signature", "").split())
            if rec.hold_s > 0:
                rec.entered.set()
                rec.release.wait(rec.hold_s)
            with rec.lock:
                rec.attempts[msg_id] += 1
                if not good:
                    rec.bad_signatures += 1
                status = rec.status if good else 401
                if 200 <= status < 300:
                    rec.accepted[msg_id] += 1
                    rec.bodies[msg_id] = json.loads(body)
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box.append(Receiver(f"http://127.0.0.1:{server.server_address[1]}{path}", key))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield box[0]
    finally:
        box[0].release.set()
        server.shutdown()
        server.server_close()
