"""Render a Kea DHCPv4 configuration for the lab and tests: one subnet and pool on one
interface (a namespace's veth), a unix control socket, a memfile lease file and a log
file in a private directory, and the lease_cmds hook when it is installed.

Kea 2.x keys (``Dhcp4``): ``interfaces-config`` (``dhcp-socket-type: raw`` so clients
without an address are heard), ``control-socket`` (``socket-type: unix``),
``lease-database`` (memfile), ``subnet4`` (``id``, ``subnet``, ``pools``),
``hooks-libraries``, ``loggers``.
"""

from __future__ import annotations

import glob
import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HOOK_GLOBS = ("/usr/lib/*/kea/hooks/libdhcp_lease_cmds.so", "/usr/lib/kea/hooks/"
              "libdhcp_lease_cmds.so", "/usr/lib64/kea/hooks/libdhcp_lease_cmds.so",
              "/usr/local/lib/kea/hooks/libdhcp_lease_cmds.so")


def lease_cmds_hook() -> str | None:
    """The installed lease_cmds hook library, if any."""
    for pattern in HOOK_GLOBS:
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    return None


@dataclass(frozen=True)
class KeaLabConfig:
    """Where one lab Kea server keeps its files, and what it serves."""

    work: Path
    interface: str
    subnet: str = "10.77.0.0/24"
    pool: tuple[str, str] = ("10.77.0.100", "10.77.0.199")
    valid_lifetime: int = 600

    @property
    def socket_path(self) -> Path:
        return self.work / "kea4-ctrl.sock"

    @property
    def config_path(self) -> Path:
        return self.work / "kea-dhcp4.json"

    @property
    def lease_file(self) -> Path:
        return self.work / "leases4.csv"

    @property
    def log_file(self) -> Path:
        return self.work / "kea-dhcp4.log"


def render(cfg: KeaLabConfig, *, lease_cmds: bool = True,
           client_classes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The configuration as a JSON-ready mapping."""
    net = ipaddress.ip_network(cfg.subnet)
    for addr in cfg.pool:
        if ipaddress.ip_address(addr) not in net:
            raise ValueError(f"pool address {addr} is outside {cfg.subnet}")
    hook = lease_cmds_hook() if lease_cmds else None
    dhcp4: dict[str, Any] = {
        "interfaces-config": {"interfaces": [cfg.interface], "dhcp-socket-type": "raw"},
        "control-socket": {"socket-type": "unix", "socket-name": str(cfg.socket_path)},
        "lease-database": {"type": "memfile", "persist": True, "name": str(cfg.lease_file),
                           "lfc-interval": 0},
        "valid-lifetime": cfg.valid_lifetime,
        "subnet4": [{"id": 1, "subnet": cfg.subnet,
                     "pools": [{"pool": f"{cfg.pool[0]} - {cfg.pool[1]}"}]}],
        "hooks-libraries": [{"library": hook}] if hook else [],
        "loggers": [{"name": "kea-dhcp4", "severity": "INFO",
                     "output_options": [{"output": str(cfg.log_file)}]}],
    }
    if client_classes:
        dhcp4["client-classes"] = client_classes
    return {"Dhcp4": dhcp4}


def write(cfg: KeaLabConfig, **kw: Any) -> Path:
    """Render and write the configuration file; returns its path."""
    cfg.work.mkdir(parents=True, exist_ok=True)
    cfg.config_path.write_text(json.dumps(render(cfg, **kw), indent=2) + "\n")
    return cfg.config_path
