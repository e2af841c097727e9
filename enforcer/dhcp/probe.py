"""The active probe: send one DHCPDISCOVER as a (banned) MAC and report the OFFER, if
any. Verification for provisioning-side bans: a MAC in Kea's DROP class gets no OFFER
(the server drops the packet silently, docs/docsis.md section 6).

This transmits a DHCP broadcast, so run it only where that is harmless: inside a test
or lab network namespace, or on a dedicated probe interface of the provisioning
network. It needs CAP_NET_RAW. A relayed probe (``giaddr``) acts as a relay agent and
can carry an option 82 remote-id; the server answers the relay address, which must be
configured on ``interface`` so the kernel answers ARP for it.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from enforcer.dhcp.packets import build_discover, parse_frame
from enforcer.dhcp.rawsock import interface_mac, open_dhcp_socket, receive
from enforcer.domain.mac import Mac


@dataclass(frozen=True)
class Offer:
    """A DHCPOFFER answering the probe."""

    mac: str
    yiaddr: str
    server_id: str | None
    server_ip: str
    xid: int
    elapsed_s: float

    def as_dict(self) -> dict[str, Any]:
        return {"mac": self.mac, "yiaddr": self.yiaddr, "server_id": self.server_id,
                "server_ip": self.server_ip, "xid": self.xid,
                "elapsed_s": round(self.elapsed_s, 3)}


def probe_discover(interface: str, mac: Mac | str, *, server: str | None = None,
                   timeout: float = 3.0, giaddr: str | None = None,
                   remote_id: bytes | None = None, circuit_id: bytes | None = None,
                   xid: int | None = None) -> Offer | None:
    """One DISCOVER on ``interface`` as ``mac``; the first matching OFFER (same xid and
    client MAC, and from ``server`` when given) within ``timeout`` seconds, else None."""
    mac = Mac(mac)
    xid = secrets.randbits(32) if xid is None else xid
    frame = build_discover(mac, xid, giaddr=giaddr, remote_id=remote_id,
                           circuit_id=circuit_id, server=server,
                           relay_mac=interface_mac(interface) if giaddr else None)
    started = time.monotonic()
    deadline = started + timeout
    with open_dhcp_socket(interface) as sock:
        sock.send(frame)
        for raw in receive(sock, deadline, include_outgoing=False):
            msg = parse_frame(raw)
            if msg is None or msg.message_type != "offer" or msg.xid != xid \
                    or msg.chaddr != mac:
                continue
            if server is not None and server not in (msg.server_id, msg.src_ip):
                continue
            return Offer(mac=str(mac), yiaddr=msg.yiaddr, server_id=msg.server_id,
                         server_ip=msg.src_ip, xid=xid,
                         elapsed_s=time.monotonic() - started)
    return None
