"""Provisioning-side enforcement (docs/dhcp.md): Kea's DROP class as a ban list
(:mod:`~enforcer.dhcp.dropclass`, :mod:`~enforcer.dhcp.kea_control`; the driver is
``enforcer.drivers.kea.KeaDriver``), the read-only DHCP sentinel
(:mod:`~enforcer.dhcp.sentinel`) and the active DISCOVER probe
(:mod:`~enforcer.dhcp.probe`).

Nothing here imports scapy at package import time: the sentinel and probe modules
import only scapy's DHCP, BOOTP, IP/UDP and Ethernet layers when they are imported.
"""
