"""A token bucket for order intake (webhook and POST /v1/orders)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up. ``take()`` returns 0 when
    allowed, else the seconds to wait (for Retry-After)."""

    def __init__(self, rate: float, burst: int,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self._now = rate, float(burst), monotonic
        self._tokens, self._at = float(burst), monotonic()
        self._lock = threading.Lock()

    def take(self) -> float:
        with self._lock:
            now = self._now()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self.rate


def retry_after(wait_s: float) -> str:
    return str(max(1, math.ceil(wait_s)))
