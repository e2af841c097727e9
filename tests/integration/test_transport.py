"""Transport errors over the real protocols against the lab: each failure is the
error it is (enforcer/errors.py), never a timeout standing in for something else and
never an empty value."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from pydantic import SecretStr

from enforcer.domain.mac import Mac
from enforcer.domain.model import DeviceKind, Verdict
from enforcer.drivers import build_driver
from enforcer.drivers.transport_args import snmp_auth, ssh_login, ssh_terminal
from enforcer.errors import (
    CapacityError,
    CliCommandError,
    DeviceUnreachable,
    HostKeyError,
    SnmpAuthError,
    SnmpError,
    SnmpStatusError,
    SshError,
)
from enforcer.inventory.model import Inventory
from enforcer.inventory.profiles import SnmpTransportSpec, load_profiles
from enforcer.mib import oid
from enforcer.transport.base import Missing, SetVarbind, SnmpSession
from enforcer.transport.fastsnmp import FastSnmpClient
from enforcer.transport.hybrid import HybridSession
from enforcer.transport.params import Secret, SnmpAuth
from enforcer.transport.snmp import PysnmpSession, SnmpEngineHandle
from enforcer.transport.ssh import NetmikoSession, fetch_host_key
from lab.testing import LabHandle, running_lab

pytestmark = [pytest.mark.lab]
PROFILES = load_profiles(Path(__file__).resolve().parents[2] / "device_profiles")
SYS_DESCR = (1, 3, 6, 1, 2, 1, 1, 1, 0)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHandle]:
    with running_lab(state_dir=tmp_path_factory.mktemp("lab")) as handle:
        yield handle


async def snmp_session(lab: LabHandle, handle: SnmpEngineHandle, device: str, *,
                       port: int | None = None, timeout_s: float = 0.5) -> PysnmpSession:
    d = lab.inventory.devices[device]
    creds = lab.inventory.creds(device).snmp
    assert creds is not None
    return await PysnmpSession.open(handle, device, d.host, port or d.snmp_port,
                                    snmp_auth(creds),
                                    timeout_s=timeout_s, retries=1, max_repetitions=25)


async def test_snmp_values_missing_objects_and_error_status(lab: LabHandle) -> None:
    handle = SnmpEngineHandle()
    try:
        s = await snmp_session(lab, handle, "e6000-1")
        [(_, descr), (_, missing)] = await s.get([SYS_DESCR, (1, 3, 6, 1, 2, 1, 1, 77, 0)])
        assert isinstance(descr, bytes) and b"ARRIS" in descr
        assert missing is Missing.NO_SUCH_OBJECT
        with pytest.raises(SnmpStatusError) as e:  # sysDescr is read-only
            await s.set([SetVarbind(SYS_DESCR, "octets", b"x")])
        assert e.value.status == "notWritable"
        assert "snmp.set 1.3.6.1.2.1.1.1.0 -> notWritable" in str(e.value)
        assert str(e.value).startswith("e6000-1: ")
    finally:
        handle.close()


CTRL_MAC = (*oid("docsIf3CmtsCmCtrlCmdMacAddr"), 0)
CTRL_DISABLE = (*oid("docsIf3CmtsCmCtrlCmdDisableForwarding"), 0)
CTRL_COMMIT = (*oid("docsIf3CmtsCmCtrlCmdCommit"), 0)


def cm_ctrl(mac: str, disable: int) -> list[SetVarbind]:
    """docsIf3CmtsCmCtrl MacAddr + DisableForwarding + Commit=disableForwarding(3)."""
    return [SetVarbind(CTRL_MAC, "octets", Mac(mac).packed),
            SetVarbind(CTRL_DISABLE, "integer", disable),
            SetVarbind(CTRL_COMMIT, "integer", 3)]


async def writer(lab: LabHandle, handle: SnmpEngineHandle, device: str,
                 kind: str) -> SnmpSession:
    """The daemon's session for ``device``: SETs on the lean client or through pysnmp."""
    d = lab.inventory.devices[device]
    creds = lab.inventory.creds(device).snmp
    assert creds is not None
    lean = FastSnmpClient(d.host, d.snmp_port, snmp_auth(creds), device=device, timeout_s=0.5,
                          retries=1)
    return HybridSession(lean, await snmp_session(lab, handle, device)
                         if kind == "pysnmp" else None)


@pytest.mark.parametrize("kind", ["lean", "pysnmp"])
async def test_set_paths_agree_on_values_and_error_statuses(lab: LabHandle, kind: str) -> None:
    """Differential: the lean SET and pysnmp's SET against the same lab agents give the
    same answer varbinds, the same effect and the same error statuses."""
    handle = SnmpEngineHandle()
    mac = "00:1d:cf:50:00:11"  # on casa-1
    s = await writer(lab, handle, "casa-1", kind)
    cisco = await writer(lab, handle, "cbr8-1", kind)
    try:
        got = await s.set(cm_ctrl(mac, 1))
        assert got == [(CTRL_MAC, Mac(mac).packed), (CTRL_DISABLE, 1),
                       (CTRL_COMMIT, 3)]
        assert lab.truth(mac)["forwarding"] is False
        await s.set(cm_ctrl(mac, 2))
        assert lab.truth(mac)["forwarding"] is True
        with pytest.raises(SnmpStatusError) as e:  # sysDescr is read-only
            await s.set([SetVarbind(SYS_DESCR, "octets", b"x")])
        assert (e.value.status, e.value.oid) == ("notWritable", "1.3.6.1.2.1.1.1.0")
        assert str(e.value) == "casa-1: snmp.set 1.3.6.1.2.1.1.1.0 -> notWritable"
        reset_now = (*oid("cdxCmCpeResetNow"), 2, 0xEE, 0, 0, 0, 1)
        with pytest.raises(SnmpStatusError) as e:  # no such modem: no row to write
            await cisco.set([SetVarbind(reset_now, "integer", 1)])
        assert e.value.status == "noCreation"
    finally:
        await cisco.close()
        await s.close()
        handle.close()


@pytest.mark.parametrize(("device", "mac", "most"), [("cbr8-1", "00:1d:cf:4a:12:7e", 9),
                                                     ("casa-1", "00:1d:cf:50:00:11", 7)])
async def test_an_order_costs_few_snmp_requests(lab: LabHandle, tmp_path: Path, device: str,
                                                mac: str, most: int) -> None:
    """Push gently: what one ban asks of a CMTS with its rows cached (the engine's look,
    the CM-CTRL apply with its read-backs, the confirming look). Before cached rows were
    re-checked in the values' GET and read-backs reused observe's values: 17 (Cisco) and
    15 (Casa)."""
    handle = SnmpEngineHandle()
    driver = build_driver(device, lab.inventory, PROFILES, snmp_engine=handle,
                          state_dir=tmp_path)
    m = Mac(mac)
    try:
        await driver.observe(m)  # learns the DOCS-IF3 row
        stats = (await cast(Any, driver)._snmp()).session.reader.stats
        before = stats["requests"] - stats["retransmits"]
        await driver.observe(m)
        applied = await driver.apply(m, "cm-ctrl-disable-forwarding",
                                     kind=DeviceKind.CABLE_MODEM)
        assert (applied.changed, applied.failed) == (True, False), applied.error
        assert (await driver.observe(m)).verdict is Verdict.BLOCKED
        assert stats["requests"] - stats["retransmits"] - before <= most
    finally:
        await driver.remove(m, "cm-ctrl-disable-forwarding")
        await driver.close()
        handle.close()


async def test_lean_set_over_v2c_needs_allow_v2c_writes() -> None:
    creds = SnmpAuth(version="2c", community=Secret("lab-ro"), allow_v2c=True)
    lean = FastSnmpClient("127.0.0.1", 9, creds, device="dut", timeout_s=0.1, retries=0)
    with pytest.raises(SnmpError, match="allow_v2c_writes"):  # refused before sending
        await HybridSession(lean).set([SetVarbind(SYS_DESCR, "octets", b"x")])
    await lean.close()


async def test_wrong_snmp_credentials_are_an_auth_error_not_a_timeout(lab: LabHandle) -> None:
    handle = SnmpEngineHandle()
    lab.fault("casa-1", wrong_credentials=True)
    try:
        s = await snmp_session(lab, handle, "casa-1", timeout_s=2.0)
        start = time.monotonic()
        with pytest.raises(SnmpAuthError, match="wrong digest") as e:
            await s.get([SYS_DESCR])
        assert time.monotonic() - start < 2.0  # answered by a report, not timed out
        secrets = lab.inventory.creds("casa-1").snmp
        assert secrets is not None and secrets.auth_password is not None
        assert secrets.auth_password.get_secret_value() not in str(e.value)
    finally:
        lab.clear_faults("casa-1")
        handle.close()


async def test_unreachable_snmp_is_device_unreachable(lab: LabHandle) -> None:
    handle = SnmpEngineHandle()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:  # a port nobody serves
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    try:
        s = await snmp_session(lab, handle, "casa-1", port=closed_port, timeout_s=0.2)
        with pytest.raises(DeviceUnreachable, match="no SNMP answer"):
            await s.get([SYS_DESCR])
        lab.fault("generic-1", unreachable=True)
        generic = PROFILES["docsis3-generic"]
        quick = generic.model_copy(update={
            "transports": generic.transports.model_copy(update={
                "snmp": SnmpTransportSpec(timeout_s=0.2, retries=0)}),
            "limits": generic.limits.model_copy(update={"backoff_base_s": 0.01})})
        driver = build_driver("generic-1", lab.inventory, {**PROFILES, "docsis3-generic": quick},
                              snmp_engine=handle, state_dir=Path(lab.state_dir))
        with pytest.raises(DeviceUnreachable):
            await driver.observe(Mac("00:1d:cf:50:00:21"))
        r = await driver.apply(Mac("00:1d:cf:50:00:21"), "cm-ctrl-disable-forwarding",
                               kind=DeviceKind.CABLE_MODEM)
        assert r.failed and isinstance(r.exception, DeviceUnreachable)
    finally:
        lab.clear_faults("generic-1")
        handle.close()


async def test_full_deny_list_raises_capacity_error(lab: LabHandle, tmp_path: Path) -> None:
    handle = SnmpEngineHandle()
    deny = oid("cadCmDenyRowStatus")
    fillers = [(2, 0xEE, 0, 0, i // 256, i % 256) for i in range(100)]
    s = await snmp_session(lab, handle, "e6000-1")
    driver = build_driver("e6000-1", lab.inventory, PROFILES, snmp_engine=handle,
                          state_dir=tmp_path)
    try:
        for row in fillers:
            await s.set([SetVarbind(deny + row, "integer", 4)])
        with pytest.raises(CapacityError, match="full \\(100 of 100\\)"):
            await driver.apply(Mac("00:1d:cf:50:00:01"), "deny-list",
                               kind=DeviceKind.CABLE_MODEM)
        assert lab.truth("00:1d:cf:50:00:01")["forwarding"]
    finally:
        for row in fillers:
            await s.set([SetVarbind(deny + row, "integer", 6)])
        await driver.close()
        handle.close()


def with_host_key(lab: LabHandle, device: str, key: str | None) -> Inventory:
    inv = lab.inventory
    dev = inv.devices[device].model_copy(update={"host_key": key})
    return inv.model_copy(update={"devices": {**inv.devices, device: dev}})


async def test_fetch_host_key_matches_the_pinned_key(lab: LabHandle) -> None:
    d = lab.inventory.devices["cbr8-1"]
    line, fp = fetch_host_key(d.host, d.ssh_port)
    assert d.host_key is not None and line.split()[:2] == d.host_key.split()[:2]
    assert fp.startswith("SHA256:") and len(fp) == 7 + 43


async def test_changed_or_unpinned_host_key_is_refused(lab: LabHandle, tmp_path: Path) -> None:
    handle = SnmpEngineHandle()
    mac = Mac("00:1d:cf:4a:12:7e")
    try:
        inv = with_host_key(lab, "cbr8-1", None)
        driver = build_driver("cbr8-1", inv, PROFILES, snmp_engine=handle, state_dir=tmp_path)
        with pytest.raises(HostKeyError, match="no pinned host key; the device presents "
                           "SHA256:"):
            await driver.read_back(mac, "bpi-hotlist-cli")
        old = lab.inventory.devices["cbr8-1"].host_key
        rotated = lab.rotate_host_key("cbr8-1")
        driver = build_driver("cbr8-1", with_host_key(lab, "cbr8-1", old), PROFILES,
                              snmp_engine=handle, state_dir=tmp_path)
        r = await driver.apply(mac, "bpi-hotlist-cli", kind=DeviceKind.CABLE_MODEM)
        assert r.failed and isinstance(r.exception, HostKeyError)
        assert rotated["fingerprint"] in str(r.exception)
        assert "cbr8-1" in str(r.exception) and "not accepted" in str(r.exception)
        pinned = with_host_key(lab, "cbr8-1", rotated["host_key"])
        driver = build_driver("cbr8-1", pinned, PROFILES, snmp_engine=handle,
                              state_dir=tmp_path)
        assert await driver.read_back(mac, "bpi-hotlist-cli") is False
        await driver.close()
    finally:
        handle.close()


async def test_cli_error_output_is_a_command_error(lab: LabHandle, tmp_path: Path) -> None:
    d = lab.inventory.devices["e6000-1"]
    creds = lab.inventory.creds("e6000-1").ssh
    spec = PROFILES["arris-e6000"].transports.ssh
    assert creds is not None and spec is not None
    s = await NetmikoSession.open("e6000-1", d.host, d.ssh_port, ssh_login(creds),
                                  ssh_terminal(spec),
                                  host_key=d.host_key, known_hosts=tmp_path / "kh")
    try:
        with pytest.raises(CliCommandError, match="Error: Bad command"):
            await s.send_command("show cable bogus")
        lab.fault("e6000-1", cli_error="deny")
        with pytest.raises(CliCommandError):
            await s.send_command("configure cable modem deny 001d.cf50.0001")
        assert "ARRIS" in await s.send_command("show version")  # others still answer
    finally:
        lab.clear_faults("e6000-1")
        await s.close()


@pytest.mark.parametrize(("device", "command", "refusal"), [
    ("e6000-1", "show cable bogus", "Error: Bad command"),
    ("e6000-1", "show cable", "Error: Missing parameter"),
    ("e6000-1", "c", "Error: Ambiguous parameter"),
    ("cbr8-1", "show cable bogus", "% Invalid input detected at '^' marker."),
    ("cbr8-1", "show cable", "% Incomplete command."),
    ("cbr8-1", "c", '% Ambiguous command:  "c"'),
    ("casa-1", "show cable bogus", "% Invalid input detected at '^' marker."),
    ("casa-1", "show cable", "% Incomplete command."),
    ("casa-1", "c", '% Ambiguous command:  "c"'),
])
async def test_every_refusal_the_lab_gives_is_a_command_error(
        lab: LabHandle, tmp_path: Path, device: str, command: str, refusal: str) -> None:
    """Each refusal form a dialect answers, over a real netmiko session with the
    profile's error patterns, raises CliCommandError quoting the device's line."""
    d = lab.inventory.devices[device]
    creds = lab.inventory.creds(device).ssh
    spec = PROFILES[d.profile].transports.ssh
    assert creds is not None and spec is not None
    # The key the device presents now: the host-key test in this module may have rotated
    # it (pinning itself is tested there).
    key, _ = fetch_host_key(d.host, d.ssh_port)
    s = await NetmikoSession.open(device, d.host, d.ssh_port, ssh_login(creds),
                                  ssh_terminal(spec),
                                  host_key=key, known_hosts=tmp_path / "kh")
    try:
        with pytest.raises(CliCommandError) as e:
            await s.send_command(command)
        assert str(e.value).endswith(refusal), str(e.value)
    finally:
        await s.close()


async def test_ssh_auth_failure_and_unreachable(lab: LabHandle, tmp_path: Path) -> None:
    d = lab.inventory.devices["casa-1"]
    creds = lab.inventory.creds("casa-1").ssh
    spec = PROFILES["casa-c100g"].transports.ssh
    assert creds is not None and spec is not None
    wrong = creds.model_copy(update={"password": SecretStr("not-the-password")})
    with pytest.raises(SshError, match="authentication failed") as e:
        await NetmikoSession.open("casa-1", d.host, d.ssh_port, ssh_login(wrong),
                                  ssh_terminal(spec),
                                  host_key=d.host_key, known_hosts=tmp_path / "kh")
    assert not isinstance(e.value, HostKeyError)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    with pytest.raises(DeviceUnreachable):
        await NetmikoSession.open("casa-1", d.host, free, ssh_login(creds), ssh_terminal(spec),
                                  host_key=d.host_key, known_hosts=tmp_path / "kh2")
