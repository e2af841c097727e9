"""Outbound notifications: signed webhooks (Standard Webhooks) to the targets the policy
names for each reason and event (the H&S board, the union, the NOC, ...).

``notify(event, payload)`` never blocks: the message is put on a bounded queue and a
background thread delivers it, retrying with exponential backoff on network errors,
5xx, 408 and 429. A full queue drops the message (logged as an error). Each message is
``{"type": event, "timestamp": ISO 8601, "data": payload}`` with the headers
``webhook-id`` (the same on every retry), ``webhook-timestamp`` and
``webhook-signature`` (``v1,<base64 HMAC-SHA256>`` over ``{id}.{timestamp}.{body}``,
see :func:`enforcer.api.signature.sign`).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import logging
import queue
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import httpx

from enforcer.api.signature import sign
from enforcer.policy import Policy, WebhookTarget, policy_for

log = logging.getLogger("enforcer.notify")
#: Looks an order's reason up (for events whose payload carries only ``order_id``).
ReasonLookup = Callable[[str], str | None]


class Notifier(Protocol):
    def notify(self, event: str, payload: dict[str, Any]) -> None: ...


class LogNotifier:
    """Writes every event to the log (and keeps the last ones for tests)."""

    def __init__(self, keep: int = 1000) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._keep = keep

    def notify(self, event: str, payload: dict[str, Any]) -> None:
        log.info("event %s: %s", event, payload)
        self.events.append((event, payload))
        del self.events[:-self._keep]


@dataclass(order=True)
class _Message:
    due: float
    seq: int
    target: str = field(compare=False)
    msg_id: str = field(compare=False)
    body: bytes = field(compare=False)
    attempts: int = field(default=0, compare=False)


class WebhookNotifier:
    """Delivers events to the policy's webhook targets from one background thread."""

    def __init__(self, policy: Policy, *, transport: httpx.BaseTransport | None = None,
                 reason_of: ReasonLookup | None = None) -> None:
        self.policy = policy
        self.reason_of = reason_of
        self.events: list[tuple[str, dict[str, Any]]] = []  # last ones, for tests
        self.delivered = 0
        self.dropped = 0
        self.failed = 0
        self._targets: dict[str, WebhookTarget] = dict(policy.webhooks)
        self._inbox: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue(
            policy.delivery.queue_size)
        self._retries: list[_Message] = []
        self._seq = itertools.count()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._http = httpx.Client(transport=transport, follow_redirects=False)
        self._thread = threading.Thread(target=self._run, name="webhook-notifier",
                                        daemon=True)
        self._thread.start()

    def bind_store(self, reason_of: ReasonLookup) -> None:
        """Let events that carry only an ``order_id`` be routed by the order's reason."""
        self.reason_of = reason_of

    def notify(self, event: str, payload: dict[str, Any]) -> None:
        """Queue ``event`` for delivery; never blocks, never raises."""
        log.info("event %s for order %s", event, payload.get("order_id"))
        self.events.append((event, payload))
        del self.events[:-1000]
        if not self._targets:
            return
        self._idle.clear()
        try:
            self._inbox.put_nowait((event, payload))
        except queue.Full:
            self.dropped += 1
            log.error("notification queue full (%d); dropped %s for order %s",
                      self._inbox.maxsize, event, payload.get("order_id"))

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every queued message was delivered or given up (tests, shutdown)."""
        return self._idle.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is due within ``timeout``, then stop the thread."""
        self.wait_idle(timeout)
        self._stop.set()
        self._thread.join(timeout)
        self._http.close()

    # ---- the delivery thread -----------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            wait = 0.5
            if self._retries:
                wait = max(0.0, min(wait, self._retries[0].due - time.monotonic()))
            try:
                event, payload = self._inbox.get(timeout=wait)
                self._expand(event, payload)
            except queue.Empty:
                pass
            except Exception:
                log.exception("could not prepare a notification")
            while self._retries and self._retries[0].due <= time.monotonic():
                self._send(heapq.heappop(self._retries))
            if not self._retries and self._inbox.empty():
                self._idle.set()

    def _expand(self, event: str, payload: dict[str, Any]) -> None:
        reason = payload.get("reason")
        if reason is None and self.reason_of is not None and payload.get("order_id"):
            try:
                reason = self.reason_of(str(payload["order_id"]))
            except Exception:  # noqa: BLE001 - route by every reason instead
                reason = None
        body = json.dumps({"type": event, "timestamp": datetime.now(UTC).isoformat(),
                           "data": payload}, sort_keys=True, default=str).encode()
        for name in self.policy.targets_for(event, reason):
            msg = _Message(time.monotonic(), next(self._seq), name,
                           f"msg_{uuid.uuid4().hex}", body)
            heapq.heappush(self._retries, msg)

    def _send(self, msg: _Message) -> None:
        target = self._targets[msg.target]
        stamp = str(int(time.time()))
        headers = {"content-type": "application/json", "webhook-id": msg.msg_id,
                   "webhook-timestamp": stamp,
                   "webhook-signature": sign(target.key(), msg.msg_id, stamp, msg.body)}
        msg.attempts += 1
        try:
            r = self._http.post(target.url, content=msg.body, headers=headers,
                                timeout=target.timeout_s)
            status, error = r.status_code, f"HTTP {r.status_code}"
        except httpx.HTTPError as e:
            status, error = 0, type(e).__name__
        if 200 <= status < 300:
            self.delivered += 1
            return
        retry = status == 0 or status >= 500 or status in (408, 429)
        d = self.policy.delivery
        if retry and msg.attempts < d.max_attempts:
            delay = min(d.retry_max_s, d.retry_base_s * 2 ** (msg.attempts - 1))
            msg.due = time.monotonic() + delay
            heapq.heappush(self._retries, msg)
            log.warning("webhook %s to %s failed (%s); retry %d in %.0fs", msg.msg_id,
                        msg.target, error, msg.attempts, delay)
            return
        self.failed += 1
        log.error("webhook %s to %s failed (%s) after %d attempt(s); giving up", msg.msg_id,
                  msg.target, error, msg.attempts)


#: Events the store writes to the outbox itself, in the transaction that records them
#: (``Store.create_order``, ``Store.request_lift``): ``notify`` must not add them again.
STORE_WRITTEN = frozenset({"ban.imposed", "lift.requested"})


class OutboxNotifier:
    """Durable notifications: ``notify`` writes the messages to the store's outbox (the
    policy's routing is bound to the store); :class:`OutboxDelivery` sends them.
    ``ban.imposed`` and ``lift.requested`` are already written by the store in the
    event's own transaction. Never raises; called from an event loop, the write runs
    in a worker thread."""

    def __init__(self, policy: Policy, store: Any) -> None:
        self.policy = policy
        self.store = store
        self.events: list[tuple[str, dict[str, Any]]] = []  # last ones, for tests
        #: Called once a message is in the outbox (``OutboxDelivery.wake``): the
        #: delivery loop sends it now rather than at its next poll.
        self.wake: Callable[[], None] = lambda: None
        store.route_notifications(policy.targets_for)

    def notify(self, event: str, payload: dict[str, Any]) -> None:
        log.info("event %s for order %s", event, payload.get("order_id"))
        self.events.append((event, payload))
        del self.events[:-1000]
        if event in STORE_WRITTEN:
            self.wake()  # the store wrote it with the event, before this call
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._write(event, payload)
            return
        fut = loop.run_in_executor(None, self._write, event, payload)
        _PENDING_WRITES.add(fut)
        fut.add_done_callback(_PENDING_WRITES.discard)

    def _write(self, event: str, payload: dict[str, Any]) -> None:
        try:
            reason = payload.get("reason")
            if reason is None and payload.get("order_id"):
                reason = self.store.get_order(str(payload["order_id"])).reason.value
            self.store.enqueue_notification(event, payload, reason=reason)
            self.wake()
        except Exception as e:  # noqa: BLE001 - the caller's work must go on
            log.error("could not write notification %s for order %s to the outbox: %s",
                      event, payload.get("order_id"), type(e).__name__)


_PENDING_WRITES: set[asyncio.Future[None]] = set()
#: Messages attempted per delivery pass.
BATCH = 100


class OutboxDelivery:
    """Sends due outbox messages: :meth:`run_once` is one pass; :meth:`start` runs
    passes in a thread every ``delivery.poll_s`` and whenever :meth:`wake` is called,
    only while ``holds()`` (the daemon passes "this instance holds the housekeeping
    lease", so one instance of a cluster delivers at a time). At least once:
    a message is marked delivered only after a 2xx; a crash in between sends it again
    with the same ``webhook-id`` (its row id) and body. Network errors, 5xx, 408 and
    429 are retried with exponential backoff and jitter up to ``delivery.max_attempts``
    (then ``dropped``); other answers mark it ``failed``."""

    def __init__(self, policy: Policy, store: Any, *, metrics: Any = None,
                 transport: httpx.BaseTransport | None = None,
                 wall: Callable[[], float] = time.time,
                 rand: Callable[[], float] = random.random) -> None:
        self.policy, self.store, self.metrics = policy, store, metrics
        self._http = httpx.Client(transport=transport, follow_redirects=False)
        self._wall, self._rand = wall, rand
        self._lock = threading.Lock()
        self._last_prune = 0.0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        """Look for due messages now (a message was just written)."""
        self._wake.set()

    def start(self, holds: Callable[[], bool]) -> None:
        """Run delivery passes in a background thread while ``holds()``."""
        def loop() -> None:
            while not self._stop.is_set():
                self._wake.wait(self.policy.delivery.poll_s)
                self._wake.clear()
                if self._stop.is_set() or not holds():
                    continue
                try:
                    while self.run_once() == BATCH and not self._stop.is_set():
                        pass  # a full batch: there may be more due
                except Exception:
                    log.exception("notification delivery pass failed")

        self._thread = threading.Thread(target=loop, name="outbox-delivery", daemon=True)
        self._thread.start()

    def run_once(self, limit: int = BATCH) -> int:
        """Attempt every due message (at most ``limit``); returns how many."""
        with self._lock:
            rows = self.store.outbox_due(limit=limit)
            for row in rows:
                self._attempt(row)
            if self._wall() - self._last_prune > 3600:
                self._last_prune = self._wall()
                self.store.outbox_prune(timedelta(days=self.policy.delivery.keep_days))
            return len(rows)

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread (after the pass in progress) and close the HTTP client."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._http.close()

    def _count(self, what: str, target: str) -> None:
        counter = getattr(self.metrics, f"notifications_{what}", None)
        if counter is not None:
            counter.labels(target=target).inc()

    def _attempt(self, row: Any) -> None:
        target = self.policy.webhooks.get(row.target)
        attempts = row.attempts + 1
        if target is None:
            self.store.outbox_mark(row.id, state="dropped", attempts=row.attempts,
                                   error="target is no longer in the policy")
            self._count("dropped", row.target)
            log.error("notification %s dropped: target %s is no longer in the policy",
                      row.id, row.target)
            return
        stamp = str(int(self._wall()))
        body = row.body.encode()
        headers = {"content-type": "application/json", "webhook-id": row.id,
                   "webhook-timestamp": stamp,
                   "webhook-signature": sign(target.key(), row.id, stamp, body)}
        try:
            r = self._http.post(target.url, content=body, headers=headers,
                                timeout=target.timeout_s)
            status, error = r.status_code, f"HTTP {r.status_code}"
        except httpx.HTTPError as e:
            status, error = 0, type(e).__name__
        if 200 <= status < 300:
            self.store.outbox_mark(row.id, state="delivered", attempts=attempts)
            self._count("delivered", row.target)
            return
        d = self.policy.delivery
        if status == 0 or status >= 500 or status in (408, 429):
            if attempts < d.max_attempts:
                delay = min(d.retry_max_s, d.retry_base_s * 2 ** (attempts - 1))
                delay *= 0.5 + self._rand() / 2  # jitter: targets are not hit in step
                due = self.store.clock() + timedelta(seconds=delay)
                self.store.outbox_mark(row.id, state="pending", attempts=attempts,
                                       error=error, due_at=due)
                log.warning("webhook %s to %s failed (%s); retry %d in %.0fs", row.id,
                            row.target, error, attempts, delay)
                return
            self.store.outbox_mark(row.id, state="dropped", attempts=attempts, error=error)
            self._count("dropped", row.target)
            log.error("webhook %s to %s failed (%s) after %d attempt(s); dropped", row.id,
                      row.target, error, attempts)
            return
        self.store.outbox_mark(row.id, state="failed", attempts=attempts, error=error)
        self._count("failed", row.target)
        log.error("webhook %s to %s refused (%s); not retried", row.id, row.target, error)


def build_notifier(settings: Any, store: Any = None) -> Notifier:
    """The daemon's notifier: webhooks per the policy named by ``settings.policy``
    (events are only logged when the policy defines no webhook targets). With a
    ``store``, messages go through its outbox (:class:`OutboxNotifier`; run
    :class:`OutboxDelivery`); without one, an in-memory queue (:class:`WebhookNotifier`)."""
    policy = policy_for(settings)
    if not policy.webhooks:
        return LogNotifier()
    if store is not None:
        return OutboxNotifier(policy, store)
    return WebhookNotifier(policy)
