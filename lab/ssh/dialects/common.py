"""Helpers the CMTS dialects share: reaching the Cmts behind a shell, listing its
modems, and deterministic per-modem radio figures (the model has no RF layer, so the
lab derives stable numbers from the MAC)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lab.model import CmEntry, Cmts, Headend
from lab.model.modem import Phase

if TYPE_CHECKING:
    from lab.ssh.shell import Shell


def cmts_of(sh: Shell) -> Cmts:
    if not isinstance(sh.backend, Cmts):
        raise TypeError(f"{sh.hostname}: this dialect needs a Cmts backend")
    return sh.backend


def headend_of(sh: Shell) -> Headend:
    if not isinstance(sh.backend, Headend):
        raise TypeError(f"{sh.hostname}: this dialect needs a Headend backend")
    return sh.backend


def listed(c: Cmts) -> list[CmEntry]:
    """The CMTS's registration records, by MAC (denied modems are never listed:
    the model refuses them before they get a record)."""
    return [c.entries[bytes(t)] for t in c.macs if bytes(t) in c.entries]


def dotted(mac: bytes) -> str:
    """``xxxx.xxxx.xxxx``, the form all CMTS CLIs show (docs/docsis.md section 3)."""
    h = mac.hex()
    return f"{h[0:4]}.{h[4:8]}.{h[8:12]}"


def rx_power(e: CmEntry) -> str:
    """Upstream receive power in dBmV, blank when offline (facts: cBR-8 row)."""
    if e.phase is Phase.OFFLINE:
        return ""
    tenths = (e.mac[-1] * 7 + e.mac[-2]) % 60 - 20  # -2.0 .. +3.9 dBmV
    return f"{tenths / 10:.2f}"


def timing_offset(e: CmEntry) -> int:
    if e.phase is Phase.OFFLINE:
        return 0
    return 1200 + int.from_bytes(e.mac[-2:], "big") % 600


def num_cpe(e: CmEntry) -> int:
    return 1 if e.forwarding else 0


def counts(entries: list[CmEntry]) -> tuple[int, int, int]:
    """(online, offline, ranging-or-other) for summary lines."""
    online = sum(1 for e in entries if e.online)
    offline = sum(1 for e in entries if e.phase is Phase.OFFLINE)
    return online, offline, len(entries) - online - offline


def find(c: Cmts, mac: bytes) -> CmEntry | None:
    return c.entries.get(mac)


def device_class(e: CmEntry) -> str:
    """Dev Class column of the Remote PHY / vCCAP views: the class the modem reports
    at registration, ``CM`` for a cable modem, ``eSTB`` for a set-top's embedded modem
    (the values the Cisco ``show cable modem docsis device-class`` documentation lists)."""
    return "eSTB" if e.modem.kind == "set_top" else "CM"


def at_columns(*placed: tuple[int, str]) -> str:
    """A header line with each label starting at its column."""
    line = ""
    for col, text in placed:
        line = line.ljust(col) + text
    return line
