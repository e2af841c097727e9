"""Datagram exchange of :mod:`enforcer.transport.fastsnmp`: one connected UDP socket, request
matching, timeouts, retransmission with backoff and the per-device request budget.

A request is matched by request-id (v2c, RFC 3416 section 4.1) or msgID (v3, RFC 3412
section 7.2 step 12); every retransmission of a v3 request gets a fresh msgID, clock and
salt, and all its msgIDs stay registered until the request completes, so a late answer to an
earlier transmission still completes it. Datagrams that match nothing are counted and dropped.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from enforcer.errors import DeviceUnreachable, SnmpError
from enforcer.transport.fastsnmp_codec import parse_community, parse_pdu
from enforcer.transport.fastsnmp_usm import EngineState, Response, UsmReport, V3Engine, V3User
from enforcer.transport.snmpwire.ber import SnmpWireError
from enforcer.transport.snmpwire.message import (
    VERSION_2C,
    V3Message,
    decode_message,
    encode_community,
)

Answer = Response | UsmReport
PduOf = Callable[[int], bytes]


@dataclass(frozen=True, slots=True)
class RequestBudget:
    """How hard one device may be pushed: at most ``max_in_flight`` outstanding requests
    and, when ``requests_per_s`` is set, a token bucket of that rate and ``burst`` size."""

    max_in_flight: int = 4
    requests_per_s: float | None = None
    burst: int = 4

    def __post_init__(self) -> None:
        if self.max_in_flight < 1 or self.burst < 1:
            raise ValueError("max_in_flight and burst must be at least 1")
        if self.requests_per_s is not None and self.requests_per_s <= 0:
            raise ValueError("requests_per_s must be positive")


class _Bucket:
    """Token bucket; a negative balance is a reservation the caller sleeps off."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, float(burst)
        self.tokens, self.stamp = float(burst), time.monotonic()

    async def take(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate) - 1.0
        self.stamp = now
        if self.tokens < 0:
            await asyncio.sleep(-self.tokens / self.rate)


class _Timeout(Exception):
    pass


class _Refused(Exception):
    pass


class _Slot:
    __slots__ = ("fut",)

    def __init__(self, fut: asyncio.Future[Answer]) -> None:
        self.fut = fut


def _expire(fut: asyncio.Future[Answer]) -> None:
    if not fut.done():
        fut.set_exception(_Timeout())


class _Proto(asyncio.DatagramProtocol):
    def __init__(self, owner: Exchanger) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.owner.received(data)

    def error_received(self, exc: Exception) -> None:
        self.owner.refused(exc)


class Exchanger:
    """Sends requests and routes answers for one device."""

    def __init__(self, host: str, port: int, device: str, *, timeout_s: float, retries: int,
                 budget: RequestBudget, community: bytes | None, user: V3User | None,
                 backoff_s: float = 0.05, source_address: str | None = None) -> None:
        if timeout_s <= 0 or retries < 0:
            raise ValueError("timeout_s must be positive and retries non-negative")
        self.host, self.port, self.device = host, port, device
        self.source_address = source_address
        self.timeout_s, self.retries, self.backoff_s = timeout_s, retries, backoff_s
        self.community = community
        self.engine = V3Engine(user) if user is not None else None
        self.stats = {"requests": 0, "retransmits": 0, "stray": 0, "malformed": 0,
                      "unauthentic": 0, "not_in_time_window": 0}
        self._sem = asyncio.Semaphore(budget.max_in_flight)
        rate = budget.requests_per_s
        self._bucket = _Bucket(rate, budget.burst) if rate else None
        self._pending: dict[int, _Slot] = {}
        self._transport: asyncio.DatagramTransport | None = None
        self._open_lock = asyncio.Lock()
        self._discover_lock = asyncio.Lock()
        self._next = int.from_bytes(os.urandom(4), "big") & 0x3FFFFFFF

    def _id(self) -> int:
        self._next = self._next + 1 if self._next < 0x7FFFFFFF else 1
        return self._next

    async def open(self) -> None:
        if self._transport is not None:
            return
        async with self._open_lock:
            if self._transport is None:
                loop = asyncio.get_running_loop()
                try:
                    transport, _ = await loop.create_datagram_endpoint(
                        lambda: _Proto(self), remote_addr=(self.host, self.port),
                        local_addr=(self.source_address, 0) if self.source_address else None)
                except OSError as exc:
                    raise DeviceUnreachable("cannot open UDP socket", device=self.device,
                                            detail=exc.strerror) from None
                self._transport = transport

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def forget_engine(self) -> EngineState | None:
        """Back to undiscovered; returns what :meth:`restore_engine` needs to undo it."""
        if self.engine is None:
            return None
        state = self.engine.snapshot()
        self.engine.forget()
        return state

    def restore_engine(self, state: EngineState | None) -> None:
        if self.engine is not None and state is not None:
            self.engine.restore(state)

    # ------------------------------------------------------------------------------------------

    async def exchange(self, pdu_of: PduOf) -> Answer:
        """Send the PDU ``pdu_of(request_id)`` and return the matching answer."""
        await self.open()
        rid = self._id()
        engine = self.engine
        if engine is None:
            assert self.community is not None
            datagram = encode_community(VERSION_2C, self.community, pdu_of(rid))
            return await self._send(lambda: (rid, datagram))
        if not engine.discovered:
            await self._discover(engine)
        pdu = pdu_of(rid)

        def make() -> tuple[int, bytes]:
            mid = self._id()
            return mid, engine.request(mid, pdu)

        answer = await self._send(make)
        if not isinstance(answer, UsmReport) and answer[1] != rid:
            raise SnmpError("response request-id does not match", device=self.device)
        return answer

    async def _discover(self, engine: V3Engine) -> None:
        async with self._discover_lock:
            if engine.discovered:
                return
            rid = self._id()

            def make() -> tuple[int, bytes]:
                mid = self._id()
                return mid, V3Engine.discovery(mid, rid)

            answer = await self._send(make)
            if not isinstance(answer, UsmReport):
                raise SnmpError("engine discovery was not answered with a Report",
                                device=self.device)
            try:
                engine.learn(answer)
            except (SnmpWireError, ValueError) as exc:
                raise SnmpError("engine discovery failed", device=self.device,
                                detail=str(exc)) from None

    async def _send(self, make: Callable[[], tuple[int, bytes]]) -> Answer:
        loop = asyncio.get_running_loop()
        keys: list[int] = []
        malformed = self.stats["malformed"]
        last: Exception = _Timeout()
        async with self._sem:
            try:
                for attempt in range(self.retries + 1):
                    if attempt:
                        self.stats["retransmits"] += 1
                        await asyncio.sleep(min(self.backoff_s * 2 ** (attempt - 1),
                                                self.timeout_s))
                    if self._bucket is not None:
                        await self._bucket.take()
                    transport = self._transport
                    if transport is None:
                        raise DeviceUnreachable("client is closed", device=self.device)
                    key, datagram = make()
                    fut: asyncio.Future[Answer] = loop.create_future()
                    slot = self._pending.get(keys[0]) if keys else None
                    if slot is None:
                        slot = _Slot(fut)
                    slot.fut = fut
                    self._pending[key] = slot
                    keys.append(key)
                    self.stats["requests"] += 1
                    transport.sendto(datagram)
                    handle = loop.call_later(self.timeout_s, _expire, fut)
                    try:
                        return await fut
                    except (_Timeout, _Refused) as exc:
                        last = exc
                    finally:
                        handle.cancel()
            finally:
                for k in keys:
                    self._pending.pop(k, None)
        tries = self.retries + 1
        if self.stats["malformed"] > malformed:
            raise SnmpError("only undecodable answers", device=self.device)
        if isinstance(last, _Refused):
            raise DeviceUnreachable("port unreachable", device=self.device,
                                    detail=f"{tries} attempts")
        raise DeviceUnreachable("no SNMP answer within timeout and retries", device=self.device,
                                detail=f"{tries} attempts of {self.timeout_s:g} s")

    # ------------------------------------------------------------------------------------------
    # datagram side (called by the protocol; never raises)
    # ------------------------------------------------------------------------------------------

    def received(self, data: bytes) -> None:
        slot: _Slot | None = None
        try:
            if self.community is not None:
                version, community, p = parse_community(data)
                if version != VERSION_2C or community != self.community:
                    self.stats["stray"] += 1
                    return
                tag, rid, status, index, vstart, vstop = parse_pdu(data, p, len(data))
                slot = self._pending.get(rid)
                if slot is None:
                    self.stats["stray"] += 1
                    return
                answer: Answer = (tag, rid, status, index, data, vstart, vstop)
            else:
                msg = decode_message(data)
                slot = self._pending.get(msg.msg_id) if isinstance(msg, V3Message) else None
                if slot is None or self.engine is None or not isinstance(msg, V3Message):
                    self.stats["stray"] += 1
                    return
                stale = self.engine.stale_dropped
                opened = self.engine.incoming(msg)
                if opened is None:
                    self.stats["not_in_time_window" if self.engine.stale_dropped > stale
                               else "unauthentic"] += 1
                    return
                answer = opened
        except (SnmpWireError, ValueError) as exc:
            self.stats["malformed"] += 1
            if slot is not None and not slot.fut.done():
                slot.fut.set_exception(SnmpError("undecodable answer", device=self.device,
                                                 detail=str(exc)))
            return
        if not slot.fut.done():
            slot.fut.set_result(answer)

    def refused(self, exc: Exception) -> None:
        """ICMP port unreachable on the connected socket: fail the current attempts."""
        for slot in self._pending.values():
            if not slot.fut.done():
                slot.fut.set_exception(_Refused(str(exc)))
