"""The fleet: every simulated device, every physical modem, and the scheduler that
moves registrations forward in time.

Registrations advance from one heap of due times, not a task per modem, so one lab
process holds hundreds of thousands of modems and only the ones in transition cost CPU.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lab.model.cmts import CmEntry, Cmts
from lab.model.headend import Headend
from lab.model.modem import Modem, Timings


class Scheduler:
    """A heap of due callbacks driven by ``run_due()`` (the lab's asyncio ticker calls
    it; tests can call it with an injected clock)."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self.now = now
        self._heap: list[tuple[float, int, Any, Any, Any]] = []
        self._seq = itertools.count()

    def push_entry(self, due: float, cmts: Cmts, e: CmEntry) -> None:
        heapq.heappush(self._heap, (due, next(self._seq), "entry", (cmts, e), e.gen))

    def call_at(self, due: float, fn: Callable[..., None], *args: Any) -> None:
        heapq.heappush(self._heap, (due, next(self._seq), "call", (fn, args), None))

    def call_later(self, delay: float, fn: Callable[..., None], *args: Any) -> None:
        self.call_at(self.now() + delay, fn, *args)

    def next_due(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def run_due(self, limit: int = 100_000) -> int:
        """Run every callback whose time has come (at most ``limit``)."""
        n = 0
        now = self.now()
        while self._heap and self._heap[0][0] <= now and n < limit:
            _, _, kind, payload, gen = heapq.heappop(self._heap)
            n += 1
            if kind == "entry":
                cmts, e = payload
                if e.gen == gen:
                    cmts.advance(e)
            else:
                fn, args = payload
                fn(*args)
        return n


@dataclass
class Sighting:
    device: str
    state: str
    forwarding: bool


class Fleet:
    """All devices and modems of one lab."""

    def __init__(self, timings: Timings | None = None, *,
                 now: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.timings = timings or Timings()
        self.sched = Scheduler(now)
        self.wall = wall
        self.cmtses: dict[str, Cmts] = {}
        self.headends: dict[str, Headend] = {}
        self.modems: dict[bytes, Modem] = {}

    def add_cmts(self, name: str, dialect: str, *, deny_capacity: int = 1000,
                 layout: str = "classic") -> Cmts:
        c = Cmts(name, dialect, scheduler=self.sched, timings=self.timings,
                 deny_capacity=deny_capacity, layout=layout, wall_clock=self.wall)
        self.cmtses[name] = c
        return c

    def add_headend(self, name: str) -> Headend:
        h = Headend(name, check_s=self.timings.stb_check_s, now=self.sched.now)
        self.headends[name] = h
        return h

    def add_modem(self, modem: Modem, *, online: bool = True) -> None:
        self.modems[modem.mac] = modem
        self.cmtses[modem.cmts].attach(modem, online=online)

    def move(self, mac: bytes, cmts: str, *, node: str, md_if: int, us_if: int,
             ds_if: int) -> None:
        """Carry a modem to another CMTS or node: the old CMTS lists it offline, the new
        one sees it range and register (subject to its own blocks)."""
        m = self.modems[mac]
        self.cmtses[m.cmts].detach(mac)
        m.cmts, m.node, m.md_if, m.us_if, m.ds_if = cmts, node, md_if, us_if, ds_if
        self.cmtses[cmts].attach(m, delay=self.timings.reset_offline_s)

    def power(self, mac: bytes, on: bool) -> None:
        m = self.modems[mac]
        if m.powered == on:
            return
        m.powered = on
        c = self.cmtses[m.cmts]
        if on:
            c.attach(m, delay=0.0)
        else:
            c.detach(mac)
            c.attached[mac] = m  # still cabled here, just off

    def ground_truth(self, mac: bytes) -> dict[str, Any]:
        """Where the MAC is seen, its state, whether it can forward, and why."""
        m = self.modems.get(mac)
        seen: list[dict[str, Any]] = []
        for c in self.cmtses.values():
            e = c.entries.get(mac)
            if e is not None:
                seen.append({"device": c.name, "phase": e.phase.value,
                             "forwarding": e.forwarding, "status_index": e.status_index})
            row = c.deny.get(mac)
            if row is not None and row.attempts:
                seen.append({"device": c.name, "phase": "denied",
                             "forwarding": False, "deny_attempts": sum(row.attempts.values())})
        result: dict[str, Any] = {"mac": mac.hex(":"), "known": m is not None, "seen": seen}
        if m is not None:
            c = self.cmtses[m.cmts]
            e = c.entries.get(mac)
            result.update(cmts=m.cmts, node=m.node, powered=m.powered, kind=m.kind,
                          bpi_plus=m.bpi_plus, network_access=m.network_access)
            result["forwarding"], result["why"] = _why(c, m, e)
        for h in self.headends.values():
            d = h.get(mac)
            if d is not None:
                result["headend"] = {
                    "device": h.name, "packages": sorted(d.packages), "dms": d.dms,
                    "service_disconnected": h.service_disconnected(d),
                    "decoding": h.decoding(d), "ecm_mac": d.ecm_mac.hex(":"),
                }
        return result


def _why(c: Cmts, m: Modem, e: CmEntry | None) -> tuple[bool, str]:
    if not m.powered:
        return False, "powered off"
    if not c.is_up():
        return False, f"{c.name} is rebooting"
    if e is None:
        if m.mac in c.deny:
            return False, f"denied by {c.name} deny list at registration"
        return False, "not registered"
    if e.phase.value == "rejected":
        return False, f"BPI+ authorisation refused by {c.name} hotlist"
    if not e.online:
        return False, f"registration in progress ({e.phase.value})"
    if e.fwd_disabled:
        return False, f"forwarding disabled by CM-CTRL on {c.name} (this registration)"
    if not m.network_access:
        return False, "config file NetworkAccess=0"
    return True, f"operational on {c.name}"
