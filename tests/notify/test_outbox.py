"""The notification outbox on a real SQLite store with a real HTTP receiver on
loopback: messages are written in the event's transaction, delivered at least once
under a stable ``webhook-id``, retried with backoff, then dropped or failed, counted."""

from __future__ import annotations

import base64
import functools
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from enforcer.api.testing import FakeClock
from enforcer.domain.mac import Mac
from enforcer.domain.model import DeviceKind, Reason, Role, Scope
from enforcer.errors import StoreError
from enforcer.lifts import LiftWorkflow
from enforcer.metrics import Metrics
from enforcer.notify import OutboxDelivery, OutboxNotifier
from enforcer.policy import Policy
from enforcer.store import OrderSpec, Store, upgrade
from enforcer.store.outbox import message_body
from enforcer.store.records import DeviceSpec
from tests.notify.receiver import Receiver, receiver

KEY = b"k" * 32
SECRET = "whsec_" + base64.b64encode(KEY).decode()


def _policy(url: str, **delivery: float) -> Policy:
    every = {"default_scope": "node", "lift": {"group": "g", "rule": "any"},
             "notify": [{"to": ["noc"]}]}
    return Policy.model_validate({
        "webhooks": {"noc": {"url": url, "secret": SECRET, "timeout_s": 2}},
        "delivery": {"max_attempts": 3, "retry_base_s": 1, "retry_max_s": 4, **delivery},
        "reasons": {r.value: every for r in Reason}})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    url = f"sqlite:///{tmp_path / 'outbox.db'}"
    upgrade(url)
    s = Store.from_url(url, clock=FakeClock())
    yield s
    s.dispose()


@pytest.fixture
def rec() -> Iterator[Receiver]:
    with receiver(KEY) as r:
        yield r


def _spec(ticket: str = "T-1") -> OrderSpec:
    return OrderSpec(ticket=ticket, account="acct-1", reason=Reason.FRAUD, scope=Scope.NODE,
                     node="node-a",
                     devices=(DeviceSpec(Mac("00:11:22:33:44:55"), DeviceKind.CABLE_MODEM),))


def test_ban_imposed_is_written_with_the_order(store: Store, rec: Receiver) -> None:
    OutboxNotifier(_policy(rec.url), store)
    order, _ = store.create_order(_spec(), actor="eng", source="api")
    rows = store.outbox_messages()
    assert [(r["event"], r["target"], r["order_id"], r["state"]) for r in rows] == [
        ("ban.imposed", "noc", order.id, "pending")]


def test_a_rolled_back_event_leaves_no_message(store: Store, rec: Receiver) -> None:
    OutboxNotifier(_policy(rec.url), store)
    with pytest.raises(StoreError), store.write_session() as session:
        store.outbox_add(session, "ban.imposed", {"order_id": "ord_x"}, reason="fraud")
        raise StoreError("the event's transaction fails")
    assert store.outbox_messages() == []


def test_lift_requested_is_written_in_the_lift_transaction(store: Store, rec: Receiver) -> None:
    policy = _policy(rec.url)
    notifier = OutboxNotifier(policy, store)
    order, _ = store.create_order(_spec(), actor="eng", source="api")
    eng, _ = store.add_user("eng", Role.ENGINEER)
    store.add_user("ann", Role.APPROVER, groups=("g",))
    wf = LiftWorkflow(store=store, policy=policy, notifier=notifier, wake=lambda _o: None)
    lift = wf.request(order.id, eng, reason="paid")
    events = sorted(r["event"] for r in store.outbox_messages())
    assert events == ["ban.imposed", "lift.requested"]  # once each, not twice
    assert {r["order_id"] for r in store.outbox_messages()} == {lift.order_id}


def test_delivery_stable_id_signature_and_metrics(store: Store, rec: Receiver) -> None:
    policy = _policy(rec.url)
    notifier = OutboxNotifier(policy, store)
    metrics = Metrics(CollectorRegistry())
    metrics.bind_store(store)
    delivery = OutboxDelivery(policy, store, metrics=metrics)
    order, _ = store.create_order(_spec(), actor="eng", source="api")
    notifier.notify("ban.verified", {"order_id": order.id})  # reason looked up
    reg = metrics.registry
    assert reg.get_sample_value("enforcer_notifications", {"state": "pending"}) == 2
    rec.status = 503  # the receiver is down: retried later, same id
    assert delivery.run_once() == 2
    assert delivery.run_once() == 0  # not due yet (backoff)
    clock = store.clock
    assert isinstance(clock, FakeClock)
    clock.advance(5)
    rec.status = 204
    assert delivery.run_once() == 2
    ids = {r["id"] for r in store.outbox_messages()}
    assert set(rec.accepted) == ids and all(n == 1 for n in rec.accepted.values())
    assert all(rec.attempts[i] == 2 for i in ids) and rec.bad_signatures == 0
    assert {b["type"] for b in rec.bodies.values()} == {"ban.imposed", "ban.verified"}
    assert reg.get_sample_value("enforcer_notifications_delivered_total",
                                {"target": "noc"}) == 2
    assert reg.get_sample_value("enforcer_notifications", {"state": "pending"}) == 0
    assert reg.get_sample_value("enforcer_notifications", {"state": "delivered"}) == 2
    assert delivery.run_once() == 0  # delivered messages are never sent again
    delivery.close()


def test_retries_are_bounded_then_dropped_and_4xx_fails(store: Store, rec: Receiver) -> None:
    policy = _policy(rec.url)
    OutboxNotifier(policy, store)
    metrics = Metrics(CollectorRegistry())
    delivery = OutboxDelivery(policy, store, metrics=metrics, rand=lambda: 1.0)
    clock = store.clock
    assert isinstance(clock, FakeClock)
    store.create_order(_spec(), actor="eng", source="api")
    rec.status = 503
    for _ in range(3):
        assert delivery.run_once() == 1
        clock.advance(10)
    assert delivery.run_once() == 0
    [row] = store.outbox_messages()
    assert row["state"] == "dropped" and row["attempts"] == 3
    assert metrics.registry.get_sample_value("enforcer_notifications_dropped_total",
                                             {"target": "noc"}) == 1
    rec.status = 400
    store.create_order(_spec("T-2"), actor="eng", source="api")
    assert delivery.run_once() == 1
    assert store.outbox_messages(state="failed")[0]["attempts"] == 1
    assert metrics.registry.get_sample_value("enforcer_notifications_failed_total",
                                             {"target": "noc"}) == 1
    delivery.close()


def test_backoff_has_jitter(store: Store, rec: Receiver) -> None:
    """The first retry waits retry_base_s x (0.5 .. 1.0): two senders with different
    random draws do not retry in step."""
    from sqlalchemy import select

    from enforcer.store import schema as s
    policy = _policy(rec.url)
    OutboxNotifier(policy, store)
    rec.status = 503
    for i, draw in enumerate((0.0, 1.0)):
        store.create_order(_spec(f"T-{i}"), actor="eng", source="api")
        OutboxDelivery(policy, store, rand=functools.partial(float, draw)).run_once()
    with store.read_session() as session:
        due = sorted(session.scalars(select(s.OutboxMessage.due_at)))
    now = store.clock()
    assert [round((d - now).total_seconds(), 3) for d in due] == [0.5, 1.0]


def test_delivery_thread_sends_on_wake_only_while_holding_the_lease(
        store: Store, rec: Receiver) -> None:
    import threading
    import time

    policy = _policy(rec.url, poll_s=60)  # a poll too slow to matter: wake() must do it
    notifier = OutboxNotifier(policy, store)
    delivery = OutboxDelivery(policy, store)
    notifier.wake = delivery.wake
    holding = threading.Event()
    delivery.start(holding.is_set)
    try:
        order, _ = store.create_order(_spec(), actor="eng", source="api")
        notifier.notify("ban.imposed", {"order_id": order.id})  # wakes; not the holder
        time.sleep(0.3)
        assert not rec.attempts and store.outbox_messages(state="pending")
        holding.set()
        notifier.notify("ban.verified", {"order_id": order.id, "reason": "fraud"})
        deadline = time.monotonic() + 10
        while len(rec.accepted) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sorted(b["type"] for b in rec.bodies.values()) == ["ban.imposed",
                                                                  "ban.verified"]
    finally:
        delivery.close()


def test_outbox_rows_follow_the_bound_routing(store: Store) -> None:
    """No routing bound: nothing written; bound: one row per target the router names for
    (event, reason), the same body and order under distinct ids."""
    assert not store.outbox_enabled
    with store.write_session() as session:
        assert store.outbox_add(session, "ban.imposed", {"order_id": "o"}, reason="x") == []
    assert store.enqueue_notification("ban.imposed", {"order_id": "o"}, reason="x") == []
    asked: list[tuple[str, str | None]] = []

    def router(event: str, reason: str | None) -> list[str]:
        asked.append((event, reason))
        return ["a", "b"] if reason == "fraud" else []

    store.route_notifications(router)
    assert store.outbox_enabled
    assert store.enqueue_notification("ban.imposed", {"order_id": "o"}, reason="other") == []
    ids = store.enqueue_notification("ban.imposed", {"order_id": "o", "n": 1},
                                     reason="fraud")
    none = store.enqueue_notification("lift.approved", {"order_id": ""}, reason="fraud")
    assert asked == [("ban.imposed", "other"), ("ban.imposed", "fraud"),
                     ("lift.approved", "fraud")]
    assert len(ids) == 2 and len(set(ids)) == 2 and all(i.startswith("msg_") for i in ids)
    now = store.clock()
    rows = store.outbox_due()
    assert [(r.id, r.event, r.target, r.order_id, r.attempts, r.created_at)
            for r in rows if r.event == "ban.imposed"] == sorted(
        [(i, "ban.imposed", t, "o", 0, now) for i, t in zip(ids, ("a", "b"), strict=True)])
    assert {r.body for r in rows if r.event == "ban.imposed"} == {
        message_body("ban.imposed", {"order_id": "o", "n": 1}, now)}
    assert {(r.id, r.order_id) for r in rows if r.event == "lift.approved"} == {
        (i, None) for i in none}
    assert sorted((m["event"], m["target"], m["order_id"], m["state"])
                  for m in store.outbox_messages()) == [
        ("ban.imposed", "a", "o", "pending"), ("ban.imposed", "b", "o", "pending"),
        ("lift.approved", "a", None, "pending"), ("lift.approved", "b", None, "pending")]
    store.route_notifications(None)
    assert not store.outbox_enabled
    assert store.enqueue_notification("ban.imposed", {"order_id": "o"}, reason="fraud") == []
    assert len(store.outbox_messages()) == 4


def test_outbox_due_mark_count_and_prune(store: Store) -> None:
    clock = store.clock
    assert isinstance(clock, FakeClock)
    store.route_notifications(lambda _e, _r: ["t"])
    assert store.outbox_next_due() is None and store.count_outbox() == ({}, None)
    first = clock()
    [a] = store.enqueue_notification("e", {}, reason=None)
    clock.advance(1)
    [b] = store.enqueue_notification("e", {}, reason=None)
    clock.advance(1)
    [c] = store.enqueue_notification("e", {}, reason=None)
    assert [r.id for r in store.outbox_due()] == [a, b, c]  # oldest first
    assert [r.id for r in store.outbox_due(limit=2)] == [a, b]
    assert [r.id for r in store.outbox_due(first)] == [a]
    assert store.outbox_next_due() == first
    # a retry moves a behind the others; a retry without a time is due now
    assert store.outbox_mark(a, state="pending", attempts=1, error="HTTP 500",
                             due_at=clock() + timedelta(seconds=10))
    assert [r.id for r in store.outbox_due()] == [b, c]
    assert store.outbox_next_due() == first + timedelta(seconds=1)
    assert store.outbox_mark(b, state="pending", attempts=1, error="x" * 400)
    [mb] = [m for m in store.outbox_messages() if m["id"] == b]
    assert mb["last_error"] == "x" * 300 and mb["attempts"] == 1
    assert mb["finished_at"] is None
    assert [r.id for r in store.outbox_due()] == [b, c]  # b due now, as c: by id
    clock.advance(10)
    assert [(r.id, r.attempts) for r in store.outbox_due()] == [(b, 1), (c, 0), (a, 1)]
    assert store.outbox_mark(c, state="delivered", attempts=1)
    assert not store.outbox_mark(c, state="failed", attempts=2)  # no longer pending
    assert store.outbox_mark(b, state="failed", attempts=2, error="HTTP 400")
    by_id = {m["id"]: m for m in store.outbox_messages()}
    assert (by_id[c]["state"], by_id[c]["attempts"], by_id[c]["last_error"],
            by_id[c]["finished_at"]) == ("delivered", 1, None, clock())
    assert (by_id[b]["state"], by_id[b]["last_error"]) == ("failed", "HTTP 400")
    assert [by_id[i]["created_at"] for i in (a, b, c)] == [
        first, first + timedelta(seconds=1), first + timedelta(seconds=2)]
    assert [m["id"] for m in store.outbox_messages(state="pending")] == [a]
    assert store.count_outbox() == ({"pending": 1, "delivered": 1, "failed": 1}, first)
    with pytest.raises(ValueError, match=r"^outbox state must be one of pending, delivered, "
                                         r"failed, dropped$"):
        store.outbox_mark(a, state="gone", attempts=1)
    assert store.outbox_mark(a, state="dropped", attempts=2, error="")
    assert store.outbox_messages(state="dropped")[0]["last_error"] is None
    assert store.outbox_next_due() is None and store.outbox_due() == []
    # pruning: only finished messages finished more than older_than ago
    clock.advance(100)
    [d] = store.enqueue_notification("e", {}, reason=None)
    assert store.outbox_prune(timedelta(seconds=100)) == 0  # finished exactly 100 s ago
    clock.advance(1)
    assert store.outbox_prune(timedelta(seconds=100)) == 3
    assert [m["id"] for m in store.outbox_messages()] == [d]


def test_outbox_listing_order_and_the_due_limit(store: Store) -> None:
    """Messages are listed by when they were written, then by id; a listing of due
    messages holds at most 100 unless told otherwise."""
    clock = store.clock
    assert isinstance(clock, FakeClock)
    names = [f"t{i:03d}" for i in range(101)]
    store.route_notifications(lambda _e, _r: names)
    same_time = store.enqueue_notification("e", {}, reason=None)  # one instant: by id
    assert [m["id"] for m in store.outbox_messages()] == sorted(same_time)
    assert len(store.outbox_due()) == 100
    assert [r.id for r in store.outbox_due(limit=101)] == sorted(same_time)  # due: by id
    store.route_notifications(lambda _e, _r: ["t"])
    start = clock.now + timedelta(seconds=10)
    later = []
    for i in range(20):  # written in one millisecond, each 10 us before the previous
        clock.now = start - timedelta(microseconds=10 * i)
        later += store.enqueue_notification("e", {}, reason=None)
    listed = [m["id"] for m in store.outbox_messages()]
    assert listed[101:] == list(reversed(later))
