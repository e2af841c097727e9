"""One conformance suite every driver passes (docs/architecture.md §P12), over real SNMP and SSH
(netmiko) against the lab, for every profile x mechanism x its lab dialect. SNMP goes
through the lean BER client; the ``pysnmp`` cases run SNMP mechanisms with the profile's
``transports.snmp.writer: pysnmp`` (SETs through pysnmp).

The same cases run again on a second lab whose CMTSes list their modems in their Remote
PHY views (lab/topologies/remote-phy.yaml: a cBR-8 with RPDs, a Casa vCCAP), where the
device's own ``show cable modem`` (read over SSH with the profile's layout) must also
say blocked while the block holds and forwarding after the lift.

Persistent blocks (deny list, hotlist, headend entitlement): apply -> read back ->
kick -> after the lab's fast re-registration observe() says blocked (absent for the
ARRIS deny list, which hides the modem) -> re-apply sends nothing -> remove -> kick ->
forwarding. CM-CTRL (one registration, docs/docsis.md section 1): apply -> blocked at
once -> kick -> the new registration forwards and read back is False -> re-apply ->
blocked -> remove -> forwarding. Ground truth comes from the lab's control API and,
once per dialect, from net-snmp ``snmpget`` (v3 authPriv) or OpenSSH.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest

from enforcer.domain.mac import Mac
from enforcer.domain.model import DeviceKind, Verdict
from enforcer.drivers import (
    DeviceDriver,
    HeadendDriver,
    Observation,
    ProfileDriver,
    build_driver,
)
from enforcer.inventory.profiles import Profile, load_profiles
from enforcer.mib import dotted
from enforcer.transport.snmp import PysnmpSession, SnmpEngineHandle
from lab.testing import LabHandle, running_lab
from lab.topology import load_topology

pytestmark = [pytest.mark.lab, pytest.mark.slow]
PROFILES = load_profiles(Path(__file__).resolve().parents[2] / "device_profiles")
TIMINGS: dict[str, float] = {}


@dataclass(frozen=True)
class Case:
    device: str
    mechanism: str
    mac: str
    kind: DeviceKind = DeviceKind.CABLE_MODEM
    blocked: Verdict = Verdict.BLOCKED  # what observe() says once the block holds
    writer: str = "lean"  # transports.snmp.writer of the profile


CASES = [
    Case("cbr8-1", "cm-ctrl-disable-forwarding", "00:1d:cf:4a:12:7e"),
    Case("cbr8-1", "bpi-hotlist-cli", "00:1d:cf:4a:12:7e"),
    Case("cbr8-1", "bpi-hotlist-cert", "00:1d:cf:4a:12:7e"),
    Case("e6000-1", "deny-list", "00:1d:cf:50:00:01", blocked=Verdict.ABSENT),
    Case("e6000-1", "deny-list-cli", "00:1d:cf:50:00:01", blocked=Verdict.ABSENT),
    Case("casa-1", "cm-ctrl-disable-forwarding", "00:1d:cf:50:00:11"),
    Case("generic-1", "cm-ctrl-disable-forwarding", "00:1d:cf:50:00:21"),
    Case("generic-1", "bpi-hotlist-cert", "00:1d:cf:50:00:21"),
    Case("dncs-1", "service-disconnect", "00:02:de:4a:11:92", kind=DeviceKind.SET_TOP),
    Case("e6000-1", "deny-list", "00:1d:cf:50:00:01", blocked=Verdict.ABSENT, writer="pysnmp"),
    Case("casa-1", "cm-ctrl-disable-forwarding", "00:1d:cf:50:00:11", writer="pysnmp"),
    Case("generic-1", "bpi-hotlist-cert", "00:1d:cf:50:00:21", writer="pysnmp"),
]


# The Remote PHY views: the cBR-8 and Casa cases on CMTSes rendering them.
RPHY_TOPOLOGY = Path(__file__).resolve().parents[2] / "lab" / "topologies" / "remote-phy.yaml"
VIEW = {d.name: d.layout for d in load_topology(RPHY_TOPOLOGY).devices}
RPHY_CASES = [
    Case("cbr8-rphy-1", "cm-ctrl-disable-forwarding", "00:1d:cf:60:00:01"),
    Case("cbr8-rphy-1", "bpi-hotlist-cli", "00:1d:cf:60:00:01"),
    Case("cbr8-rphy-1", "bpi-hotlist-cert", "00:1d:cf:60:00:01"),
    Case("vccap-1", "cm-ctrl-disable-forwarding", "00:1d:cf:60:00:11"),
    Case("vccap-1", "cm-ctrl-disable-forwarding", "00:1d:cf:60:00:11", writer="pysnmp"),
]


def profiles_for(case: Case) -> dict[str, Profile]:
    """The shipped profiles, with the case's SNMP writer on its device's profile."""
    if case.writer == "lean":
        return PROFILES
    out = dict(PROFILES)
    for name, prof in PROFILES.items():
        snmp = prof.transports.snmp
        if snmp is not None:
            out[name] = prof.model_copy(update={"transports": prof.transports.model_copy(
                update={"snmp": snmp.model_copy(update={"writer": case.writer})})})
    return out


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHandle]:
    with running_lab(state_dir=tmp_path_factory.mktemp("lab")) as handle:
        yield handle
    if TIMINGS:
        print("\napply+kick+verify seconds:", {k: round(v, 3) for k, v in TIMINGS.items()})


@pytest.fixture(scope="module")
def rphy_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHandle]:
    with running_lab(RPHY_TOPOLOGY, state_dir=tmp_path_factory.mktemp("rphy-lab")) as handle:
        yield handle


async def wait_for(driver: DeviceDriver, mac: Mac, want: Verdict,
                   timeout: float = 15.0) -> Observation:
    deadline = time.monotonic() + timeout
    while True:
        obs = await driver.observe(mac)
        if obs.verdict is want:
            return obs
        if time.monotonic() > deadline:
            raise AssertionError(f"{driver.name}: {mac} never became {want}: {obs}")
        await asyncio.sleep(0.05)


def state_changing(transcript: list[str]) -> list[str]:
    """Transcript lines that would change device state (SETs, config, modDhctCfg)."""
    return [t for t in transcript
            if t.startswith(("SET ", "config>")) or re.match(r"> (modDhctCfg|configure)", t)]


def forwarding_truth(lab: LabHandle, case: Case) -> bool:
    t = lab.truth(case.mac)
    if case.kind is DeviceKind.SET_TOP:
        return bool(t["headend"]["decoding"])
    return bool(t["forwarding"])


async def wait_listed(driver: DeviceDriver, mac: Mac, want: Verdict, lab: LabHandle,
                      timeout: float = 15.0) -> tuple[str, str]:
    """Read the device's own modem listing over SSH until it lists ``mac`` with a word
    meaning ``want``; check the listing is the device's Remote PHY view and names the
    modem's RPD. Returns (state word, layout)."""
    assert isinstance(driver, ProfileDriver)
    deadline = time.monotonic() + timeout
    while True:
        listing = await driver.list_modems()
        assert not listing.unknown, listing.unknown
        row = listing.rows.get(mac)
        if row is not None and row[0] is want:
            assert listing.layout == VIEW[driver.name]
            assert listing.fields[mac]["rphy_node"] == lab.truth(str(mac))["node"]
            return row[1], listing.layout
        if time.monotonic() > deadline:
            raise AssertionError(f"{driver.name}: {mac} never listed {want}: {row}")
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("case", CASES,
                         ids=lambda c: f"{c.device}-{c.mechanism}-{c.writer}")
async def test_mechanism_conformance(lab: LabHandle, case: Case, tmp_path: Path) -> None:
    await conform(lab, case, tmp_path)


@pytest.mark.parametrize("case", RPHY_CASES,
                         ids=lambda c: f"{c.device}-{c.mechanism}-{c.writer}")
async def test_mechanism_conformance_on_remote_phy_views(rphy_lab: LabHandle, case: Case,
                                                         tmp_path: Path) -> None:
    """Ban and lift on a CMTS rendering its Remote PHY view; its own listing agrees."""
    await conform(rphy_lab, case, tmp_path, listing=True)


async def conform(lab: LabHandle, case: Case, tmp_path: Path, *,
                  listing: bool = False) -> None:
    handle = SnmpEngineHandle()
    driver = build_driver(case.device, lab.inventory, profiles_for(case), snmp_engine=handle,
                          state_dir=tmp_path)
    mac = Mac(case.mac)
    mech = PROFILES[driver.profile.platform].mechanism(case.mechanism)
    try:
        assert case.mechanism in driver.mechanisms()
        observed = driver.profile.observe.blocks  # mechanisms observe() reads back
        obs = await wait_for(driver, mac, Verdict.FORWARDING)
        assert obs.blocks_present.get(case.mechanism, False) is False
        start = time.monotonic()
        applied = await driver.apply(mac, case.mechanism, kind=case.kind)
        assert (applied.changed, applied.failed, applied.error) == (True, False, None)
        assert state_changing(applied.transcript)
        if case.writer == "pysnmp":  # the SETs went through pysnmp
            session: Any = (await cast(Any, driver)._snmp()).session
            assert isinstance(session.writer, PysnmpSession)
        assert await driver.read_back(mac, case.mechanism)
        if mech.kick_after_apply:
            kicked = await driver.kick(mac)
            assert not kicked.failed, kicked.error
        obs = await wait_for(driver, mac, case.blocked)
        TIMINGS[f"{case.device}/{case.mechanism}"] = time.monotonic() - start
        assert obs.blocks_present[case.mechanism] if case.mechanism in observed else True
        assert not forwarding_truth(lab, case), lab.truth(case.mac)
        if listing:  # e.g. w-online(ptd) (CM-CTRL), w-reject(pk) (hotlist)
            word, _ = await wait_listed(driver, mac, Verdict.BLOCKED, lab)
            assert word == ("online(ptd)" if case.device == "vccap-1" else
                            "w-reject(pk)" if "hotlist" in case.mechanism else
                            "w-online(ptd)"), word
        if case.blocked is Verdict.ABSENT:  # the deny list refuses the re-registration
            lab.wait_truth(case.mac, lambda t: "deny list" in t["why"], timeout=5)

        if mech.persistence == "registration":
            # a new registration forgets CM-CTRL: the reconciler must re-apply it
            assert not (await driver.kick(mac)).failed
            await wait_for(driver, mac, Verdict.FORWARDING)
            assert not await driver.read_back(mac, case.mechanism)
            again = await driver.apply(mac, case.mechanism, kind=case.kind)
            assert (again.changed, again.failed) == (True, False)
            await wait_for(driver, mac, Verdict.BLOCKED)

        same = await driver.apply(mac, case.mechanism, kind=case.kind)
        assert (same.changed, same.failed) == (False, False)
        assert state_changing(same.transcript) == [], same.transcript

        removed = await driver.remove(mac, case.mechanism)
        assert (removed.changed, removed.failed) == (True, False), removed.error
        assert not await driver.read_back(mac, case.mechanism)
        if driver.profile.kick is not None:
            assert not (await driver.kick(mac)).failed
        obs = await wait_for(driver, mac, Verdict.FORWARDING)
        assert obs.blocks_present.get(case.mechanism, False) is False
        lab.wait_truth(case.mac, lambda t: forwarding_truth(lab, case), timeout=5)
        if listing:
            word, _ = await wait_listed(driver, mac, Verdict.FORWARDING, lab)
            assert word == ("online(pt)" if case.device == "vccap-1" else "w-online(pt)")
    finally:
        await driver.remove(mac, case.mechanism)  # leave the lab clean if a step failed
        await driver.close()
        handle.close()


async def test_headend_reports_the_ecm_mac_and_service_disconnect(lab: LabHandle,
                                                                  tmp_path: Path) -> None:
    handle = SnmpEngineHandle()
    driver = build_driver("dncs-1", lab.inventory, PROFILES, snmp_engine=handle,
                          state_dir=tmp_path)
    assert isinstance(driver, HeadendDriver)
    stb = Mac("00:02:de:4a:11:92")
    try:
        assert await driver.ecm_mac(stb) == Mac("00:02:de:4a:11:93")
        assert await driver.ecm_mac(Mac("00:02:de:00:00:01")) is None
        assert not (await driver.apply(stb, "service-disconnect", kind=DeviceKind.SET_TOP)).failed
        lab.wait_truth(str(stb), lambda t: t["headend"]["service_disconnected"], timeout=5)
        obs = await driver.observe(stb)
        assert obs.detail["service_disconnect"] == "yes"
        assert ssh_exec(lab, "dncs-1", f"showDhct {stb.colon(True)}").count("Decoding: no") == 1
    finally:
        await driver.remove(stb, "service-disconnect")
        await driver.close()
        handle.close()


async def test_sweep_lists_every_registered_modem(lab: LabHandle, tmp_path: Path) -> None:
    handle = SnmpEngineHandle()
    try:
        for name in ("cbr8-1", "e6000-1", "casa-1", "generic-1"):
            driver = build_driver(name, lab.inventory, PROFILES, snmp_engine=handle,
                                  state_dir=tmp_path)
            swept = await driver.sweep()
            listed = {s["device"] for m in list(swept)[:3] for s in lab.truth(str(m))["seen"]}
            assert listed == {name}
            assert len(swept) >= 50 and Counter(o.verdict for o in swept.values())[
                Verdict.FORWARDING] >= 40, name
            await driver.close()
    finally:
        handle.close()


@pytest.mark.parametrize("name", ["cbr8-1", "e6000-1", "casa-1"])
async def test_cli_listing_over_ssh_agrees_with_the_snmp_sweep(lab: LabHandle, name: str,
                                                              tmp_path: Path) -> None:
    """The device's own ``show cable modem`` (reshaped like the real box), read over SSH
    with the profile's layout and vocabulary, lists the modems the SNMP sweep lists, with
    no state word the profile does not know, and the same forwarding ones."""
    await listing_agrees(lab, name, tmp_path, layout="classic", least=40)


@pytest.mark.parametrize("name", ["cbr8-rphy-1", "vccap-1"])
async def test_remote_phy_view_over_ssh_agrees_with_the_snmp_sweep(
        rphy_lab: LabHandle, name: str, tmp_path: Path) -> None:
    """The Remote PHY view lists the same modems as the SNMP sweep, each with the RPD
    (RPHY node) the lab placed it behind and its device class (set-tops' eCMs: eSTB)."""
    await listing_agrees(rphy_lab, name, tmp_path, layout=VIEW[name], least=30)


async def listing_agrees(lab: LabHandle, name: str, tmp_path: Path, *, layout: str,
                         least: int) -> None:
    handle = SnmpEngineHandle()
    driver = build_driver(name, lab.inventory, PROFILES, snmp_engine=handle,
                          state_dir=tmp_path)
    try:
        assert isinstance(driver, ProfileDriver)
        listing = await driver.list_modems()
        swept = await driver.sweep()
        assert listing.layout == layout and not listing.unknown, listing.unknown
        assert set(listing.rows) == set(swept), name
        forwarding_cli = {m for m, r in listing.rows.items() if r[0] is Verdict.FORWARDING}
        forwarding_snmp = {m for m, o in swept.items() if o.verdict is Verdict.FORWARDING}
        assert len(forwarding_cli) >= least
        if layout != "classic":
            for mac in list(listing.rows)[:5]:
                t = lab.truth(str(mac))
                assert listing.fields[mac]["rphy_node"] == t["node"]
                assert listing.fields[mac]["device_class"] == (
                    "eSTB" if t["kind"] == "set_top" else "CM")
            assert {f["device_class"] for f in listing.fields.values()} == {"CM", "eSTB"}
        # A modem may change state between the two reads (the lab's registrations run
        # on): the two views agree on all but a few.
        assert len(forwarding_cli ^ forwarding_snmp) <= 3, name
    finally:
        await driver.close()
        handle.close()


# ---- independent ground truth: net-snmp and OpenSSH ---------------------------------

def snmp_args(lab: LabHandle, device: str) -> list[str]:
    d = lab.inventory.devices[device]
    c = lab.inventory.creds(device).snmp
    assert c is not None and c.user and c.auth_password and c.priv_password
    return ["-v3", "-l", "authPriv", "-u", c.user, "-a", c.auth_protocol, "-A",
            c.auth_password.get_secret_value(), "-x", c.priv_protocol, "-X",
            c.priv_password.get_secret_value(), "-On", "-r", "1", "-t", "2",
            f"udp:{d.host}:{d.snmp_port}"]


def snmpget(lab: LabHandle, device: str, oid: str) -> str:
    out = subprocess.run(["snmpget", *snmp_args(lab, device), oid], capture_output=True,
                         text=True, timeout=20, check=True)
    return out.stdout.strip()


def if3_state_by_netsnmp(lab: LabHandle, device: str, mac: Mac) -> str:
    walk = subprocess.run(["snmpbulkwalk", *snmp_args(lab, device), "-Ox",
                           dotted("docsIf3CmtsCmRegStatusMacAddr")], capture_output=True, text=True,
                          timeout=20, check=True).stdout
    want = " ".join(f"{b:02X}" for b in mac.packed)
    reg = next(line.split(" = ")[0].rsplit(".", 1)[1] for line in walk.splitlines()
               if line.strip().upper().endswith(want))
    return snmpget(lab, device, f"{dotted('docsIf3CmtsCmRegStatusValue')}.{reg}")


def ssh_exec(lab: LabHandle, device: str, command: str) -> str:
    """Run one command with OpenSSH, the pinned key as the only known host."""
    d = lab.inventory.devices[device]
    creds = lab.inventory.creds(device).ssh
    assert creds is not None and creds.password is not None and d.host_key
    tmp = lab.state_dir / f"openssh-{device}"
    tmp.mkdir(exist_ok=True)
    (tmp / "known_hosts").write_text(f"[{d.host}]:{d.ssh_port} {d.host_key}\n")
    askpass = tmp / "askpass.sh"
    askpass.write_text("#!/bin/sh\nprintf '%s\\n' \"$LAB_SSH_PASSWORD\"\n")
    askpass.chmod(0o700)
    env = {**os.environ, "SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force",
           "LAB_SSH_PASSWORD": creds.password.get_secret_value(), "DISPLAY": ":0"}
    out = subprocess.run(
        ["ssh", "-p", str(d.ssh_port), "-o", f"UserKnownHostsFile={tmp / 'known_hosts'}",
         "-o", "StrictHostKeyChecking=yes", "-o", "PreferredAuthentications=password",
         "-o", "PubkeyAuthentication=no", "-o", "ConnectTimeout=5",
         f"{creds.username}@{d.host}", command],
        capture_output=True, text=True, timeout=30, env=env, stdin=subprocess.DEVNULL)
    return out.stdout


@pytest.mark.parametrize("device", ["cbr8-1", "e6000-1", "casa-1", "generic-1"])
async def test_blocks_agree_with_net_snmp(lab: LabHandle, device: str, tmp_path: Path) -> None:
    """One block per CMTS dialect, checked with net-snmp rather than our own reader."""
    handle = SnmpEngineHandle()
    driver = build_driver(device, lab.inventory, PROFILES, snmp_engine=handle,
                          state_dir=tmp_path)
    case = next(c for c in CASES if c.device == device and
                PROFILES[driver.profile.platform].mechanism(c.mechanism).transport == "snmp")
    mac = Mac(case.mac)
    try:
        await wait_for(driver, mac, Verdict.FORWARDING)
        assert not (await driver.apply(mac, case.mechanism, kind=case.kind)).failed
        if device == "e6000-1":
            assert snmpget(lab, device, f"{dotted('cadCmDenyRowStatus')}.{mac.oid_suffix}") \
                .endswith("INTEGER: 1")
        elif device == "cbr8-1":
            idx = next(s["status_index"] for s in lab.truth(case.mac)["seen"])
            assert snmpget(lab, device, f"{dotted('cdxCmtsCmStatusValue')}.{idx}") \
                .endswith("INTEGER: 5")  # onlineNetAccessDisabled
        else:
            assert if3_state_by_netsnmp(lab, device, mac).endswith("INTEGER: 17")
    finally:
        await driver.remove(mac, case.mechanism)
        await driver.close()
        handle.close()


async def test_cli_blocks_agree_with_openssh(lab: LabHandle, tmp_path: Path) -> None:
    handle = SnmpEngineHandle()
    mac = Mac("00:1d:cf:4a:12:7e")
    driver = build_driver("cbr8-1", lab.inventory, PROFILES, snmp_engine=handle,
                          state_dir=tmp_path)
    try:
        assert not (await driver.apply(mac, "bpi-hotlist-cli",
                                       kind=DeviceKind.CABLE_MODEM)).failed
        assert "cable privacy hotlist cm 001d.cf4a.127e" in ssh_exec(
            lab, "cbr8-1", "show running-config")
        await driver.remove(mac, "bpi-hotlist-cli")
        assert "hotlist cm 001d" not in ssh_exec(lab, "cbr8-1", "show running-config")
    finally:
        await driver.remove(mac, "bpi-hotlist-cli")
        await driver.close()
        handle.close()
