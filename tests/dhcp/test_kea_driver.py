"""KeaDriver against an in-memory control channel: idempotent apply / remove, read back,
observe, lease release, serialised changes, failures that fail closed, the registry."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from enforcer.dhcp.kea_control import UnixKeaControl
from enforcer.domain.mac import Mac
from enforcer.domain.model import DeviceKind, Verdict
from enforcer.drivers.kea import KeaDriver
from enforcer.drivers.registry import DriverRegistry
from enforcer.errors import ConfigError, DeviceUnreachable, DriverError
from enforcer.inventory.model import Credentials, Device, Inventory
from enforcer.inventory.profiles import load_profiles
from enforcer.transport.base import Backoff, DeviceLimiter
from tests.dhcp.fake_kea import FakeKea

PROFILES = load_profiles(Path(__file__).resolve().parents[2] / "device_profiles")
CM = Mac("00:1d:cf:4a:12:7e")
CM2 = Mac("00:1d:cf:4a:12:7f")


def driver(kea: FakeKea) -> KeaDriver:
    async def no_sleep(_: float) -> None:
        return None
    lim = DeviceLimiter("kea-1", max_sessions=1, resets_per_minute=60,
                        backoff=Backoff(3, 0.01, 0.01), sleep=no_sleep)
    return KeaDriver("kea-1", PROFILES["kea-dhcp4"], limiter=lim, control=kea)


async def test_apply_is_idempotent_and_written() -> None:
    kea = FakeKea()
    drv = driver(kea)
    res = await drv.apply(CM, "dhcp-drop", kind=DeviceKind.CABLE_MODEM)
    assert not res.failed and res.changed, res.error
    assert kea.drop_test() == "pkt4.mac == 0x001dcf4a127e or relay4[2].hex == 0x001dcf4a127e"
    assert kea.calls == ["config-get", "config-test", "config-set", "config-write",
                         "config-get"]
    assert kea.written is not None and "hash" not in kea.written
    assert any("config-set DROP test:" in line for line in res.transcript)
    kea.calls.clear()
    again = await drv.apply(CM, "dhcp-drop", kind=DeviceKind.CABLE_MODEM)
    assert not again.failed and not again.changed
    assert kea.calls == ["config-get"]
    assert await drv.read_back(CM, "dhcp-drop")
    assert await drv.read_back(CM, "dhcp-drop-modem")
    assert not await drv.read_back(CM2, "dhcp-drop-modem")


async def test_remove_takes_only_this_macs_terms() -> None:
    kea = FakeKea()
    drv = driver(kea)
    for mac in (CM, CM2):
        assert not (await drv.apply(mac, "dhcp-drop", kind=DeviceKind.CABLE_MODEM)).failed
    res = await drv.remove(CM, "dhcp-drop")
    assert not res.failed and res.changed
    assert kea.drop_test() == "pkt4.mac == 0x001dcf4a127f or relay4[2].hex == 0x001dcf4a127f"
    assert not (await drv.remove(CM, "dhcp-drop")).changed
    assert (await drv.remove(CM2, "dhcp-drop")).changed
    assert kea.drop_test() is None  # no bans left: the class is gone


async def test_modem_only_mechanism_leaves_remote_ids_alone() -> None:
    kea = FakeKea()
    drv = driver(kea)
    assert not (await drv.apply(CM, "dhcp-drop-modem", kind=DeviceKind.CABLE_MODEM)).failed
    assert kea.drop_test() == "pkt4.mac == 0x001dcf4a127e"
    assert not await drv.read_back(CM, "dhcp-drop")


async def test_an_operators_drop_class_survives_ban_and_lift() -> None:
    theirs = {"name": "DROP", "test": "option[60].text == 'bad'"}
    kea = FakeKea(client_classes=[{"name": "cm", "test": "true"}, theirs])
    drv = driver(kea)
    await drv.apply(CM, "dhcp-drop-modem", kind=DeviceKind.CABLE_MODEM)
    assert kea.drop_test() == "(option[60].text == 'bad') or pkt4.mac == 0x001dcf4a127e"
    await drv.remove(CM, "dhcp-drop-modem")
    assert kea.dhcp4["client-classes"] == [{"name": "cm", "test": "true"}, theirs]


async def test_concurrent_bans_are_serialised_and_none_is_lost() -> None:
    kea = FakeKea(delay_s=0.001)
    drv = driver(kea)
    macs = [Mac(f"00:1d:cf:00:00:{i:02x}") for i in range(1, 21)]
    results = await asyncio.gather(*(drv.apply(m, "dhcp-drop-modem",
                                               kind=DeviceKind.CABLE_MODEM) for m in macs))
    assert all(not r.failed for r in results)
    assert kea.overlaps == 0
    assert (await drv.drop_set()).macs == set(macs)


async def test_a_refused_config_fails_closed() -> None:
    kea = FakeKea()
    kea.fail["config-set"] = "bad expression"
    res = await driver(kea).apply(CM, "dhcp-drop", kind=DeviceKind.CABLE_MODEM)
    assert res.failed and not res.changed and "bad expression" in (res.error or "")
    assert kea.drop_test() is None


async def test_an_unknown_mechanism_is_refused_without_contact() -> None:
    kea = FakeKea()
    with pytest.raises(DriverError, match="no mechanism"):
        await driver(kea).apply(CM, "nope", kind=DeviceKind.CABLE_MODEM)
    assert kea.calls == []


async def test_observe_blocked_forwarding_absent() -> None:
    kea = FakeKea()
    kea.leases[CM2.colon()] = [{"ip-address": "10.0.0.7", "state": 0}]
    drv = driver(kea)
    assert (await drv.observe(CM)).verdict is Verdict.ABSENT
    obs = await drv.observe(CM2)
    assert obs.verdict is Verdict.FORWARDING and obs.state == "leased 10.0.0.7"
    await drv.apply(CM, "dhcp-drop", kind=DeviceKind.CABLE_MODEM)
    obs = await drv.observe(CM)
    assert obs.verdict is Verdict.BLOCKED and obs.state == "DROP(mac, remote-id)"
    assert obs.blocks_present == {"dhcp-drop": True, "dhcp-drop-modem": True}
    assert set(await drv.sweep()) == {CM}


async def test_kick_releases_and_records_leases() -> None:
    kea = FakeKea()
    kea.leases[CM.colon()] = [{"ip-address": "10.0.0.9", "state": 0, "cltt": 1, "valid-lft": 2}]
    res = await driver(kea).kick(CM)
    assert not res.failed and res.changed
    assert res.transcript[0].startswith("lease 10.0.0.9") and kea.leases[CM.colon()] == []
    without = FakeKea(lease_cmds=False)
    res = await driver(without).kick(CM)
    assert not res.failed and not res.changed


async def test_unreachable_socket_is_retried_then_reported(tmp_path: Path) -> None:
    ctl = UnixKeaControl("kea-1", str(tmp_path / "missing.sock"), timeout_s=1)
    with pytest.raises(DeviceUnreachable):
        await ctl.call("list-commands")
    drv = driver(FakeKea())
    drv.control = ctl
    res = await drv.apply(CM, "dhcp-drop", kind=DeviceKind.CABLE_MODEM)
    assert res.failed and isinstance(res.exception, DeviceUnreachable)


def test_registry_builds_a_kea_driver_on_the_socket_path(tmp_path: Path) -> None:
    inv = Inventory(credentials={"none": Credentials()}, devices={
        "kea-1": Device(kind="dhcp", profile="kea-dhcp4", host="/run/kea/kea4-ctrl-socket",
                        credentials="none")})
    drv = DriverRegistry().build("kea-1", inv, PROFILES, snmp_engine=None,  # type: ignore[arg-type]
                                 state_dir=tmp_path)
    assert isinstance(drv, KeaDriver)
    assert isinstance(drv.control, UnixKeaControl)
    assert drv.control.path == "/run/kea/kea4-ctrl-socket"
    assert drv.mechanisms() == ["dhcp-drop", "dhcp-drop-modem"]
    with pytest.raises(ConfigError):
        KeaDriver("x", PROFILES["cisco-cbr8"], limiter=drv.limiter, socket_path="/x")
