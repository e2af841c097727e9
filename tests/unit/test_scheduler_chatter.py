"""The scheduler's per-run INFO lines are DEBUG in the daemon's log: absent at INFO,
present at DEBUG; its warnings pass at any level."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from enforcer.logging import setup_logging


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    root.setLevel(level)
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
def test_scheduler_runs_are_debug(level: str, restore_root: None) -> None:
    out = io.StringIO()
    setup_logging(level, stream=out)
    logging.getLogger("apscheduler.executors.default").info(
        'Running job "reconcile cbr8-1" (scheduled at 2026-12-03 09:00:00+00:00)')
    logging.getLogger("apscheduler.scheduler").warning("Run time of job was missed")
    logging.getLogger("enforcer.engine").info("order verified")
    text = out.getvalue()
    assert "Run time of job was missed" in text and "order verified" in text
    if level == "INFO":
        assert "Running job" not in text
    else:
        assert "DEBUG apscheduler.executors.default" in text and "Running job" in text
