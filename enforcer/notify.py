"""Outbound notifications (ban imposed, lift requested, banned MAC sighted, ...).

``Notifier.notify(event, payload)`` never blocks the caller. The default notifier logs
each event; operators configure signed outbound webhooks in the policy file (see the
lift workflow), which plug in here.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

log = logging.getLogger("enforcer.notify")


class Notifier(Protocol):
    def notify(self, event: str, payload: dict[str, Any]) -> None: ...


class LogNotifier:
    """Writes every event to the log (and keeps the last ones for tests)."""

    def __init__(self, keep: int = 1000) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._keep = keep

    def notify(self, event: str, payload: dict[str, Any]) -> None:
        log.warning("event %s: %s", event, payload)
        self.events.append((event, payload))
        del self.events[:-self._keep]


def build_notifier(settings: Any) -> Notifier:
    return LogNotifier()
