"""Outbound webhooks through the store's outbox: signed per Standard Webhooks (checked
by a tiny receiver on 127.0.0.1), retried on failure with the same webhook-id, routed
by the policy, and never raising into the caller, even with every target down."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from enforcer.api.signature import verify
from enforcer.api.testing import FakeClock
from enforcer.config import Settings
from enforcer.domain.model import Reason
from enforcer.notify import LogNotifier, OutboxDelivery, OutboxNotifier, build_notifier
from enforcer.policy import Policy, parse_policy
from enforcer.store import Store
from tests.notify.test_routing import order

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


def _drain(store: Store, delivery: OutboxDelivery, rounds: int = 10) -> None:
    """Delivery passes, moving the store's clock past each backoff, until none is due."""
    clock = store.clock
    assert isinstance(clock, FakeClock)
    for _ in range(rounds):
        delivery.run_once()
        if not store.outbox_messages(state="pending"):
            return
        clock.advance(60)


def test_signed_routed_and_retried(store: Store, receiver: Receiver) -> None:
    policy = _policy(receiver.url)
    n = OutboxNotifier(policy, store)
    d = OutboxDelivery(policy, store)
    try:
        h = order(store, Reason.HARASSMENT, "T-1")  # ban.imposed: to the noc
        f = order(store, Reason.FRAUD, "T-2")  # fraud: nobody is told
        receiver.fail_first = 1
        n.notify("lift.requested", {"order_id": h, "reason": "harassment"})
        n.notify("ban.sighting", {"order_id": h})  # no reason: the order's
        n.notify("lift.approved", {"order_id": f, "reason": "fraud"})  # nobody
        _drain(store, d)
    finally:
        d.close()
    by_path = sorted((g["path"], g["type"]) for g in receiver.got)
    # lift.requested is written by the store with the lift request, not by notify()
    assert by_path == [("/noc", "ban.imposed"), ("/noc", "ban.sighting")]
    assert all(g["data"]["order_id"] == h for g in receiver.got)
    assert [(m["state"], m["attempts"]) for m in store.outbox_messages()] == [
        ("delivered", 2), ("delivered", 1)]  # the first one met the 503


def test_a_retry_keeps_the_webhook_id(store: Store, receiver: Receiver) -> None:
    policy = _policy(receiver.url)
    n = OutboxNotifier(policy, store)
    d = OutboxDelivery(policy, store)
    h = order(store, Reason.HARASSMENT, "T-1")
    n.notify("lift.approved", {"order_id": h})  # to the board and the noc
    ids = {m["id"] for m in store.outbox_messages()}
    receiver.fail_first = 3  # ban.imposed, then the two lift.approved, each 503 once
    try:
        _drain(store, d)
    finally:
        d.close()
    assert receiver.fail_first == 0
    assert {g["id"] for g in receiver.got} == ids and len(receiver.got) == 3
    assert sorted((g["path"], g["type"]) for g in receiver.got) == [
        ("/board", "lift.approved"), ("/noc", "ban.imposed"), ("/noc", "lift.approved")]
    assert all(m["attempts"] == 2 for m in store.outbox_messages())


def test_every_target_down_never_raises_and_nothing_is_lost(store: Store) -> None:
    dead = "http://127.0.0.1:9"  # nothing listens on the discard port
    policy = _policy(dead, max_attempts=2)
    n = OutboxNotifier(policy, store)
    d = OutboxDelivery(policy, store)
    try:
        orders = [order(store, Reason.HARASSMENT, f"T-{i}") for i in range(5)]
        for o in orders:
            n.notify("ban.verified", {"order_id": o})
        assert len(store.outbox_messages(state="pending")) == 10  # imposed + verified
        assert d.run_once() == 10
        rows = store.outbox_messages()
        assert {(r["state"], r["attempts"], r["last_error"]) for r in rows} == {
            ("pending", 1, "ConnectError")}  # kept for a retry, not lost
        _drain(store, d)
    finally:
        d.close()
    assert {(r["state"], r["attempts"]) for r in store.outbox_messages()} == {
        ("dropped", 2)}


def test_build_notifier(tmp_path: Any, store: Store, receiver: Receiver) -> None:
    assert isinstance(build_notifier(Settings(), store), LogNotifier)
    assert not store.outbox_enabled  # no targets: nothing is routed to the outbox
    path = tmp_path / "p.json"
    path.write_text(json.dumps(_policy(receiver.url).model_dump(mode="json") | {
        "webhooks": {"board": {"url": receiver.url, "secret": SECRET},
                     "noc": {"url": receiver.url, "secret": SECRET}}}))
    n = build_notifier(Settings(policy=path), store)
    assert isinstance(n, OutboxNotifier) and store.outbox_enabled
