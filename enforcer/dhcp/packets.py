"""DHCPv4 frames: parse what the sentinel and the probe read, build the probe's DISCOVER.

Only scapy's DHCP, BOOTP, IP/UDP and Ethernet layers are imported: ``from scapy.all``
costs over a second (docs/docsis.md section 7). Option 82 (relay agent information,
RFC 3046) is parsed here into its sub-options; sub-option 2 is the remote-id that Kea's
``relay4[2].hex`` reads (docs/docsis.md section 6). A DOCSIS CMTS relay puts the cable
modem's MAC in the remote-id of the requests it relays for the CPEs behind that modem
[inference from DOCSIS CMTS relay-agent practice], so banning a modem's MAC as a
remote-id reaches the devices behind it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from enforcer.domain.mac import Mac
from enforcer.errors import MacError

UNSPECIFIED = "0.0.0.0"  # noqa: S104 - an address in a packet, not a bind
MESSAGE_TYPES = {1: "discover", 2: "offer", 3: "request", 4: "decline", 5: "ack", 6: "nak",
                 7: "release", 8: "inform"}
BROADCAST_FLAG = 0x8000  # BOOTP flags: ask the server to broadcast its answer (RFC 2131)
REMOTE_ID = 2  # option 82 sub-option: Agent Remote ID (RFC 3046)
CIRCUIT_ID = 1


@dataclass(frozen=True)
class BanSet:
    """What the sentinel looks for: banned MACs (client hardware address) and banned
    option-82 remote-ids (raw bytes)."""

    macs: frozenset[Mac] = frozenset()
    remote_ids: frozenset[bytes] = frozenset()

    def __len__(self) -> int:
        return len(self.macs) + len(self.remote_ids)


@dataclass(frozen=True)
class DhcpMessage:
    """The fields of one DHCPv4 frame that matter for bans."""

    message_type: str
    xid: int
    chaddr: Mac | None  # None when the client hardware address is not a unicast MAC
    src_mac: str
    src_ip: str
    giaddr: str
    yiaddr: str
    server_id: str | None = None
    relay: dict[int, bytes] = field(default_factory=dict)

    @property
    def remote_id(self) -> bytes | None:
        return self.relay.get(REMOTE_ID)

    def matches(self, bans: BanSet) -> tuple[str, ...]:
        """Why this message is from a banned device: ``mac`` and/or ``remote_id``."""
        out: list[str] = []
        if self.chaddr is not None and self.chaddr in bans.macs:
            out.append("mac")
        rid = self.remote_id
        if rid is not None and rid in bans.remote_ids:
            out.append("remote_id")
        return tuple(out)


def relay_suboptions(data: bytes) -> dict[int, bytes]:
    """Option 82's sub-options (type, length, value); a truncated tail is ignored."""
    out: dict[int, bytes] = {}
    i = 0
    while i + 2 <= len(data):
        code, length = data[i], data[i + 1]
        if i + 2 + length > len(data):
            break
        out.setdefault(code, data[i + 2:i + 2 + length])
        i += 2 + length
    return out


def parse_frame(frame: bytes) -> DhcpMessage | None:
    """A DHCPv4 message from an Ethernet frame; None for anything else (or garbage)."""
    try:
        pkt = Ether(frame)
    except Exception:  # noqa: BLE001 - scapy raises many types on malformed frames
        return None
    if not (pkt.haslayer(BOOTP) and pkt.haslayer(DHCP) and pkt.haslayer(IP)):
        return None
    bootp, ip = pkt[BOOTP], pkt[IP]
    options: dict[str, object] = {}
    for opt in pkt[DHCP].options:
        if isinstance(opt, tuple) and len(opt) >= 2 and isinstance(opt[0], str):
            options.setdefault(opt[0], opt[1])
    mtype = options.get("message-type")
    if not isinstance(mtype, int):
        return None
    raw_ch = bytes(bootp.chaddr or b"")
    chaddr: Mac | None = None
    if int(bootp.htype) == 1 and int(bootp.hlen) == 6 and len(raw_ch) >= 6:
        try:
            chaddr = Mac(raw_ch[:6])
        except MacError:
            chaddr = None
    rai = options.get("relay_agent_information")
    sid = options.get("server_id")
    return DhcpMessage(
        message_type=MESSAGE_TYPES.get(mtype, str(mtype)), xid=int(bootp.xid), chaddr=chaddr,
        src_mac=str(pkt.src), src_ip=str(ip.src), giaddr=str(bootp.giaddr),
        yiaddr=str(bootp.yiaddr), server_id=str(sid) if sid is not None else None,
        relay=relay_suboptions(rai) if isinstance(rai, bytes) else {})


def build_discover(mac: Mac, xid: int, *, giaddr: str | None = None,
                   remote_id: bytes | None = None, circuit_id: bytes | None = None,
                   relay_mac: str | None = None, server: str | None = None) -> bytes:
    """A DHCPDISCOVER as ``mac``. Direct: from 0.0.0.0:68 to broadcast with the
    broadcast flag set (so the OFFER comes back as a broadcast the probe sees). Relayed
    (``giaddr``): as a relay agent at ``giaddr`` (source MAC ``relay_mac``) from port 67,
    with option 82 when a remote-id or circuit-id is given; the server answers the relay
    at ``giaddr``:67."""
    options: list[object] = [("message-type", "discover"), ("param_req_list", [1, 3, 6, 51])]
    if remote_id is not None or circuit_id is not None:
        sub = b""
        if circuit_id is not None:
            sub += bytes([CIRCUIT_ID, len(circuit_id)]) + circuit_id
        if remote_id is not None:
            sub += bytes([REMOTE_ID, len(remote_id)]) + remote_id
        options.append(("relay_agent_information", sub))
    options.append("end")
    bootp = BOOTP(op=1, htype=1, hlen=6, xid=xid, chaddr=mac.packed + b"\x00" * 10,
                  flags=BROADCAST_FLAG if giaddr is None else 0, giaddr=giaddr or UNSPECIFIED,
                  hops=1 if giaddr else 0)
    if giaddr is None:
        frame = (Ether(src=mac.colon(), dst="ff:ff:ff:ff:ff:ff")
                 / IP(src=UNSPECIFIED, dst="255.255.255.255")  # RFC 2131 client
                 / UDP(sport=68, dport=67))
    else:
        frame = (Ether(src=relay_mac or mac.colon(), dst="ff:ff:ff:ff:ff:ff")
                 / IP(src=giaddr, dst=server or "255.255.255.255") / UDP(sport=67, dport=67))
    return bytes(frame / bootp / DHCP(options=options))
