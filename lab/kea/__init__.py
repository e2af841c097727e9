"""A real Kea DHCPv4 server for the lab and tests, in a network namespace (see
docs/dhcp.md): configuration rendering (:mod:`lab.kea.config`) and namespaces plus
the server process (:mod:`lab.kea.runner`)."""

from lab.kea.config import KeaLabConfig, lease_cmds_hook, render, write
from lab.kea.runner import (
    DhcpNet,
    KeaProcess,
    dhcp_namespaces,
    in_netns,
    kea_binary,
    netns_available,
    running_kea,
)

__all__ = [
    "DhcpNet",
    "KeaLabConfig",
    "KeaProcess",
    "dhcp_namespaces",
    "in_netns",
    "kea_binary",
    "lease_cmds_hook",
    "netns_available",
    "render",
    "running_kea",
    "write",
]
