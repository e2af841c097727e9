"""Outbound notifications: signed webhooks (Standard Webhooks) to the targets the policy
names for each reason and event (the H&S board, the union, the NOC, ...).

``notify(event, payload)`` never blocks and never raises: :class:`OutboxNotifier` writes
one message per target to the store's outbox (durable, so a restart loses nothing) and
:class:`OutboxDelivery` sends them from a background thread, retrying with exponential
backoff and jitter on network errors, 5xx, 408 and 429. Each message is
``{"type": event, "timestamp": ISO 8601, "data": payload}`` with the headers
``webhook-id`` (the outbox row id, the same on every retry), ``webhook-timestamp`` and
``webhook-signature`` (``v1,<base64 HMAC-SHA256>`` over ``{id}.{timestamp}.{body}``,
see :func:`enforcer.api.signature.sign`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Protocol

import httpx

from enforcer.api.signature import sign
from enforcer.policy import Policy, policy_for

log = logging.getLogger("enforcer.notify")


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


def build_notifier(settings: Any, store: Any) -> Notifier:
    """The daemon's notifier: webhooks per the policy named by ``settings.policy``,
    through ``store``'s outbox (:class:`OutboxNotifier`; run :class:`OutboxDelivery` to
    send them). Events are only logged when the policy defines no webhook targets."""
    policy = policy_for(settings)
    if not policy.webhooks:
        return LogNotifier()
    return OutboxNotifier(policy, store)
