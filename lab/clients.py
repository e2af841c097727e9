"""Which clients talk to a device, and when: the lab's evidence that two enforcer
instances never worked on one device at the same time.

SNMP requests are grouped into *runs* per source address (requests less than
``gap_s`` apart); SSH sessions come with their own start and end. Two intervals from
different source addresses that overlap in time are a concurrency violation.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any


@dataclass
class Run:
    source: str
    first: float
    last: float
    count: int

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "first": self.first, "last": self.last,
                "count": self.count}


class ClientLog:
    def __init__(self, gap_s: float = 1.0, keep: int = 20_000) -> None:
        self.gap_s = gap_s
        self.runs: deque[Run] = deque(maxlen=keep)
        self._open: dict[str, Run] = {}

    def note(self, source: str, now: float | None = None) -> None:
        t = time.time() if now is None else now
        run = self._open.get(source)
        if run is not None and t - run.last <= self.gap_s:
            run.last, run.count = t, run.count + 1
            return
        run = Run(source, t, t, 1)
        self._open[source] = run
        self.runs.append(run)


def overlaps(intervals: list[tuple[str, float, float]]) -> list[dict[str, Any]]:
    """Pairs of intervals from different sources that overlap in time."""
    out: list[dict[str, Any]] = []
    ordered = sorted(intervals, key=lambda x: x[1])
    for i, (src, start, end) in enumerate(ordered):
        for src2, start2, end2 in ordered[i + 1:]:
            if start2 > end:
                break
            if src2 != src and start2 <= end and start <= end2:
                out.append({"a": src, "a_span": [start, end], "b": src2,
                            "b_span": [start2, end2]})
    return out
