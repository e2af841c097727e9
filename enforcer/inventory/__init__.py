"""Devices, fiber nodes, credential references, and device profile loading."""

from enforcer.inventory.model import (
    Credentials,
    Device,
    Inventory,
    Node,
    NodeServing,
    SnmpCredentials,
    SshCredentials,
    load_inventory,
)

__all__ = [
    "Credentials",
    "Device",
    "Inventory",
    "Node",
    "NodeServing",
    "SnmpCredentials",
    "SshCredentials",
    "load_inventory",
]
