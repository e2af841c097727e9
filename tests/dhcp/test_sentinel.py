"""Parsing DHCP frames, the sentinel's matching and repeat suppression (frames fed in
directly: nothing is sent or sniffed here), ban sets from orders and files."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from enforcer.dhcp.bans import (
    bans_from_file,
    bans_from_orders,
    bans_from_records,
    parse_ban_lines,
)
from enforcer.dhcp.packets import (
    UNSPECIFIED,
    BanSet,
    build_discover,
    parse_frame,
    relay_suboptions,
)
from enforcer.dhcp.rawsock import DHCP_BPF
from enforcer.dhcp.sentinel import DhcpSighting, Sentinel
from enforcer.domain.mac import Mac
from enforcer.domain.model import DeviceKind, OrderState
from enforcer.errors import InputError

CM = Mac("00:1d:cf:4a:12:7e")
CPE = Mac("00:50:56:00:00:01")
OTHER = Mac("00:1d:cf:4a:12:01")


def test_a_direct_discover_parses() -> None:
    msg = parse_frame(build_discover(CM, 0x1234))
    assert msg is not None
    assert (msg.message_type, msg.xid, msg.chaddr, msg.src_ip) == ("discover", 0x1234, CM,
                                                                   UNSPECIFIED)
    assert msg.remote_id is None and msg.giaddr == UNSPECIFIED


def test_a_relayed_discover_carries_option_82() -> None:
    frame = build_discover(CPE, 7, giaddr="10.77.0.2", remote_id=CM.packed,
                           circuit_id=b"cable-1/0", relay_mac="02:00:00:00:00:01")
    msg = parse_frame(frame)
    assert msg is not None and msg.giaddr == "10.77.0.2" and msg.src_mac == "02:00:00:00:00:01"
    assert msg.remote_id == CM.packed and msg.relay[1] == b"cable-1/0"
    assert msg.matches(BanSet(remote_ids=frozenset({CM.packed}))) == ("remote_id",)
    assert msg.matches(BanSet(macs=frozenset({CPE}), remote_ids=frozenset({CM.packed}))) == (
        "mac", "remote_id")


def test_garbage_and_non_dhcp_frames_are_ignored() -> None:
    assert parse_frame(b"") is None
    assert parse_frame(b"\xff" * 60) is None
    frame = bytearray(build_discover(CM, 1))
    assert parse_frame(bytes(frame[:40])) is None


def test_relay_suboptions_tolerate_a_truncated_tail() -> None:
    assert relay_suboptions(b"\x01\x02ab\x02\x06" + CM.packed + b"\x09\x05ab") == {
        1: b"ab", 2: CM.packed}


def run_bpf(frame: bytes) -> int:
    """A tiny classic-BPF interpreter for the instructions DHCP_BPF uses."""
    a = x = pc = 0
    for _ in range(len(DHCP_BPF)):  # no backward jumps in classic BPF
        code, jt, jf, k = DHCP_BPF[pc]
        if code == 0x06:
            return k
        if code == 0x28:
            a = int.from_bytes(frame[k:k + 2], "big")
        elif code == 0x30:
            a = frame[k]
        elif code == 0x48:
            a = int.from_bytes(frame[x + k:x + k + 2], "big")
        elif code == 0xB1:
            x = 4 * (frame[k] & 0x0F)
        elif code in (0x15, 0x45):
            hit = a == k if code == 0x15 else bool(a & k)
            pc += 1 + (jt if hit else jf)
            continue
        else:
            raise AssertionError(f"unexpected BPF code {code:#x}")
        pc += 1
    raise AssertionError("BPF program ran off its end")


def test_bpf_program_keeps_dhcp_and_drops_the_rest() -> None:
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.l2 import ARP, Ether

    assert run_bpf(build_discover(CM, 1)) > 0
    assert run_bpf(build_discover(CM, 1, giaddr="10.0.0.1")) > 0
    assert run_bpf(bytes(Ether() / IP(dst="10.0.0.1") / UDP(sport=5000, dport=68))) > 0
    assert run_bpf(bytes(Ether() / IP(dst="10.0.0.1") / UDP(sport=53, dport=53))) == 0
    assert run_bpf(bytes(Ether() / IP(dst="10.0.0.1") / TCP(sport=67, dport=67))) == 0
    assert run_bpf(bytes(Ether() / ARP())) == 0
    frag = Ether() / IP(dst="10.0.0.1", frag=10) / UDP(sport=67, dport=67)
    assert run_bpf(bytes(frag)) == 0


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_sentinel_reports_banned_attempts_once_per_window() -> None:
    seen: list[DhcpSighting] = []
    clock = Clock()
    bans = BanSet(frozenset({CM}), frozenset({CM.packed}))
    s = Sentinel("eth9", lambda: bans, seen.append, repeat_after_s=60, clock=clock)
    assert s.handle(build_discover(OTHER, 1)) is None
    first = s.handle(build_discover(CM, 2))
    assert first is not None and first.matched == ("mac",) and first.mac == str(CM)
    assert s.handle(build_discover(CM, 3)) is None  # a retry within the window
    clock.t = 61
    again = s.handle(build_discover(CM, 4))
    assert again is not None and again.repeats == 1
    cpe = s.handle(build_discover(CPE, 5, giaddr="10.0.0.1", remote_id=CM.packed))
    assert cpe is not None and cpe.matched == ("remote_id",) and cpe.remote_id == CM.bare()
    assert [x.xid for x in seen] == [2, 4, 5] and s.frames == 5 and s.sightings == 3
    assert seen[0].as_dict()["matched"] == ["mac"]


def test_offers_are_not_sightings_and_a_failing_reporter_is_contained() -> None:
    def boom(_: DhcpSighting) -> None:
        raise RuntimeError("notify down")
    s = Sentinel("eth9", lambda: BanSet(frozenset({CM})), boom)
    offer = bytearray(build_discover(CM, 1))
    msg_type_at = offer.index(bytes([53, 1, 1]))
    offer[msg_type_at + 2] = 2  # DHCPOFFER
    assert s.handle(bytes(offer)) is None
    assert s.handle(build_discover(CM, 2)) is not None  # reported even though boom raised


def test_bans_from_orders_cover_modems_set_tops_and_remote_ids() -> None:
    ecm, box = Mac("00:1d:cf:00:00:02"), Mac("00:02:de:4a:11:92")
    orders: list[dict[str, Any]] = [
        {"state": "verified", "devices": [{"mac": str(CM), "kind": "cable_modem"},
                                          {"mac": str(box), "kind": "set_top",
                                           "ecm_mac": str(ecm)}]},
        {"state": "lifted", "devices": [{"mac": str(OTHER), "kind": "cable_modem"}]},
        {"state": "lifting", "devices": [{"mac": str(CPE), "kind": "set_top"}]},
    ]
    bans = bans_from_orders(orders)
    assert bans.macs == {CM, box, ecm, CPE}
    assert bans.remote_ids == {CM.packed, ecm.packed}
    records = [SimpleNamespace(state=OrderState(o["state"]), devices=[SimpleNamespace(
        mac=Mac(d["mac"]), kind=DeviceKind(d["kind"]),
        ecm_mac=Mac(d["ecm_mac"]) if d.get("ecm_mac") else None) for d in o["devices"]])
        for o in orders]
    assert bans_from_records(records) == bans


def test_ban_file_lines(tmp_path: Path) -> None:
    bans = parse_ban_lines("# bans\n001d.cf4a.127e\nmac 00:50:56:00:00:01  # cpe\n"
                           "remote-id 0a:0b\n\n")
    assert bans.macs == {CM, CPE} and bans.remote_ids == {CM.packed, b"\x0a\x0b"}
    with pytest.raises(InputError, match="bans:2"):
        parse_ban_lines("001d.cf4a.127e\nnot-a-mac\n")
    with pytest.raises(InputError, match="cannot read"):
        bans_from_file(tmp_path / "nope")
