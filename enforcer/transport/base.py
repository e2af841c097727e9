"""The transport seams: one small Protocol per protocol, plus the per-device limiter.

    SnmpSession   get / set / bulk_walk / close   (real: transport.snmp, fake: FakeSnmp)
    CliSession    send_command / send_config / close   (real: transport.ssh, fake: FakeCli)
    DeviceLimiter max concurrent sessions, retries with full-jitter backoff, reset budget
    TransportMetrics  callbacks the daemon wires to prometheus counters (no-op default)

Pushing gently is a principle (docs/architecture.md, principles): mass resets cause
re-ranging storms, so resets are rate-limited per CMTS (docs/docsis.md section 6).
SNMP values come back as Python values; noSuchObject / noSuchInstance / endOfMibView
are explicit :class:`Missing` sentinels, never an empty value and never an error.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import Enum
from typing import Literal, Protocol, TypeVar

from enforcer.errors import DeviceUnreachable, TransportError

Oid = tuple[int, ...]
T = TypeVar("T")


class Missing(Enum):
    """An agent's "there is nothing here" answers (RFC 3416 exceptions), not errors."""

    NO_SUCH_OBJECT = "noSuchObject"
    NO_SUCH_INSTANCE = "noSuchInstance"
    END_OF_MIB_VIEW = "endOfMibView"


SnmpValue = int | bytes | Oid | Missing
SetType = Literal["integer", "unsigned32", "gauge32", "octets", "ipaddress"]


@dataclass(frozen=True)
class SetVarbind:
    """One varbind of a SET PDU; ``octets`` / ``ipaddress`` take bytes, the rest int."""

    oid: Oid
    type: SetType
    value: int | bytes


def oid_str(oid: Oid) -> str:
    return ".".join(map(str, oid))


def parse_oid(text: str) -> Oid:
    return tuple(int(p) for p in text.strip(".").split("."))


class SnmpSession(Protocol):
    """What a driver needs from SNMP. Errors raise TransportError subclasses."""

    async def get(self, oids: Sequence[Oid]) -> list[tuple[Oid, SnmpValue]]: ...

    async def set(self, varbinds: Sequence[SetVarbind]) -> list[tuple[Oid, SnmpValue]]: ...

    async def bulk_walk(self, oid: Oid) -> list[tuple[Oid, SnmpValue]]: ...

    async def close(self) -> None: ...


class CliSession(Protocol):
    """What a driver needs from a device CLI. Rejected commands raise CliCommandError."""

    async def send_command(self, command: str) -> str: ...

    async def send_config(self, lines: Sequence[str]) -> str: ...

    async def close(self) -> None: ...


class TransportMetrics(Protocol):
    """Instrumentation of the transport itself (docs/architecture.md §P10): requests, retries,
    errors by kind, latency. ``op`` is e.g. "snmp.get", "ssh.command"."""

    def request(self, device: str, op: str, seconds: float) -> None: ...

    def retry(self, device: str, op: str) -> None: ...

    def error(self, device: str, op: str, kind: str) -> None: ...


class NoMetrics:
    """The default: counts nothing."""

    def request(self, device: str, op: str, seconds: float) -> None:
        return None

    def retry(self, device: str, op: str) -> None:
        return None

    def error(self, device: str, op: str, kind: str) -> None:
        return None


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: before retry n (1-based) sleep
    ``uniform(0, min(cap_s, base_s * 2 ** (n - 1)))``."""

    attempts: int = 3
    base_s: float = 0.2
    cap_s: float = 5.0


class DeviceLimiter:
    """Per-device push discipline: a semaphore of ``max_sessions``, retries of
    retryable errors (DeviceUnreachable by default) with full-jitter backoff, and a
    token bucket of ``resets_per_minute`` for kicks. Clock, sleep and random are
    injectable so tests run on a fake clock."""

    def __init__(
        self,
        device: str,
        *,
        max_sessions: int,
        resets_per_minute: float,
        backoff: Backoff | None = None,
        metrics: TransportMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if max_sessions < 1 or resets_per_minute <= 0:
            raise ValueError("max_sessions >= 1 and resets_per_minute > 0")
        self.device = device
        self.backoff = backoff or Backoff()
        self.metrics: TransportMetrics = metrics or NoMetrics()
        self._sem = asyncio.Semaphore(max_sessions)
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()  # jitter, not crypto
        self._rate = resets_per_minute / 60.0
        self._burst = max(1.0, resets_per_minute / 6.0)  # at most 10 s worth at once
        self._tokens = self._burst
        self._stamp = clock()
        self._reset_lock = asyncio.Lock()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[None]:
        """Hold one of the device's session slots."""
        async with self._sem:
            yield

    async def run(
        self,
        op: str,
        fn: Callable[[], Awaitable[T]],
        *,
        retry_on: tuple[type[TransportError], ...] = (DeviceUnreachable,),
    ) -> T:
        """Run ``fn`` in a session slot; retry ``retry_on`` errors with backoff. Other
        errors (auth, error-status, rejected command) are not retried."""
        attempt = 0
        while True:
            attempt += 1
            try:
                async with self.session():
                    return await fn()
            except retry_on as e:
                self.metrics.error(self.device, op, type(e).__name__)
                if attempt >= self.backoff.attempts:
                    raise
                self.metrics.retry(self.device, op)
                await self._sleep(self.delay(attempt))
            except TransportError as e:
                self.metrics.error(self.device, op, type(e).__name__)
                raise

    def delay(self, attempt: int) -> float:
        """Full jitter (AWS architecture blog, "Exponential Backoff And Jitter")."""
        ceiling = min(self.backoff.cap_s, self.backoff.base_s * 2 ** (attempt - 1))
        return self._rng.uniform(0.0, ceiling)

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now

    def try_reset(self) -> bool:
        """Take a reset token if one is available now."""
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    async def acquire_reset(self) -> float:
        """Wait for a reset token; returns the seconds waited. Callers are served in
        order (one waiter at a time holds the lock)."""
        waited = 0.0
        async with self._reset_lock:
            while not self.try_reset():
                pause = (1.0 - self._tokens) / self._rate
                await self._sleep(pause)
                waited += pause
        return waited
