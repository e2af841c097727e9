"""The lab's CLI dialects render the layouts and state words of the real boxes, each state
in the situation that causes it, and the enforcer's profiles read every one of them
(lab/README.md "Fidelity" names the source of each format)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import ValidationError

from enforcer.domain.mac import Mac
from enforcer.domain.model import Verdict
from enforcer.drivers.cli_mech import ListingResult, parse_listing
from enforcer.inventory.profiles import load_profiles
from lab.model import Cmts, Fleet
from lab.model.modem import Modem, Phase, Timings
from lab.ssh.dialects import DIALECTS
from lab.ssh.shell import Shell
from lab.topology import DeviceSpec

PROFILES = load_profiles(Path(__file__).resolve().parents[2] / "device_profiles")
T = Timings()


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@dataclass
class Lab:
    f: Fleet
    c: Cmts
    sh: Shell
    clock: Clock
    mac: bytes


def lab(dialect: str, layout: str = "classic", **modem: object) -> Lab:
    clock = Clock()
    f = Fleet(T, now=clock, wall=lambda: 1_764_754_201.0)
    c = f.add_cmts("dev", dialect, layout=layout)
    mac = bytes.fromhex("0a003e400001")
    f.add_modem(Modem(mac=mac, cmts="dev", node="rpd-7", md_if=3, us_if=1, ds_if=2,
                      ip=bytes([10, 43, 0, 1]), **modem))  # type: ignore[arg-type]
    sh = Shell(DIALECTS[dialect], c, "dev")
    sh.mode = "priv"
    return Lab(f, c, sh, clock, mac)


def read(dialect: str, sh: Shell) -> ListingResult:
    spec = PROFILES[dialect].listing
    assert spec is not None
    got = parse_listing(spec, sh.run("show cable modem"), device="dev",
                        command="show cable modem")
    backend = sh.backend
    assert isinstance(backend, Cmts) and got.layout == backend.layout  # the view rendered
    return got


def word(dialect: str, sh: Shell, mac: bytes) -> str:
    got = read(dialect, sh)
    assert not got.unknown, got.unknown
    return got.rows[Mac(mac)][1]


CASES = [
    # (dialect, modem attributes, action, expected word, expected verdict)
    ("cisco-cbr8", {}, None, "w-online(pt)", Verdict.FORWARDING),
    ("cisco-cbr8", {"bpi_plus": False, "bonded": False}, None, "online", Verdict.FORWARDING),
    ("cisco-cbr8", {"partial": True}, None, "p-online(pt)", Verdict.FORWARDING),
    ("cisco-cbr8", {}, "cm-ctrl", "w-online(ptd)", Verdict.BLOCKED),
    ("cisco-cbr8", {"network_access": False, "bonded": False}, None, "online(ptd)",
     Verdict.BLOCKED),
    ("cisco-cbr8", {"bpi_plus": False, "network_access": False, "bonded": False}, None,
     "online(d)", Verdict.BLOCKED),
    ("cisco-cbr8", {}, "hotlist", "w-reject(pk)", Verdict.BLOCKED),
    ("cisco-cbr8", {"bonded": False}, "hotlist", "reject(pk)", Verdict.BLOCKED),
    ("casa-c100g", {}, None, "online(pt)", Verdict.FORWARDING),
    ("casa-c100g", {"bpi_plus": False}, None, "online", Verdict.FORWARDING),
    ("casa-c100g", {}, "cm-ctrl", "online(ptd)", Verdict.BLOCKED),
    ("casa-c100g", {"bpi_plus": False, "network_access": False}, None, "online(d)",
     Verdict.BLOCKED),
    ("casa-c100g", {}, "hotlist", "reject(pk)", Verdict.BLOCKED),
    ("arris-e6000", {}, None, "Operational", Verdict.FORWARDING),
    ("arris-e6000", {}, "cm-ctrl", "Online-d", Verdict.BLOCKED),
    ("arris-e6000", {"network_access": False}, None, "Online-d", Verdict.BLOCKED),
]


# The Remote PHY views (topology ``layout``) of the dialects that have one.
VIEWS = {"cisco-cbr8": "rphy", "casa-c100g": "vccap"}
LAYOUT_CASES = [("classic", *c) for c in CASES] + [
    (VIEWS[c[0]], *c) for c in CASES if c[0] in VIEWS]


@pytest.mark.parametrize(("layout", "dialect", "attrs", "action", "expect", "verdict"),
                         LAYOUT_CASES)
def test_each_state_in_the_situation_that_causes_it(
        layout: str, dialect: str, attrs: dict[str, object], action: str | None,
        expect: str, verdict: Verdict) -> None:
    lab_ = lab(dialect, layout, **attrs)
    f = lab_.f
    c = lab_.c
    sh = lab_.sh
    clock = lab_.clock
    mac = lab_.mac
    if action == "cm-ctrl":
        assert c.disable_forwarding(mac, True)
    elif action == "hotlist":
        c.hotlist_add(mac, cert=None)
        c.reset(mac)
        for _ in range(40):  # one phase step per due time
            clock.t += T.registration_total_s / 10
            f.sched.run_due()
        assert c.entries[mac].phase is Phase.REJECTED
    got = read(dialect, sh)
    assert got.rows[Mac(mac)] == (verdict, expect, got.rows[Mac(mac)][2])


@pytest.mark.parametrize(("dialect", "layout", "words"), [
    ("cisco-cbr8", "classic", {"offline", "init(r1)", "init(r2)", "init(rc)", "init(d)",
                               "init(i)", "init(t)", "init(o)", "w-online(pk)",
                               "w-online(pt)"}),
    ("cisco-cbr8", "rphy", {"offline", "init(r1)", "init(r2)", "init(rc)", "init(d)",
                            "init(i)", "init(t)", "init(o)", "w-online(pk)", "w-online(pt)"}),
    ("casa-c100g", "classic", {"offline", "init(r1)", "init(r2)", "init(rc)", "init(d)",
                               "init(i)", "init(t)", "init(o)", "online(pk)", "online(pt)"}),
    ("casa-c100g", "vccap", {"offline", "init(r1)", "init(r2)", "init(rc)", "init(d)",
                             "init(i)", "init(t)", "init(o)", "online(pk)", "online(pt)"}),
    ("arris-e6000", "classic", {"Offline", "Ranging", "Ranged", "DhcpV4Done", "Registered",
                                "Operational"}),
])
def test_a_registration_walks_through_the_vendor_words(dialect: str, layout: str,
                                                       words: set[str]) -> None:
    """Reset a BPI+ modem and watch its listing word at small time steps."""
    lab_ = lab(dialect, layout)
    f = lab_.f
    c = lab_.c
    sh = lab_.sh
    clock = lab_.clock
    mac = lab_.mac
    assert c.reset(mac)
    seen: list[str] = []
    step = T.ranging_s / 8
    for _ in range(int(2 * T.registration_total_s / step)):
        w = word(dialect, sh, mac)
        if not seen or seen[-1] != w:
            seen.append(w)
        clock.t += step
        f.sched.run_due()
    assert set(seen) == words, seen
    assert seen[0].lower() == "offline" and seen[-1] in ("w-online(pt)", "online(pt)",
                                                         "Operational")


@pytest.mark.parametrize(("dialect", "layout", "words"), [
    ("cisco-cbr8", "classic", ["w-online(pkd)", "w-online(ptd)"]),
    ("cisco-cbr8", "rphy", ["w-online(pkd)", "w-online(ptd)"]),
    ("casa-c100g", "classic", ["online(pkd)", "online(ptd)"]),
    ("casa-c100g", "vccap", ["online(pkd)", "online(ptd)"]),
])
def test_network_access_disabled_reads_blocked_from_key_exchange_on(
        dialect: str, layout: str, words: list[str]) -> None:
    """A BPI+ modem whose config file says NetworkAccess=0: ``..(pkd)`` while its
    traffic key is pending, then ``..(ptd)``; both read blocked, never forwarding."""
    lab_ = lab(dialect, layout, network_access=False)
    assert lab_.c.reset(lab_.mac)
    seen: list[str] = []
    step = T.ranging_s / 8
    for _ in range(int(2 * T.registration_total_s / step)):
        got = read(dialect, lab_.sh).rows[Mac(lab_.mac)]
        if got[1].startswith(("online", "w-online")):
            assert got[0] is Verdict.BLOCKED, got
            if not seen or seen[-1] != got[1]:
                seen.append(got[1])
        lab_.clock.t += step
        lab_.f.sched.run_due()
    assert seen == words


def test_registering_words_read_as_in_transition_not_forwarding() -> None:
    lab_ = lab("cisco-cbr8")
    f = lab_.f
    c = lab_.c
    sh = lab_.sh
    clock = lab_.clock
    mac = lab_.mac
    c.reset(mac)
    clock.t += T.reset_offline_s + T.ranging_s / 4
    f.sched.run_due()
    got = read("cisco-cbr8", sh)
    assert got.rows[Mac(mac)][0] is Verdict.UNKNOWN and got.rows[Mac(mac)][2] == "registering"


def test_arris_layout_timestamp_header_rows_summary() -> None:
    lab_ = lab("arris-e6000")
    sh = lab_.sh
    lines = sh.run("show cable modem").replace("\r\n", "\n").splitlines()
    assert lines[0].startswith("Wed Dec 03 09:30:01 2025")  # the listing's timestamp
    assert lines[1].startswith("Interface (DS-US)") and "Bonded" in lines[1]
    assert lines[2].startswith("S/C/CH-S/CG/CH") and lines[2].endswith("IP Address")
    assert lines[3].split()[2] == "8x4" and "0a00.3e40.0001" in lines[3]
    assert lines[-2].split() == ["Total", "Oper", "Disable", "Init", "Offline"]
    assert lines[-1].split() == ["1", "1", "0", "0", "0"]


def test_casa_layout_offline_address_ipv6_and_partial_mark() -> None:
    v6 = ipaddress.IPv6Address("2001:db8:43::1")
    lab_ = lab("casa-c100g", ipv6=v6.packed, partial=True)
    c = lab_.c
    sh = lab_.sh
    mac = lab_.mac
    text = sh.run("show cable modem").replace("\r\n", "\n")
    row, cont = text.splitlines()[2:4]
    assert row.split()[2].endswith("#") and row.split()[3].endswith("#")  # partial service
    assert cont.strip() == str(v6) and cont.startswith(" " * 16)
    c.reset(mac)
    offline = sh.run("show cable modem").replace("\r\n", "\n").splitlines()[2]
    assert offline.split()[1] == "0.0.0.0" and offline.split()[4] == "offline"  # noqa: S104
    assert text.rstrip().endswith("online cm 1 ; offline cm 0 ; ranging cm 0")


@pytest.mark.parametrize(("dialect", "refusal"), [
    ("arris-e6000", "Error: Bad command"),
    ("cisco-cbr8", "% Invalid input detected at '^' marker."),
    ("casa-c100g", "% Invalid input detected at '^' marker."),
])
def test_refusals_are_the_vendor_forms_and_the_profile_sees_them(dialect: str,
                                                                 refusal: str) -> None:
    lab_ = lab(dialect)
    sh = lab_.sh
    out = sh.run("show cable bogus").replace("\r\n", "\n")
    assert refusal in out
    ssh = PROFILES[dialect].transports.ssh
    assert ssh is not None and ssh.refusal(out) == refusal


def test_arris_missing_and_ambiguous_parameters() -> None:
    sh = lab("arris-e6000").sh
    assert sh.run("show cable").strip() == "Error: Missing parameter"
    assert sh.run("c").strip() == "Error: Ambiguous parameter"


def test_filtered_running_config_carries_the_hostname_and_hotlist_lines() -> None:
    lab_ = lab("cisco-cbr8")
    c = lab_.c
    sh = lab_.sh
    mac = lab_.mac
    c.hotlist_add(mac, cert=None)
    cmd = "show running-config | include ^hostname|^cable privacy hotlist cm"
    out = sh.run(cmd).replace("\r\n", "\n")
    assert out.splitlines() == ["hostname dev", "cable privacy hotlist cm 0a00.3e40.0001"]
    assert "ip ssh" not in out  # filtered, not the whole running-config
    assert "hostname dev" in sh.run("sh run | inc hostname")
    assert sh.run("show running-config | exclude .").strip() == ""
    assert "Incomplete" in sh.run("show running-config | include")


@pytest.mark.parametrize(("dialect", "layout"), list(VIEWS.items()))
@pytest.mark.parametrize("kind", ["cable_modem", "set_top"])
def test_remote_phy_views_add_mac_domain_device_class_and_rphy_node(
        dialect: str, layout: str, kind: str) -> None:
    """The view's three added columns, read by the profile's layout: the modem's MAC
    domain, its device class (``eSTB`` for a set-top's eCM) and the RPD it sits behind;
    ``show cable modem <mac>`` renders the same view, an unknown MAC nothing."""
    lab_ = lab(dialect, layout, kind=kind)
    got = read(dialect, lab_.sh)
    fields = got.fields[Mac(lab_.mac)]
    assert fields["rphy_node"] == "rpd-7"
    assert fields["device_class"] == ("eSTB" if kind == "set_top" else "CM")
    assert fields["mac_domain"] == ("Cable3/0/0" if dialect == "cisco-cbr8" else "4")
    one = lab_.sh.run("show cable modem 0a00.3e40.0001").replace("\r\n", "\n")
    assert one.splitlines()[-1 if dialect == "cisco-cbr8" else -2].endswith("rpd-7")
    assert lab_.sh.run("show cable modem 0a00.3e40.00ff").strip() == ""
    lab_.c.reset(lab_.mac)  # offline rows keep the view's columns
    assert read(dialect, lab_.sh).fields[Mac(lab_.mac)]["rphy_node"] == "rpd-7"


def test_a_layout_belongs_to_its_dialect() -> None:
    assert DeviceSpec(name="c", dialect="cisco-cbr8", layout="rphy").layout == "rphy"
    for dialect, layout in [("cisco-cbr8", "vccap"), ("arris-e6000", "rphy"),
                            ("casa-c100g", "rphy"), ("docsis3-generic", "vccap")]:
        with pytest.raises(ValidationError, match="view"):
            DeviceSpec(name="c", dialect=dialect, layout=layout)
