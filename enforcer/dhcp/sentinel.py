"""The DHCP sentinel: watch DHCPv4 on one interface for banned devices trying to come
online, anywhere the operator can mirror DHCP to (or on the DHCP server itself).

It reads only: an AF_PACKET socket with a kernel BPF filter for DHCP
(:mod:`enforcer.dhcp.rawsock`), so CAP_NET_RAW is the one capability it needs, and it
never sends a frame. Every DISCOVER or REQUEST whose client hardware address is a
banned MAC, or whose option 82 remote-id is a banned remote-id (what Kea's DROP class
matches, docs/docsis.md section 6), becomes a :class:`DhcpSighting` passed to
``on_sighting``. A modem retries DISCOVER every few seconds, so repeats of the same
(MAC, match) within ``repeat_after_s`` are counted, not reported again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from enforcer.dhcp.packets import BanSet, DhcpMessage, parse_frame
from enforcer.dhcp.rawsock import open_dhcp_socket, receive

log = logging.getLogger(__name__)
WATCHED = frozenset({"discover", "request"})


@dataclass(frozen=True)
class DhcpSighting:
    """A banned device seen asking for an address."""

    at: datetime
    interface: str
    message_type: str
    mac: str | None  # the client hardware address
    matched: tuple[str, ...]  # "mac" and/or "remote_id"
    remote_id: str | None  # hex
    giaddr: str
    src_mac: str
    xid: int
    repeats: int = 0  # attempts folded into this report since the previous one

    def as_dict(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "interface": self.interface,
                "message_type": self.message_type, "mac": self.mac,
                "matched": list(self.matched), "remote_id": self.remote_id,
                "giaddr": self.giaddr, "src_mac": self.src_mac, "xid": self.xid,
                "repeats": self.repeats}


class Sentinel:
    """``start()`` opens the socket (errors surface there) and reads in a thread;
    ``stop()`` ends it within about ``poll_s``. ``banned`` is called for every DHCP
    request seen, from the reading thread: make it cheap (cache the ban set).
    ``on_sighting`` is called from the reading thread too."""

    def __init__(self, interface: str, banned: Callable[[], BanSet],
                 on_sighting: Callable[[DhcpSighting], None], *, repeat_after_s: float = 60.0,
                 poll_s: float = 0.5, clock: Callable[[], float] = time.monotonic) -> None:
        self.interface = interface
        self.banned = banned
        self.on_sighting = on_sighting
        self.repeat_after_s = repeat_after_s
        self.poll_s = poll_s
        self.clock = clock
        self.frames = 0  # DHCP frames read
        self.sightings = 0  # reports made
        self._last: dict[tuple[str | None, tuple[str, ...]], tuple[float, int]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("sentinel already started")
        sock = open_dhcp_socket(self.interface)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(sock,), daemon=True,
                                        name=f"dhcp-sentinel-{self.interface}")
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self, sock: Any) -> None:
        try:
            while not self._stop.is_set():
                for frame in receive(sock, time.monotonic() + self.poll_s, poll_s=self.poll_s):
                    self.handle(frame)
                    if self._stop.is_set():
                        break
        except Exception:
            log.exception("dhcp sentinel on %s stopped", self.interface)
        finally:
            sock.close()

    def handle(self, frame: bytes) -> DhcpSighting | None:
        """Inspect one frame; report and return a sighting when it is a banned device's
        (un-suppressed) attempt."""
        msg = parse_frame(frame)
        if msg is None:
            return None
        self.frames += 1
        if msg.message_type not in WATCHED:
            return None
        matched = msg.matches(self.banned())
        if not matched:
            return None
        return self._report(msg, matched)

    def _report(self, msg: DhcpMessage, matched: tuple[str, ...]) -> DhcpSighting | None:
        key = (str(msg.chaddr) if msg.chaddr else None, matched)
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last[0] < self.repeat_after_s:
            self._last[key] = (last[0], last[1] + 1)
            return None
        repeats = last[1] if last is not None else 0
        self._last[key] = (now, 0)
        rid = msg.remote_id
        sighting = DhcpSighting(
            at=datetime.now(UTC), interface=self.interface, message_type=msg.message_type,
            mac=str(msg.chaddr) if msg.chaddr else None, matched=matched,
            remote_id=rid.hex() if rid is not None else None, giaddr=msg.giaddr,
            src_mac=msg.src_mac, xid=msg.xid, repeats=repeats)
        self.sightings += 1
        try:
            self.on_sighting(sighting)
        except Exception:
            log.exception("dhcp sentinel: reporting a sighting failed")
        return sighting
