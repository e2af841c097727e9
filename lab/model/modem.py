"""A cable modem (or a set-top's embedded modem) and the timings of its registration.

Registration follows DOCSIS: ranging -> DHCP -> config file -> registration -> (BPI+
init) -> operational. Timings are configurable; the defaults are fast so that tests
and benchmarks do not wait on simulated radio time.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import Enum


@dataclass(frozen=True)
class Timings:
    """Seconds each registration phase lasts, and other lab clocks."""

    reset_offline_s: float = 0.15  # a reset modem is offline this long before ranging
    ranging_s: float = 0.05
    dhcp_s: float = 0.05
    config_s: float = 0.05
    registration_s: float = 0.05
    bpi_init_s: float = 0.05
    retry_s: float = 0.5  # a refused (denied / rejected) modem tries again this often
    reboot_s: float = 1.0  # a rebooting CMTS answers nothing this long
    reboot_spread_s: float = 0.5  # after a reboot, modems re-register spread over this
    offline_retention_s: float = 30.0  # offline modems stay listed this long (Cisco: 24 h)
    stb_check_s: float = 0.5  # a set-top checks its Service Disconnect package this often

    @property
    def registration_total_s(self) -> float:
        """Time from a reset to operational for a BPI+ modem."""
        return (
            self.reset_offline_s
            + self.ranging_s
            + self.dhcp_s
            + self.config_s
            + self.registration_s
            + self.bpi_init_s
        )


class Phase(Enum):
    """Where a modem is in its registration, as the CMTS sees it."""

    OFFLINE = "offline"
    RANGING = "ranging"
    DHCP = "dhcp"
    CONFIG = "config"
    REGISTRATION = "registration"
    BPI_INIT = "bpi_init"
    ONLINE = "online"
    REJECTED = "rejected"  # registration refused (BPI+ hotlist): listed as reject(pk)


# (phase, the next one) for the normal path; BPI_INIT is skipped for non-BPI+ modems.
NEXT_PHASE: dict[Phase, Phase] = {
    Phase.OFFLINE: Phase.RANGING,
    Phase.RANGING: Phase.DHCP,
    Phase.DHCP: Phase.CONFIG,
    Phase.CONFIG: Phase.REGISTRATION,
    Phase.REGISTRATION: Phase.BPI_INIT,
    Phase.BPI_INIT: Phase.ONLINE,
}


def phase_duration(phase: Phase, t: Timings) -> float:
    return {
        Phase.OFFLINE: t.reset_offline_s,
        Phase.RANGING: t.ranging_s,
        Phase.DHCP: t.dhcp_s,
        Phase.CONFIG: t.config_s,
        Phase.REGISTRATION: t.registration_s,
        Phase.BPI_INIT: t.bpi_init_s,
        Phase.REJECTED: t.retry_s,
    }.get(phase, 0.0)


@dataclass(eq=False)
class Modem:
    """A physical modem: where it is plugged in and what it is provisioned with."""

    mac: bytes
    cmts: str  # name of the CMTS it is cabled to now
    node: str  # fiber node it sits on
    md_if: int  # MAC-domain ifIndex on that CMTS
    us_if: int
    ds_if: int
    ip: bytes  # IPv4, 4 octets
    kind: str = "cable_modem"  # or "set_top" (an eCM)
    account: str = ""
    bpi_plus: bool = True
    powered: bool = True
    # Provisioning side: DOCSIS config file NetworkAccess (TLV 3). 0 -> online(d).
    network_access: bool = True
    cert: bytes = field(default=b"")
    # Channel bonding as the CMTS lists it: bonded (Cisco "w-", Casa "*", ARRIS "8x4"),
    # and partial service (an impaired bonded channel: Cisco "p-", Casa "#").
    bonded: bool = True
    partial: bool = False
    ipv6: bytes | None = None  # 16 octets when the modem also has an IPv6 address

    def __post_init__(self) -> None:
        if not self.cert:
            # A stand-in for the modem's DER certificate: stable bytes per MAC, so the
            # hotlist's "byte-identical certificate" rule can be modelled.
            self.cert = b"\x30\x82" + hashlib.sha256(b"cm-cert" + self.mac).digest() * 8
