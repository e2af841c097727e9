"""A packet socket on one interface that only ever sees DHCPv4 frames.

AF_PACKET needs CAP_NET_RAW and nothing more. The kernel filters with a classic BPF
program equivalent to tcpdump's ``udp and (port 67 or port 68)`` for IPv4 (first
fragments only), written out here so no libpcap or tcpdump is needed to compile it.
The socket is created with protocol 0 (it receives nothing), the filter is attached,
and only then is it bound to the interface: no unfiltered frame slips in between.
"""

from __future__ import annotations

import ctypes
import select
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

ETH_P_ALL = 0x0003
SO_ATTACH_FILTER = 26
PACKET_OUTGOING = 4  # sll_pkttype of frames this host sent
_DROP, _ACCEPT = 14, 13
# (code, jt, jf, k); jumps are relative to the next instruction.
DHCP_BPF: tuple[tuple[int, int, int, int], ...] = (
    (0x28, 0, 0, 12),          # 0  ldh [12]                ethertype
    (0x15, 0, 12, 0x0800),     # 1  jeq IPv4 ? 2 : drop
    (0x30, 0, 0, 23),          # 2  ldb [23]                IP protocol
    (0x15, 0, 10, 17),         # 3  jeq UDP ? 4 : drop
    (0x28, 0, 0, 20),          # 4  ldh [20]                flags + fragment offset
    (0x45, 8, 0, 0x1FFF),      # 5  jset offset ? drop : 6  (not a first fragment)
    (0xB1, 0, 0, 14),          # 6  ldxb 4*([14]&0xf)       IP header length
    (0x48, 0, 0, 14),          # 7  ldh [x+14]              source port
    (0x15, 4, 0, 67),          # 8  jeq 67 ? accept : 9
    (0x15, 3, 0, 68),          # 9  jeq 68 ? accept : 10
    (0x48, 0, 0, 16),          # 10 ldh [x+16]              destination port
    (0x15, 1, 0, 67),          # 11 jeq 67 ? accept : 12
    (0x15, 0, 1, 68),          # 12 jeq 68 ? accept : drop
    (0x06, 0, 0, 0x40000),     # 13 accept (whole frame)
    (0x06, 0, 0, 0),           # 14 drop
)


def interface_mac(interface: str) -> str:
    """The interface's own MAC address (from sysfs)."""
    return Path(f"/sys/class/net/{interface}/address").read_text().strip()


def open_dhcp_socket(interface: str) -> socket.socket:
    """A non-blocking AF_PACKET socket on ``interface`` that receives DHCPv4 only.
    Raises OSError (e.g. EPERM without CAP_NET_RAW, ENODEV for a wrong name)."""
    if not Path(f"/sys/class/net/{interface}").exists():
        raise OSError(f"no such interface: {interface}")
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        prog = b"".join(struct.pack("HBBI", *insn) for insn in DHCP_BPF)
        buf = ctypes.create_string_buffer(prog, len(prog))
        fprog = struct.pack("HL", len(DHCP_BPF), ctypes.addressof(buf))
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        sock.bind((interface, ETH_P_ALL))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def receive(sock: socket.socket, deadline: float, *, poll_s: float = 0.5,
            include_outgoing: bool = True) -> Iterator[bytes]:
    """Frames until ``deadline`` (time.monotonic()); yields nothing once it passes.
    Each wait is at most ``poll_s``, so a caller can stop between frames."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        ready, _, _ = select.select([sock], [], [], min(left, poll_s))
        if not ready:
            continue
        try:
            frame, addr = sock.recvfrom(65535)
        except BlockingIOError:
            continue
        if not include_outgoing and len(addr) > 2 and addr[2] == PACKET_OUTGOING:
            continue
        yield frame
