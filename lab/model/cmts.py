"""A simulated CMTS: the registration records it keeps, and the blocks it holds.

Persistence follows docs/docsis.md section 6: CM-CTRL disable-forwarding lasts one
registration; the ARRIS deny list and BPI+ hotlist rows survive a reboot; the modem
table does not.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lab.model.modem import NEXT_PHASE, Modem, Phase, Timings, phase_duration

if TYPE_CHECKING:
    from lab.model.fleet import Scheduler


class DenyListFull(Exception):
    """The CMTS deny list holds its capacity already."""


@dataclass(eq=False)
class CmEntry:
    """The CMTS's record of one modem's registration (one row of its modem tables)."""

    modem: Modem
    status_index: int  # docsIfCmtsCmStatusIndex: stable during CMTS uptime
    reg_id: int  # docsIf3CmtsCmRegStatusId: its own numbering, not the status index
    phase: Phase = Phase.RANGING
    fwd_disabled: bool = False  # CM-CTRL disable-forwarding: this registration only
    registrations: int = 0  # completed registrations since the CMTS booted
    last_reg_time: float = 0.0  # wall-clock seconds of the last completed registration
    offline_since: float | None = None
    due: float | None = None  # next scheduled phase change (monotonic)
    gen: int = 0  # bumps on every reschedule; stale heap items are ignored

    @property
    def mac(self) -> bytes:
        return self.modem.mac

    @property
    def online(self) -> bool:
        return self.phase is Phase.ONLINE

    @property
    def net_access_disabled(self) -> bool:
        """Registered with NetworkAccess=0 in its config file (provisioning-side ban)."""
        return self.online and not self.modem.network_access

    @property
    def forwarding(self) -> bool:
        return self.online and not self.fwd_disabled and self.modem.network_access


@dataclass
class DenyRow:
    attempts: dict[int, int] = field(default_factory=dict)  # ifIndex -> denied attempts


@dataclass
class HotlistRow:
    trust: int = 2  # trusted(1) / untrusted(2)
    source: int = 1  # docsBpi2CmtsProvisionedCmCertSource: snmp(1) configurationFile(2) ...
    cert: bytes | None = None  # None: added by MAC on the CLI, matches any certificate


@dataclass
class CmCtrl:
    """docsIf3CmtsCmCtrl scalars as last written."""

    cmd_mac: bytes = b"\x00" * 6
    mute_us_ch: int = 0
    mute_interval: int = 0
    disable_forwarding: int = 2  # false
    commit: int = 1


class Cmts:
    """One CMTS: its modem records, deny list, hotlist and CM-CTRL scalars."""

    def __init__(
        self,
        name: str,
        dialect: str,
        *,
        scheduler: Scheduler,
        timings: Timings,
        deny_capacity: int = 1000,
        layout: str = "classic",
        wall_clock: Callable[[], float],
    ) -> None:
        self.name = name
        self.dialect = dialect
        self.timings = timings
        self.deny_capacity = deny_capacity
        # How the CLI lists modems: "classic", or a Remote PHY view ("rphy" on a cBR-8,
        # "vccap" on a Casa) with MAC domain, device class and RPHY node columns.
        self.layout = layout
        self._sched = scheduler
        self._wall = wall_clock
        self.attached: dict[bytes, Modem] = {}  # modems cabled to this CMTS now
        self.entries: dict[bytes, CmEntry] = {}  # listed registration records
        self.by_status: dict[int, CmEntry] = {}
        self.by_reg_id: dict[int, CmEntry] = {}
        self.status_indexes: list[tuple[int, ...]] = []  # sorted, for SNMP walks
        self.reg_ids: list[tuple[int, ...]] = []
        self.macs: list[tuple[int, ...]] = []
        self.deny: dict[bytes, DenyRow] = {}
        self.deny_macs: list[tuple[int, ...]] = []
        self.hotlist: dict[bytes, HotlistRow] = {}
        self.hotlist_macs: list[tuple[int, ...]] = []
        self.cm_ctrl = CmCtrl()
        self.boots = 1
        self.booted_at = scheduler.now()
        self.down_until = 0.0
        self.version = 0  # bumps whenever a record is listed or unlisted
        self.resets = 0  # resets and deletes requested (for reset-rate checks)
        self._next_status = 1
        self._next_reg = 0x2000_0001

    # ---- queries -------------------------------------------------------------------

    def is_up(self) -> bool:
        return self._sched.now() >= self.down_until

    def entry(self, mac: bytes) -> CmEntry | None:
        return self.entries.get(mac)

    def uptime_ticks(self) -> int:
        return int((self._sched.now() - self.booted_at) * 100)

    def wall_now(self) -> float:
        """Wall-clock seconds (listing timestamps)."""
        return self._wall()

    def progress(self, e: CmEntry) -> float:
        """How far (0..1) the record is through its current phase, for CLI sub-states
        (Cisco ``init(r1)`` then ``init(r2)`` while ranging)."""
        duration = phase_duration(e.phase, self.timings)
        if e.due is None or duration <= 0:
            return 1.0
        return min(1.0, max(0.0, 1.0 - (e.due - self._sched.now()) / duration))

    # ---- modems coming and going ---------------------------------------------------

    def attach(self, modem: Modem, *, delay: float = 0.0, online: bool = False) -> None:
        """A modem is cabled to this CMTS. ``online=True`` starts it registered (lab start)."""
        self.attached[modem.mac] = modem
        if not modem.powered:
            return
        if online and modem.mac not in self.deny:
            e = self._list(modem, Phase.ONLINE)
            self._complete_registration(e)
            return
        self._begin_ranging(modem, delay=delay)

    def detach(self, mac: bytes) -> None:
        """The modem was unplugged (moved away or powered off): it shows offline."""
        self.attached.pop(mac, None)
        e = self.entries.get(mac)
        if e is not None:
            self._go_offline(e, retain=True)

    # ---- operator actions (SNMP and CLI both call these) ---------------------------

    def reset(self, mac: bytes) -> bool:
        """Make the modem re-register (clear cable modem reset / cdxCmCpeResetNow)."""
        e = self.entries.get(mac)
        if e is None or e.phase is Phase.OFFLINE:
            return False
        self.resets += 1
        self._go_offline(e, retain=False)
        self._schedule(e, self.timings.reset_offline_s)
        return True

    def delete(self, mac: bytes) -> bool:
        """Remove the modem from the CMTS tables; it re-ranges as a new registration."""
        e = self.entries.get(mac)
        if e is None:
            return False
        self.resets += 1
        self._unlist(e)
        modem = self.attached.get(mac)
        if modem is not None and modem.powered:
            self._begin_ranging(modem, delay=self.timings.reset_offline_s)
        return True

    def disable_forwarding(self, mac: bytes, disable: bool) -> bool:
        """CM-CTRL DisableForwarding + Commit=disableForwarding(3) for the current
        registration only (docs/docsis.md section 1)."""
        e = self.entries.get(mac)
        if e is None or not e.online:
            return False
        e.fwd_disabled = disable
        return True

    def deny_add(self, mac: bytes) -> bool:
        """ARRIS deny list: persists, takes effect at the next registration attempt.
        Returns False when already present; raises DenyListFull at capacity."""
        if mac in self.deny:
            return False
        if len(self.deny) >= self.deny_capacity:
            raise DenyListFull(f"deny list full ({self.deny_capacity} entries)")
        self.deny[mac] = DenyRow()
        bisect.insort(self.deny_macs, tuple(mac))
        return True

    def deny_remove(self, mac: bytes) -> bool:
        if self.deny.pop(mac, None) is None:
            return False
        self.deny_macs.remove(tuple(mac))
        return True

    def hotlist_add(self, mac: bytes, *, cert: bytes | None = None, trust: int = 2,
                    source: int = 1) -> bool:
        """BPI+ hotlist row (docsBpi2CmtsProvisionedCmCertTable or Cisco CLI).
        Persists across re-initialisation; affects BPI+ modems at authorisation."""
        new = mac not in self.hotlist
        self.hotlist[mac] = HotlistRow(trust=trust, source=source, cert=cert)
        if new:
            bisect.insort(self.hotlist_macs, tuple(mac))
        return new

    def hotlist_remove(self, mac: bytes) -> bool:
        if self.hotlist.pop(mac, None) is None:
            return False
        self.hotlist_macs.remove(tuple(mac))
        return True

    def hotlisted(self, modem: Modem) -> bool:
        """Would BPI+ authorisation refuse this modem? Only for BPI+ modems, and only
        when the stored certificate is byte-identical to the modem's (or added by MAC)."""
        row = self.hotlist.get(modem.mac)
        if row is None or not modem.bpi_plus or row.trust != 2:
            return False
        return row.cert is None or row.cert == modem.cert

    def reauthorize(self, mac: bytes) -> bool:
        """docsBpi2CmtsAuthCmReset = invalidateTeks(4): the modem re-authorises; a
        hotlisted BPI+ modem is refused there and then (reject(pk))."""
        e = self.entries.get(mac)
        if e is None or not e.modem.bpi_plus or e.phase not in (Phase.ONLINE, Phase.BPI_INIT):
            return False
        if self.hotlisted(e.modem):
            e.phase = Phase.REJECTED
            e.fwd_disabled = False
            self._schedule(e, self.timings.retry_s)
        return True

    def reboot(self) -> None:
        """Drop every registration and non-persistent state; modems re-register after
        the CMTS comes back. Deny list and hotlist persist."""
        now = self._sched.now()
        for e in list(self.entries.values()):
            self._unlist(e)
        self.cm_ctrl = CmCtrl()
        self.boots += 1
        self.down_until = now + self.timings.reboot_s
        self.booted_at = self.down_until
        self._next_status = 1
        self._next_reg = 0x2000_0001 + self.boots * 0x10000
        spread = self.timings.reboot_spread_s
        n = max(1, len(self.attached))
        for i, modem in enumerate(list(self.attached.values())):
            if modem.powered:
                self._begin_ranging(modem, delay=self.timings.reboot_s + spread * i / n)

    # ---- the registration state machine -------------------------------------------

    def advance(self, e: CmEntry) -> None:
        """Called by the scheduler when ``e.due`` has passed."""
        if self.entries.get(e.mac) is not e:
            return
        if e.phase is Phase.OFFLINE:
            if e.modem.mac in self.attached and e.modem.powered:
                self._unlist(e)
                self._begin_ranging(e.modem, delay=0.0)
            else:
                self._unlist(e)  # offline retention is over
            return
        if e.phase is Phase.REJECTED:
            self._unlist(e)
            self._begin_ranging(e.modem, delay=0.0)
            return
        nxt = NEXT_PHASE.get(e.phase)
        if nxt is None:
            return
        if nxt is Phase.BPI_INIT:
            if e.modem.bpi_plus and self.hotlisted(e.modem):
                e.phase = Phase.REJECTED  # reject(pk): authorisation refused
                self._schedule(e, self.timings.retry_s)
                return
            if not e.modem.bpi_plus:
                nxt = Phase.ONLINE
        e.phase = nxt
        if nxt is Phase.ONLINE:
            self._complete_registration(e)
            return
        self._schedule(e, phase_duration(nxt, self.timings))

    def retry_denied(self, mac: bytes) -> None:
        """Scheduler callback: a denied modem tries to range again."""
        modem = self.attached.get(mac)
        if modem is not None and modem.powered and mac not in self.entries:
            self._begin_ranging(modem, delay=0.0)

    def _begin_ranging(self, modem: Modem, *, delay: float) -> None:
        if delay > 0:
            self._sched.call_later(delay, self._range_now, modem.mac)
            return
        self._range_now(modem.mac)

    def _range_now(self, mac: bytes) -> None:
        modem = self.attached.get(mac)
        if modem is None or not modem.powered or mac in self.entries:
            return
        if not self.is_up():
            self._sched.call_at(self.down_until, self._range_now, mac)
            return
        row = self.deny.get(mac)
        if row is not None:
            # Denied at the registration attempt: never listed, attempts counted per
            # upstream (cadCmDenyAttempts), and the modem keeps trying.
            row.attempts[modem.us_if] = row.attempts.get(modem.us_if, 0) + 1
            self._sched.call_later(self.timings.retry_s, self.retry_denied, mac)
            return
        e = self._list(modem, Phase.RANGING)
        self._schedule(e, self.timings.ranging_s)

    def _complete_registration(self, e: CmEntry) -> None:
        e.phase = Phase.ONLINE
        e.fwd_disabled = False  # a new registration forgets CM-CTRL
        e.registrations += 1
        e.last_reg_time = self._wall()
        e.offline_since = None
        e.due = None

    def _go_offline(self, e: CmEntry, *, retain: bool) -> None:
        e.phase = Phase.OFFLINE
        e.fwd_disabled = False
        e.offline_since = self._wall()
        if retain:
            self._schedule(e, self.timings.offline_retention_s)

    def _schedule(self, e: CmEntry, delay: float) -> None:
        e.gen += 1
        e.due = self._sched.now() + delay
        self._sched.push_entry(e.due, self, e)

    def _list(self, modem: Modem, phase: Phase) -> CmEntry:
        e = CmEntry(modem=modem, status_index=self._next_status, reg_id=self._next_reg,
                    phase=phase)
        self._next_status += 1
        self._next_reg += 1
        self.entries[modem.mac] = e
        self.version += 1
        self.by_status[e.status_index] = e
        self.by_reg_id[e.reg_id] = e
        self.status_indexes.append((e.status_index,))  # always the largest: stays sorted
        self.reg_ids.append((e.reg_id,))
        bisect.insort(self.macs, tuple(modem.mac))
        return e

    def _unlist(self, e: CmEntry) -> None:
        if self.entries.get(e.mac) is not e:
            return
        del self.entries[e.mac]
        self.version += 1
        del self.by_status[e.status_index]
        del self.by_reg_id[e.reg_id]
        e.gen += 1
        _remove_sorted(self.status_indexes, (e.status_index,))
        _remove_sorted(self.reg_ids, (e.reg_id,))
        _remove_sorted(self.macs, tuple(e.mac))


def _remove_sorted(seq: list[tuple[int, ...]], item: tuple[int, ...]) -> None:
    i = bisect.bisect_left(seq, item)
    if i < len(seq) and seq[i] == item:
        del seq[i]
