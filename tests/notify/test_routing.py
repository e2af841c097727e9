"""Which team hears of which lift: lift.requested / approved / refused / expired are
routed by the order's reason (a harassment lift notice must reach the board, never the
fraud desk), with the workflow's payload, through the outbox; and what one delivery
attempt does with each kind of answer."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from enforcer.api.signature import verify
from enforcer.api.testing import FakeClock
from enforcer.domain.mac import Mac
from enforcer.domain.model import DeviceKind, Reason, Role, Scope
from enforcer.lifts import LiftWorkflow
from enforcer.metrics import Metrics
from enforcer.notify import (
    STORE_WRITTEN,
    LogNotifier,
    OutboxDelivery,
    OutboxNotifier,
    build_notifier,
)
from enforcer.policy import Policy
from enforcer.store import OrderSpec, Store, upgrade
from enforcer.store.outbox import message_body
from enforcer.store.records import DeviceSpec
from tests.notify.receiver import receiver

KEY = b"k" * 32
SECRET = "whsec_" + base64.b64encode(KEY).decode()
LIFT_EVENTS = ["lift.requested", "lift.approved", "lift.refused", "lift.expired"]


def routed_policy(**delivery: Any) -> Policy:
    """Harassment lift events to the board; fraud's (and its bans) to the fraud desk."""
    reasons: dict[str, Any] = {r.value: {"default_scope": "node", "lift": {
        "group": "g", "rule": "any"}} for r in Reason}
    reasons["harassment"]["notify"] = [{"to": ["board"], "events": LIFT_EVENTS}]
    reasons["fraud"]["notify"] = [{"to": ["fraud-desk"],
                                   "events": [*LIFT_EVENTS, "ban.verified"]}]
    hook = {"secret": SECRET, "timeout_s": 2}
    return Policy.model_validate({
        "webhooks": {"board": {"url": "http://127.0.0.1:9/board", **hook},
                     "fraud-desk": {"url": "http://127.0.0.1:9/fraud", **hook}},
        "delivery": {"max_attempts": 3, "retry_base_s": 2, "retry_max_s": 5, **delivery},
        "reasons": reasons})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    url = f"sqlite:///{tmp_path / 'routing.db'}"
    upgrade(url)
    s = Store.from_url(url, clock=FakeClock())
    yield s
    s.dispose()


def order(store: Store, reason: Reason, ticket: str) -> str:
    o, _ = store.create_order(OrderSpec(
        ticket=ticket, account="acct-1", reason=reason, scope=Scope.NODE, node="node-a",
        devices=(DeviceSpec(Mac("00:11:22:33:44:55"), DeviceKind.CABLE_MODEM),)),
        actor="eng", source="api")
    return o.id


def sent(store: Store) -> list[tuple[str, str, str | None]]:
    return sorted((r["event"], r["target"], r["order_id"]) for r in store.outbox_messages())


def test_lift_notices_are_routed_by_the_orders_reason(store: Store) -> None:
    policy = routed_policy()
    notifier = OutboxNotifier(policy, store)
    eng, _ = store.add_user("eng", Role.ENGINEER)
    ann, _ = store.add_user("ann", Role.APPROVER, groups=("g",))
    bob, _ = store.add_user("bob", Role.APPROVER, groups=("g",))
    woken: list[str] = []
    wf = LiftWorkflow(store=store, policy=policy, notifier=notifier, wake=woken.append)
    h, f = order(store, Reason.HARASSMENT, "T-h"), order(store, Reason.FRAUD, "T-f")
    wf.request(h, eng, reason="settled")
    wf.request(f, eng, reason="paid")
    assert sent(store) == [("lift.requested", "board", h), ("lift.requested", "fraud-desk", f)]
    wf.decide(h, ann, decision="approve")
    wf.decide(f, ann, decision="refuse")
    wf.decide(f, bob, decision="refuse")
    assert sent(store) == [
        ("lift.approved", "board", h), ("lift.refused", "fraud-desk", f),
        ("lift.requested", "board", h), ("lift.requested", "fraud-desk", f)]
    bodies = {(r["event"], r["target"]): r for r in store.outbox_messages()}
    assert set(bodies) == {("lift.approved", "board"), ("lift.refused", "fraud-desk"),
                           ("lift.requested", "board"), ("lift.requested", "fraud-desk")}
    assert woken == [h]
    o3 = order(store, Reason.HARASSMENT, "T-h2")
    lr = wf.request(o3, eng, reason="r", ttl_hours=1)
    clock = store.clock
    assert isinstance(clock, FakeClock)
    clock.advance(3600)
    asyncio.run(_expire(store, notifier))
    assert ("lift.expired", "board", o3) in sent(store)
    assert [e for e in sent(store) if e[0] == "lift.expired"] == [("lift.expired", "board", o3)]
    assert notifier.events[-1][0] == "lift.expired"
    assert notifier.events[-1][1]["lift_request_id"] == lr.id


async def _expire(store: Store, notifier: OutboxNotifier) -> None:
    from enforcer.lifts import expire_lifts
    from enforcer.notify import _PENDING_WRITES

    assert await expire_lifts(store, notifier) == 1
    await asyncio.gather(*list(_PENDING_WRITES))  # written from a worker thread


def test_the_outbox_notifier_looks_the_reason_up_and_never_raises(
        store: Store, caplog: pytest.LogCaptureFixture) -> None:
    notifier = OutboxNotifier(routed_policy(), store)
    wakes: list[int] = []
    notifier.wake = lambda: wakes.append(1)
    f = order(store, Reason.FRAUD, "T-1")
    assert sent(store) == []  # ban.imposed is routed nowhere by this policy
    notifier.notify("ban.verified", {"order_id": f})  # no reason: the order's
    assert sent(store) == [("ban.verified", "fraud-desk", f)] and wakes == [1]
    notifier.notify("ban.verified", {"order_id": f, "reason": "harassment"})
    assert len(sent(store)) == 1 and wakes == [1, 1]  # the given reason wins: no route
    notifier.notify("lift.requested", {"order_id": f})  # the store writes these itself
    assert len(sent(store)) == 1 and wakes == [1, 1, 1]
    assert {"ban.imposed", "lift.requested"} == STORE_WRITTEN
    with caplog.at_level(logging.ERROR, logger="enforcer.notify"):
        notifier.notify("ban.verified", {"order_id": "ord_missing"})
    assert len(sent(store)) == 1 and wakes == [1, 1, 1]
    [rec] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert rec.getMessage() == ("could not write notification ban.verified for order "
                                "ord_missing to the outbox: NotFound")
    notifier.notify("lift.approved", {"reason": "fraud"})  # no order at all
    assert ("lift.approved", "fraud-desk", None) in sent(store)
    assert [e for e, _ in notifier.events] == [
        "ban.verified", "ban.verified", "lift.requested", "ban.verified", "lift.approved"]
    for i in range(1005):
        notifier.events.append(("x", {"i": i}))
    notifier.notify("ban.verified", {"order_id": f})
    assert len(notifier.events) == 1000 and notifier.events[-1][0] == "ban.verified"


def test_message_body_is_fixed_json() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    body = message_body("lift.approved", {"order_id": "o", "x": at}, at)
    assert body == ('{"data": {"order_id": "o", "x": "2026-01-02 03:04:05+00:00"}, '
                    '"timestamp": "2026-01-02T03:04:05+00:00", "type": "lift.approved"}')


class Answers:
    """An httpx transport (a fake, inside this unit test) answering from a script."""

    def __init__(self, *answers: int | Exception) -> None:
        self.answers, self.requests = list(answers), list[httpx.Request]()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        a = self.answers.pop(0)
        if isinstance(a, Exception):
            raise a
        return httpx.Response(a)


def counts(m: Metrics) -> dict[tuple[str, str], float]:
    out = {}
    for what in ("delivered", "failed", "dropped"):
        for target in ("board", "fraud-desk"):
            v = m.registry.get_sample_value(f"enforcer_notifications_{what}_total",
                                            {"target": target})
            if v:
                out[(what, target)] = v
    return out


def one_message(store: Store, policy: Policy) -> str:
    OutboxNotifier(policy, store).notify("lift.approved", {"reason": "fraud"})
    [row] = store.outbox_due()
    return row.id


def delivery(store: Store, policy: Policy, answers: Answers, rand: float = 1.0
             ) -> tuple[OutboxDelivery, Metrics]:
    m = Metrics(CollectorRegistry())
    return OutboxDelivery(policy, store, metrics=m, transport=httpx.MockTransport(answers),
                          wall=lambda: 1_700_000_000.0, rand=lambda: rand), m


def state(store: Store) -> dict[str, Any]:
    [row] = store.outbox_messages()
    return row


def test_one_attempt_per_answer(store: Store) -> None:
    policy = routed_policy()
    msg_id = one_message(store, policy)
    answers = Answers(500, httpx.ConnectError("refused"), 429, 408)
    d, m = delivery(store, policy, answers, rand=1.0)
    clock = store.clock
    assert isinstance(clock, FakeClock)
    assert d.run_once() == 1
    req = answers.requests[0]
    assert req.url == "http://127.0.0.1:9/fraud" and req.method == "POST"
    assert req.headers["webhook-id"] == msg_id
    assert req.headers["webhook-timestamp"] == "1700000000"
    assert req.headers["content-type"] == "application/json"
    verify(keys=[KEY], webhook_id=msg_id, timestamp="1700000000",
           signature=req.headers["webhook-signature"], body=req.content,
           now=datetime.fromtimestamp(1_700_000_000, UTC),
           tolerance_s=1)
    assert json.loads(req.content)["type"] == "lift.approved"
    row = state(store)
    assert (row["state"], row["attempts"], row["last_error"]) == ("pending", 1, "HTTP 500")
    assert store.outbox_next_due() == clock() + timedelta(seconds=2)  # base 2 s x 1.0
    assert d.run_once() == 0  # not due yet
    clock.advance(2)
    assert d.run_once() == 1
    row = state(store)
    assert (row["state"], row["attempts"], row["last_error"]) == ("pending", 2, "ConnectError")
    assert store.outbox_next_due() == clock() + timedelta(seconds=4)  # 2 x 2^1
    clock.advance(4)
    assert d.run_once() == 1  # 429 on the last allowed attempt: dropped
    row = state(store)
    assert (row["state"], row["attempts"], row["last_error"]) == ("dropped", 3, "HTTP 429")
    assert counts(m) == {("dropped", "fraud-desk"): 1}
    d.close()


@pytest.mark.parametrize(("answer", "final"), [(200, "delivered"), (204, "delivered"),
                                                (299, "delivered"), (404, "failed"),
                                                (400, "failed"), (301, "failed"),
                                                (300, "failed"), (199, "failed")])
def test_final_answers(store: Store, answer: int, final: str) -> None:
    policy = routed_policy()
    one_message(store, policy)
    d, m = delivery(store, policy, Answers(answer))
    assert d.run_once() == 1
    row = state(store)
    assert (row["state"], row["attempts"]) == (final, 1)
    assert row["last_error"] == (None if final == "delivered" else f"HTTP {answer}")
    assert counts(m) == {(final, "fraud-desk"): 1}
    assert d.run_once() == 0
    d.close()


@pytest.mark.parametrize("answer", [408, 429, 500, 503, 599])
def test_retried_answers(store: Store, answer: int) -> None:
    policy = routed_policy()
    one_message(store, policy)
    d, m = delivery(store, policy, Answers(answer), rand=0.0)
    assert d.run_once() == 1
    assert state(store)["state"] == "pending" and counts(m) == {}
    assert store.outbox_next_due() == store.clock() + timedelta(seconds=1)  # 2 s x 0.5
    d.close()


def test_backoff_is_capped(store: Store) -> None:
    policy = routed_policy(max_attempts=10)
    one_message(store, policy)
    d, _ = delivery(store, policy, Answers(*[500] * 5))
    clock = store.clock
    assert isinstance(clock, FakeClock)
    delays = []
    for _ in range(5):
        assert d.run_once() == 1
        due = store.outbox_next_due()
        assert due is not None
        delays.append((due - clock()).total_seconds())
        clock.advance(10)
    assert delays == [2, 4, 5, 5, 5]
    d.close()


def test_a_target_removed_from_the_policy_drops_its_messages(store: Store) -> None:
    old = routed_policy()
    one_message(store, old)
    new = Policy.model_validate({**old.model_dump(mode="python"), "webhooks": {
        "board": old.webhooks["board"].model_dump()}} | {
        "reasons": {r.value: {"default_scope": "node", "lift": {"rule": "any"}}
                    for r in Reason}})
    answers = Answers()
    d, m = delivery(store, new, answers)
    assert d.run_once() == 1
    row = state(store)
    assert (row["state"], row["attempts"], row["last_error"]) == (
        "dropped", 0, "target is no longer in the policy")
    assert answers.requests == [] and counts(m) == {("dropped", "fraud-desk"): 1}
    d.close()


def test_build_notifier_kinds(store: Store, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    from enforcer.config import Settings

    assert isinstance(build_notifier(Settings(), store), LogNotifier)
    assert not store.outbox_enabled
    import yaml

    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(routed_policy().model_dump(mode="json") | {
        "webhooks": {k: {"url": v.url, "secret": SECRET}
                     for k, v in routed_policy().webhooks.items()}}))
    settings = Settings(policy=path)
    outbox = build_notifier(settings, store)
    assert isinstance(outbox, OutboxNotifier) and store.outbox_enabled


def test_log_notifier_keeps_the_last_events(caplog: pytest.LogCaptureFixture) -> None:
    n = LogNotifier(keep=2)
    with caplog.at_level(logging.INFO, logger="enforcer.notify"):
        for i in range(3):
            n.notify("ban.verified", {"order_id": f"o-{i}"})
    assert n.events == [("ban.verified", {"order_id": "o-1"}),
                        ("ban.verified", {"order_id": "o-2"})]
    assert caplog.records[0].getMessage() == "event ban.verified: {'order_id': 'o-0'}"
    assert len(LogNotifier().events) == 0


def test_outbox_delivery_logs_and_works_without_metrics(
        store: Store, caplog: pytest.LogCaptureFixture) -> None:
    policy = routed_policy()
    msg_id = one_message(store, policy)
    clock = store.clock
    assert isinstance(clock, FakeClock)
    d = OutboxDelivery(policy, store, transport=httpx.MockTransport(Answers(500, 500, 500, 400)),
                       wall=lambda: 1_700_000_000.0, rand=lambda: 1.0)
    with caplog.at_level(logging.WARNING, logger="enforcer.notify"):
        for _ in range(3):
            assert d.run_once() == 1
            clock.advance(10)
        one_message(store, policy)
        [row] = store.outbox_due()
        assert d.run_once() == 1
    assert [r.getMessage() for r in caplog.records] == [
        f"webhook {msg_id} to fraud-desk failed (HTTP 500); retry 1 in 2s",
        f"webhook {msg_id} to fraud-desk failed (HTTP 500); retry 2 in 4s",
        f"webhook {msg_id} to fraud-desk failed (HTTP 500) after 3 attempt(s); dropped",
        f"webhook {row.id} to fraud-desk refused (HTTP 400); not retried"]
    d.close()


def test_outbox_delivery_prunes_once_an_hour(store: Store) -> None:
    policy = routed_policy(keep_days=0.001)  # 86.4 s
    wall = [1_700_000_000.0]
    d = OutboxDelivery(policy, store, transport=httpx.MockTransport(Answers(204, 204, 204)),
                       wall=lambda: wall[0])
    clock = store.clock
    assert isinstance(clock, FakeClock)
    one_message(store, policy)
    assert d.run_once() == 1  # delivered; the first pass prunes (nothing old yet)
    clock.advance(100)
    one_message(store, policy)
    assert d.run_once() == 1
    assert len(store.outbox_messages()) == 2  # within the hour: not pruned
    wall[0] += 3600
    assert d.run_once() == 0
    assert len(store.outbox_messages()) == 2  # exactly an hour: not yet
    wall[0] += 1
    assert d.run_once() == 0
    assert [m["state"] for m in store.outbox_messages()] == ["delivered"]  # the old one
    d.close()


def test_outbox_delivery_thread_drains_more_than_a_batch(store: Store) -> None:
    import time

    from enforcer.notify import BATCH

    policy = routed_policy(poll_s=60)  # only wake() starts a pass
    notifier = OutboxNotifier(policy, store)
    for _ in range(BATCH + 5):
        notifier.notify("lift.approved", {"reason": "fraud"})
    d = OutboxDelivery(policy, store, transport=httpx.MockTransport(
        Answers(*[204] * (BATCH + 5))))
    d.start(lambda: True)
    try:
        d.wake()
        deadline = time.monotonic() + 30
        while store.outbox_messages(state="pending") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store.outbox_messages(state="pending") == []
        assert len(store.outbox_messages(state="delivered")) == BATCH + 5
    finally:
        d.close()
    assert d._thread is not None and not d._thread.is_alive()


# ---- what the delivery thread and one attempt promise beyond the answer codes -------


def test_a_redirect_is_not_followed(store: Store) -> None:
    """A 3xx is a refusal: the signed body is never sent on to another address."""
    policy = routed_policy()
    one_message(store, policy)
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(307, headers={"location": "http://127.0.0.1:9/elsewhere"})

    d = OutboxDelivery(policy, store, transport=httpx.MockTransport(answer))
    try:
        assert d.run_once() == 1
    finally:
        d.close()
    assert seen == ["http://127.0.0.1:9/fraud"]
    row = state(store)
    assert (row["state"], row["last_error"]) == ("failed", "HTTP 307")


def _to(url: str, timeout_s: float = 0.3) -> Policy:
    """routed_policy with the fraud desk at ``url``, answering within ``timeout_s``."""
    policy = routed_policy()
    hooks = {k: v.model_dump() for k, v in policy.webhooks.items()}
    hooks["fraud-desk"]["url"] = url
    hooks["fraud-desk"]["timeout_s"] = timeout_s
    return Policy.model_validate({**policy.model_dump(mode="python"), "webhooks": hooks})


def test_an_attempt_gives_up_at_the_targets_timeout(store: Store) -> None:
    # The receiver answers after 1.5 s: within httpx's default timeout (5 s), past the
    # target's (0.3 s), which is the one that must apply.
    with receiver(KEY, "/fraud") as slow:
        slow.hold_s = 1.5
        policy = _to(slow.url)
        one_message(store, policy)
        d = OutboxDelivery(policy, store)
        try:
            assert d.run_once() == 1  # the receiver holds the request past 0.3 s
        finally:
            d.close()
        assert slow.entered.is_set()
        row = state(store)
        assert (row["state"], row["attempts"], row["last_error"]) == (
            "pending", 1, "ReadTimeout")


def test_close_waits_at_most_its_timeout_for_a_pass_in_progress(store: Store) -> None:
    with receiver(KEY, "/fraud") as slow:
        slow.hold_s = 10.0
        policy = _to(slow.url, timeout_s=30)
        one_message(store, policy)
        d = OutboxDelivery(policy, store)
        d.start(lambda: True)
        d.wake()
        assert slow.entered.wait(10)  # the pass is in its POST
        d.close(timeout=0.2)
        assert d._thread is not None and d._thread.is_alive()  # not waited for
        slow.release.set()
        d._thread.join(10)
        assert not d._thread.is_alive()


def test_run_once_attempts_at_most_its_limit(store: Store) -> None:
    policy = routed_policy()
    for _ in range(3):
        OutboxNotifier(policy, store).notify("lift.approved", {"reason": "fraud"})
    d, _ = delivery(store, policy, Answers(204, 204, 204))
    assert d.run_once(limit=2) == 2
    assert len(store.outbox_messages(state="pending")) == 1
    assert d.run_once(limit=2) == 1
    d.close()


def test_the_thread_polls_without_a_wake_and_does_not_spin(store: Store) -> None:
    """A retry that comes due is sent by the poll (nobody wakes the thread for it);
    between polls the thread waits (a pass per poll, not a busy loop)."""
    import time

    policy = routed_policy(poll_s=0.1)
    one_message(store, policy)  # written before the thread runs: no wake reaches it
    passes: list[int] = []
    due = store.outbox_due

    def counted(*a: Any, **k: Any) -> Any:
        passes.append(1)
        return due(*a, **k)

    store.outbox_due = counted  # type: ignore[method-assign]
    d, _ = delivery(store, policy, Answers(204))
    d.start(lambda: True)
    try:
        deadline = time.monotonic() + 10
        while store.outbox_messages(state="pending") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [m["state"] for m in store.outbox_messages()] == ["delivered"]
        n = len(passes)
        time.sleep(0.35)  # at most about 4 polls of 0.1 s
        assert len(passes) - n <= 5
    finally:
        d.close()


def test_a_failing_pass_is_logged_and_the_thread_goes_on(
        store: Store, caplog: pytest.LogCaptureFixture) -> None:
    import time

    policy = routed_policy(poll_s=0.05)
    calls: list[int] = []
    due = store.outbox_due

    def flaky(*a: Any, **k: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the database went away")
        return due(*a, **k)

    store.outbox_due = flaky  # type: ignore[method-assign]
    d, _ = delivery(store, policy, Answers(204))
    with caplog.at_level(logging.ERROR, logger="enforcer.notify"):
        d.start(lambda: True)
        try:
            deadline = time.monotonic() + 10
            while len(calls) < 3 and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            d.close()
    assert len(calls) >= 3  # passes went on after the failure
    [rec] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert rec.getMessage() == "notification delivery pass failed"
    assert rec.exc_info is not None and "database went away" in str(rec.exc_info[1])


def test_the_thread_does_not_keep_a_process_alive(store: Store, tmp_path: Path) -> None:
    """A process that exits without ``close()`` is not held up by the delivery thread
    (a daemon thread, named ``outbox-delivery`` in thread dumps and py-spy)."""
    import subprocess
    import sys

    d, _ = delivery(store, routed_policy(poll_s=0.05), Answers())
    d.start(lambda: True)
    try:
        assert d._thread is not None
        assert (d._thread.name, d._thread.daemon) == ("outbox-delivery", True)
    finally:
        d.close()

    url = f"sqlite:///{tmp_path / 'exit.db'}"
    code = (
        "from enforcer.notify import OutboxDelivery\n"
        "from enforcer.store import Store, upgrade\n"
        "from tests.notify.test_routing import routed_policy\n"
        f"upgrade({url!r})\n"
        f"d = OutboxDelivery(routed_policy(poll_s=0.05), Store.from_url({url!r}))\n"
        "d.start(lambda: True)\n"
        "import threading\n"
        "t = [x for x in threading.enumerate() if x.name == 'outbox-delivery']\n"
        "print(len(t))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"  # running, under its name; and the process ended


def test_the_notifier_logs_each_event_and_its_order(
        store: Store, caplog: pytest.LogCaptureFixture) -> None:
    n = OutboxNotifier(routed_policy(), store)
    with caplog.at_level(logging.INFO, logger="enforcer.notify"):
        n.notify("lift.approved", {"order_id": "ord_7", "reason": "fraud"})
        n.notify("ban.imposed", {"reason": "fraud"})
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.INFO] == [
        "event lift.approved for order ord_7", "event ban.imposed for order None"]


async def test_writes_from_an_event_loop_are_not_kept_once_done(store: Store) -> None:
    from enforcer.notify import _PENDING_WRITES

    n = OutboxNotifier(routed_policy(), store)
    n.notify("lift.approved", {"reason": "fraud"})  # in a loop: a worker thread writes
    assert len(_PENDING_WRITES) == 1
    await asyncio.gather(*list(_PENDING_WRITES))
    await asyncio.sleep(0)  # the done callbacks run
    assert len(_PENDING_WRITES) == 0
    assert [m["event"] for m in store.outbox_messages()] == ["lift.approved"]


def test_a_dropped_message_of_a_removed_target_is_logged(
        store: Store, caplog: pytest.LogCaptureFixture) -> None:
    old = routed_policy()
    msg_id = one_message(store, old)
    new = Policy.model_validate({**old.model_dump(mode="python"), "webhooks": {
        "board": old.webhooks["board"].model_dump()}} | {
        "reasons": {r.value: {"default_scope": "node", "lift": {"rule": "any"}}
                    for r in Reason}})
    d, _ = delivery(store, new, Answers())
    with caplog.at_level(logging.ERROR, logger="enforcer.notify"):
        assert d.run_once() == 1
    d.close()
    assert [r.getMessage() for r in caplog.records] == [
        f"notification {msg_id} dropped: target fraud-desk is no longer in the policy"]
