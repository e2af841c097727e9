"""A set-top conditional-access controller in the style of the Cisco/SA DNCS.

Entitlements change with ``modDhctCfg`` (docs/docsis.md section 5): ``-p<pkg>`` /
``+p<pkg>`` remove / add a package, ``-dms`` / ``+dms`` disable / enable digital
service. A box checks about once a minute (``Timings.stb_check_s`` in the lab) that it
holds the Service Disconnect Avoidance package; without it the box goes dark.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

SDA_PACKAGE = "SDA"  # Service Disconnect Avoidance package name in the lab


@dataclass(eq=False)
class Dhct:
    """One set-top (DHCT) as the controller knows it."""

    mac: bytes  # the box's MAC, used by the controller
    ecm_mac: bytes  # its embedded cable modem's MAC, seen by the CMTS
    account: str = ""
    packages: set[str] = field(default_factory=lambda: {SDA_PACKAGE, "BASIC", "HD"})
    dms: bool = True  # digital service enabled
    sda_lost_at: float | None = None  # when the SDA package was removed (monotonic)
    phase: float = 0.0  # offset of this box's check cycle within stb_check_s


class Headend:
    """The controller: set-tops by MAC, their packages and service-disconnect state."""

    def __init__(self, name: str, *, check_s: float, now: Callable[[], float]) -> None:
        self.name = name
        self.check_s = check_s
        self._now = now
        self.dhcts: dict[bytes, Dhct] = {}
        self.transactions = 0

    def add(self, dhct: Dhct) -> None:
        dhct.phase = (int.from_bytes(dhct.mac[-2:], "big") % 1000) / 1000 * self.check_s
        self.dhcts[dhct.mac] = dhct

    def get(self, mac: bytes) -> Dhct | None:
        return self.dhcts.get(mac)

    def mod_cfg(self, mac: bytes, ops: list[str]) -> list[str]:
        """Apply ``modDhctCfg`` operations; return a line per change made.
        Raises KeyError for an unknown box, ValueError for an unknown operation."""
        d = self.dhcts[mac]
        done: list[str] = []
        for op in ops:
            if op in ("-dms", "+dms"):
                d.dms = op == "+dms"
                done.append(f"digital service {'enabled' if d.dms else 'disabled'}")
            elif op.startswith(("-p", "+p")) and len(op) > 2:
                pkg = op[2:]
                if op[0] == "+":
                    d.packages.add(pkg)
                else:
                    d.packages.discard(pkg)
                done.append(f"package {pkg} {'added' if op[0] == '+' else 'removed'}")
                if pkg == SDA_PACKAGE:
                    d.sda_lost_at = None if op[0] == "+" else self._now()
            else:
                raise ValueError(f"unknown operation {op!r}")
        self.transactions += 1
        return done

    def service_disconnected(self, d: Dhct) -> bool:
        """True once the box has run a check without the SDA package: it shows the
        barker and locks its keys."""
        if SDA_PACKAGE in d.packages or d.sda_lost_at is None:
            return False
        # The box checks at phase + k * check_s; it goes dark at the first check after
        # the package was removed.
        now = self._now()
        elapsed_checks = int((now - d.phase) // self.check_s)
        lost_checks = int((d.sda_lost_at - d.phase) // self.check_s)
        return elapsed_checks > lost_checks

    def decoding(self, d: Dhct) -> bool:
        """Would the box decode entitled TV right now?"""
        return d.dms and not self.service_disconnected(d) and bool(d.packages - {SDA_PACKAGE})
