"""Retry timing: exponential backoff with jitter, capped."""

from __future__ import annotations

import random
from collections.abc import Callable


def backoff_s(attempts: int, *, base: float = 1.0, cap: float = 300.0,
              rand: Callable[[], float] = random.random) -> float:
    """Delay before attempt ``attempts + 1``: base * 2^attempts capped, with "equal
    jitter" (half fixed, half random) so retries spread out but never come instantly."""
    raw = min(cap, base * float(2 ** min(attempts, 20)))
    return raw / 2 + raw / 2 * rand()
