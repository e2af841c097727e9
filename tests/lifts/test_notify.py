"""Outbound webhooks: signed per Standard Webhooks (checked by a tiny receiver on
127.0.0.1), retried on failure with the same webhook-id, routed by the policy, and
never blocking the caller."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from enforcer.api.signature import verify
from enforcer.config import Settings
from enforcer.notify import LogNotifier, WebhookNotifier, build_notifier
from enforcer.policy import Policy, parse_policy

KEY = b"b" * 32
SECRET = "whsec_" + base64.b64encode(KEY).decode()


class Receiver:
    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []
        self.fail_first = 0
        rec = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                if rec.fail_first > 0:
                    rec.fail_first -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                verify(keys=[KEY], webhook_id=self.headers["webhook-id"],
                       timestamp=self.headers["webhook-timestamp"],
                       signature=self.headers["webhook-signature"], body=body,
                       now=datetime.now(UTC), tolerance_s=300)  # raises if bad
                rec.got.append({"id": self.headers["webhook-id"], "path": self.path,
                                **json.loads(body)})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


def _policy(url: str, **delivery: Any) -> Policy:
    reasons: dict[str, dict[str, Any]] = {
        r: {"default_scope": "node", "lift": {"rule": "any"}} for r in (
        "threat_of_violence", "harassment", "fraud", "theft_of_service", "non_payment",
        "other")}
    reasons["harassment"]["notify"] = [
        {"to": ["board"], "events": ["lift.requested", "lift.approved"]}, {"to": ["noc"]}]
    return parse_policy({"reasons": reasons, "webhooks": {
        "board": {"url": url + "/board", "secret": SECRET},
        "noc": {"url": url + "/noc", "secret": SECRET, "timeout_s": 2}},
        "delivery": {"retry_base_s": 0.05, "max_attempts": 3, **delivery}})


def test_signed_routed_and_retried(receiver: Receiver) -> None:
    n = WebhookNotifier(_policy(receiver.url))
    try:
        receiver.fail_first = 1
        n.notify("lift.requested", {"order_id": "ord_1", "reason": "harassment"})
        n.notify("ban.sighting", {"order_id": "ord_1"})  # no reason: looked up
        n.notify("lift.requested", {"order_id": "ord_2", "reason": "fraud"})  # nobody
        assert n.wait_idle(10)
    finally:
        n.close()
    by_path = sorted((g["path"], g["type"]) for g in receiver.got)
    assert by_path == [("/board", "lift.requested"), ("/noc", "ban.sighting"),
                       ("/noc", "lift.requested")]
    assert all(g["data"]["order_id"] == "ord_1" for g in receiver.got)
    assert n.delivered == 3 and n.failed == 0


def test_a_retry_keeps_the_webhook_id(receiver: Receiver) -> None:
    seen: list[str] = []
    n = WebhookNotifier(_policy(receiver.url), reason_of=lambda _o: "fraud")
    n.bind_store(lambda _o: "harassment")
    receiver.fail_first = 2
    orig = n._send

    def spy(msg: Any) -> None:
        seen.append(msg.msg_id)
        orig(msg)

    n._send = spy  # type: ignore[method-assign]
    try:
        n.notify("lift.approved", {"order_id": "ord_9"})
        assert n.wait_idle(10)
    finally:
        n.close()
    # board and noc each failed once (503) and were retried under the same webhook-id
    assert len(seen) == 4 and all(seen.count(i) == 2 for i in seen)
    assert {g["id"] for g in receiver.got} == set(seen)
    assert receiver.fail_first == 0 and n.delivered == 2


def test_unreachable_target_never_blocks(receiver: Receiver) -> None:
    dead = "http://127.0.0.1:9"
    n = WebhookNotifier(_policy(dead, queue_size=2, max_attempts=2))
    try:
        started = time.monotonic()
        for i in range(50):
            n.notify("ban.imposed", {"order_id": f"ord_{i}", "reason": "harassment"})
        assert time.monotonic() - started < 0.5
        assert n.dropped > 0
        assert n.wait_idle(15)
        assert n.failed >= 1 and n.delivered == 0
    finally:
        n.close()


def test_build_notifier(tmp_path: Any, receiver: Receiver) -> None:
    assert isinstance(build_notifier(Settings()), LogNotifier)
    path = tmp_path / "p.json"
    path.write_text(json.dumps(_policy(receiver.url).model_dump(mode="json") | {
        "webhooks": {"board": {"url": receiver.url, "secret": SECRET},
                     "noc": {"url": receiver.url, "secret": SECRET}}}))
    n = build_notifier(Settings(policy=path))
    assert isinstance(n, WebhookNotifier)
    n.close()
