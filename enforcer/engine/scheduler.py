"""Periodic jobs (apscheduler): one reconcile job per device and the footprint watcher.

Each job has an explicit id, ``max_instances=1`` (a slow pass is never overlapped by
the next one) and ``coalesce=True`` (missed runs collapse into one); intervals carry
jitter so hundreds of devices are not polled in lock-step. The job store is in memory:
jobs are derived from the inventory at start, nothing needs to be persisted.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

log = logging.getLogger(__name__)


class Schedule:
    def __init__(self, *, devices: list[str], reconcile: Callable[[str], Awaitable[Any]],
                 watch: Callable[[], Awaitable[Any]], reconcile_interval_s: float,
                 watch_interval_s: float, jitter: float,
                 extra: list[tuple[str, float, Callable[[], Awaitable[Any]]]] | None = None
                 ) -> None:
        self._sched = AsyncIOScheduler(timezone=UTC)
        self._devices = devices
        self._reconcile = reconcile
        self._watch = watch
        self._ri = reconcile_interval_s
        self._wi = watch_interval_s
        self._jitter = jitter
        self._extra = extra or []

    def start(self) -> None:
        now = datetime.now(UTC)
        for i, device in enumerate(self._devices):
            # Spread first runs over one interval so devices are not hit together.
            first = now + timedelta(seconds=self._ri * (i + random.random()) / max(
                1, len(self._devices)))
            self._sched.add_job(
                self._reconcile, IntervalTrigger(seconds=self._ri, jitter=self._ri * self._jitter),
                args=[device], id=f"reconcile:{device}", name=f"reconcile {device}",
                max_instances=1, coalesce=True, replace_existing=True, next_run_time=first,
                misfire_grace_time=max(1, int(self._ri)))
        self._sched.add_job(
            self._watch, IntervalTrigger(seconds=self._wi, jitter=self._wi * self._jitter),
            id="watch:footprint", name="footprint watcher", max_instances=1, coalesce=True,
            replace_existing=True,
            next_run_time=now + timedelta(seconds=self._wi * (0.5 + random.random() / 2)),
            misfire_grace_time=max(1, int(self._wi)))
        for name, interval, fn in self._extra:
            self._sched.add_job(
                fn, IntervalTrigger(seconds=interval, jitter=interval * self._jitter),
                id=f"job:{name}", name=name, max_instances=1, coalesce=True,
                replace_existing=True, next_run_time=now + timedelta(seconds=min(interval, 3)),
                misfire_grace_time=max(1, int(interval)))
        self._sched.start()

    def stop(self) -> None:
        if self._sched.running:
            self._sched.shutdown(wait=False)

    def jobs(self) -> list[dict[str, Any]]:
        return [{"id": j.id, "next_run": j.next_run_time.isoformat() if j.next_run_time
                 else None} for j in self._sched.get_jobs()]
