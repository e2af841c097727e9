"""The CLI dialects the lab's SSH devices speak, by name."""

from __future__ import annotations

from lab.ssh.dialects import arris, casa, cisco, dncs
from lab.ssh.dialects.base import Dialect

DIALECTS: dict[str, Dialect] = {
    d.name: d for d in (cisco.DIALECT, arris.DIALECT, casa.DIALECT, dncs.DIALECT)
}

# The netmiko device_type that drives each dialect unmodified.
NETMIKO_DEVICE_TYPES: dict[str, str] = {
    "cisco-cbr8": "cisco_xe",
    "arris-e6000": "arris_cer",
    "casa-c100g": "casa_cmts",
    "dncs-headend": "linux",
}

__all__ = ["DIALECTS", "NETMIKO_DEVICE_TYPES", "Dialect"]
