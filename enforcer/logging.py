"""Logging setup: stdlib logging, optional JSON lines, the current ``order_id`` on every
record (from a context variable), and redaction of configured secret values.

Note: this module is ``enforcer.logging``; inside the package use ``import logging``
with absolute imports (the default in Python 3), which resolves to the stdlib.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

REDACTED = "<redacted>"
current_order_id: ContextVar[str | None] = ContextVar("enforcer_order_id", default=None)
_STD_ATTRS = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime",
                                                                   "order_id"}


@contextmanager
def order_context(order_id: str | None) -> Iterator[None]:
    """Every log record emitted inside carries ``order_id`` (also across awaits)."""
    token = current_order_id.set(order_id)
    try:
        yield
    finally:
        current_order_id.reset(token)


class OrderIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "order_id"):
            record.order_id = current_order_id.get()
        return True


class RedactionFilter(logging.Filter):
    """Replaces each secret value in the formatted message (and exception text) with
    ``<redacted>``. Secrets shorter than 4 characters are ignored (too many false hits)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for s in self._secrets:
            text = text.replace(s, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        msg = record.getMessage()
        red = self.redact(msg)
        if red != msg:
            record.msg, record.args = red, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        for key, value in list(vars(record).items()):
            if key not in _STD_ATTRS and isinstance(value, str):
                setattr(record, key, self.redact(value))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: at, level, logger, message, order_id, extras, exc."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "order_id": getattr(record, "order_id", None),
        }
        for key, value in vars(record).items():
            if key not in _STD_ATTRS and not key.startswith("_"):
                doc[key] = (value if value is None or isinstance(value, str | int | float | bool)
                            else str(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            doc["exc"] = record.exc_text
        return json.dumps(doc, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(order_id)s] %(message)s"


class SchedulerChatterFilter(logging.Filter):
    """The scheduler's INFO lines for every run of a periodic job ("Running job ...",
    "... executed successfully", each device every few minutes) are logged as DEBUG:
    shown only when the daemon logs at DEBUG. Its warnings and errors pass unchanged."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("apscheduler") and record.levelno == logging.INFO:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return self.level <= logging.DEBUG
        return True


def setup_logging(level: str = "INFO", *, json_lines: bool = False,
                  secrets: Iterable[str] = (), stream: TextIO | None = None) -> logging.Handler:
    """Install one handler on the root logger (replacing ours from a previous call)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name("enforcer")
    handler.addFilter(OrderIdFilter())
    handler.addFilter(SchedulerChatterFilter(logging.getLevelName(level.upper())))
    handler.addFilter(RedactionFilter(secrets))
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for h in list(root.handlers):
        if h.get_name() == "enforcer":
            root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler
