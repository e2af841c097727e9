"""Drivers against recording fakes: what each profile renders and sends, fail-closed
results, secrets scrubbed, retries with full jitter and the reset budget on a fake
clock, capacity errors."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from pathlib import Path

import pytest
from pydantic import SecretStr

from enforcer.domain.mac import Mac
from enforcer.domain.model import DeviceKind, Verdict
from enforcer.drivers import HeadendDriver, ProfileDriver, build_driver
from enforcer.drivers.fakes import FakeCli, FakeSnmp
from enforcer.drivers.render import Scrubber
from enforcer.drivers.transport_args import snmp_auth
from enforcer.errors import (
    CapacityError,
    CliCommandError,
    DeviceUnreachable,
    DriverError,
    SnmpAuthError,
)
from enforcer.inventory.model import (
    Credentials,
    Device,
    Inventory,
    SnmpCredentials,
    SshCredentials,
)
from enforcer.inventory.profiles import load_profiles
from enforcer.mib import dotted, oid
from enforcer.transport.base import Backoff, DeviceLimiter, Missing, SetVarbind, SnmpValue
from enforcer.transport.snmp import PysnmpSession, SnmpEngineHandle

PROFILES = load_profiles(Path(__file__).resolve().parents[2] / "device_profiles")
MAC = Mac("00:1d:cf:4a:12:7e")
IDX, REG, IFX = 7, 0x20000001, 1001
CERT = b"\x30\x82" + b"c" * 300
SECRET = "s3cret-Passw0rd"

PTR = oid("docsIfCmtsCmPtr") + MAC.oid_index
CDX = (*oid("cdxCmtsCmStatusValue"), IDX)
DOCSIF = (*oid("docsIfCmtsCmStatusValue"), IDX)
IF3_MAC = (*oid("docsIf3CmtsCmRegStatusMacAddr"), REG)
IF3_STATE = (*oid("docsIf3CmtsCmRegStatusValue"), REG)
IF3_MDIF = (*oid("docsIf3CmtsCmRegStatusMdIfIndex"), REG)
AUTH_CERT = (*oid("docsBpi2CmtsAuthBpkmCmCert"), IFX, *MAC.oid_index)
CTRL_MAC = (*oid("docsIf3CmtsCmCtrlCmdMacAddr"), 0)
CTRL_DISABLE = (*oid("docsIf3CmtsCmCtrlCmdDisableForwarding"), 0)
CTRL_COMMIT = (*oid("docsIf3CmtsCmCtrlCmdCommit"), 0)
PROV = oid("docsBpi2CmtsProvisionedCmCertEntry")
PROV_TRUST, PROV_STATUS, PROV_CERT = (oid(f"docsBpi2CmtsProvisionedCmCert{c}")[-1]
                                      for c in ("Trust", "Status", ""))
DENY = oid("cadCmDenyRowStatus")
CAD = oid("cadIfCmtsCmStatusValue")


class Clock:
    """A fake monotonic clock whose sleep advances it and records the pause."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


def registered_cmts() -> FakeSnmp:
    """One online BPI+ modem as a cBR-8 lists it; CM-CTRL commits change its state."""
    fake = FakeSnmp(values={PTR: IDX, CDX: 12, DOCSIF: 8, IF3_MAC: MAC.packed, IF3_STATE: 8,
                            IF3_MDIF: IFX, AUTH_CERT: CERT})

    def on_set(f: FakeSnmp, vbs: list[SetVarbind]) -> None:
        sent = {v.oid: v.value for v in vbs}
        if sent.get(CTRL_COMMIT) == 3 and sent.get(CTRL_MAC) == MAC.packed:
            off = sent.get(CTRL_DISABLE) == 1
            f.values[IF3_STATE], f.values[CDX] = (17, 5) if off else (8, 12)
        for o, value in sent.items():
            if o[:len(PROV)] == PROV and o[len(PROV)] == PROV_STATUS:
                row = o[len(PROV) + 1:]
                if value == 6:
                    for col in (PROV_TRUST, PROV_STATUS, PROV_CERT):
                        f.values.pop((*PROV, col, *row), None)
                else:
                    f.values[(*PROV, PROV_STATUS, *row)] = 1
                    f.values[(*PROV, PROV_TRUST, *row)] = sent.get((*PROV, PROV_TRUST, *row), 2)
                    f.values[(*PROV, PROV_CERT, *row)] = sent.get((*PROV, PROV_CERT, *row), b"")
    fake.on_set = on_set
    return fake


def make(profile: str, *, snmp: FakeSnmp | None = None, cli: FakeCli | None = None,
         clock: Clock | None = None, limiter: DeviceLimiter | None = None,
         cls: type[ProfileDriver] = ProfileDriver) -> ProfileDriver:
    clock = clock or Clock()
    lim = limiter or DeviceLimiter("dev1", max_sessions=2, resets_per_minute=60, clock=clock,
                                   sleep=clock.sleep, rng=random.Random(7))

    async def snmp_factory() -> FakeSnmp:
        assert snmp is not None
        return snmp

    async def cli_factory() -> FakeCli:
        assert cli is not None
        return cli
    return cls("dev1", PROFILES[profile], limiter=lim,
               snmp=snmp_factory if snmp else None, cli=cli_factory if cli else None,
               scrub=Scrubber([SECRET]))


async def test_cm_ctrl_renders_one_pdu_commit_last_and_is_idempotent() -> None:
    fake = registered_cmts()
    d = make("cisco-cbr8", snmp=fake)
    r = await d.apply(MAC, "cm-ctrl-disable-forwarding", kind=DeviceKind.CABLE_MODEM)
    assert (r.changed, r.failed, r.error) == (True, False, None)
    assert fake.sets == [[SetVarbind(CTRL_MAC, "octets", MAC.packed),
                          SetVarbind(CTRL_DISABLE, "integer", 1),
                          SetVarbind(CTRL_COMMIT, "integer", 3)]]
    assert (f"SET {dotted('docsIf3CmtsCmCtrlCmdMacAddr')}.0 = 0x001dcf4a127e, "
            f"{dotted('docsIf3CmtsCmCtrlCmdDisableForwarding')}.0 = 1, "
            f"{dotted('docsIf3CmtsCmCtrlCmdCommit')}.0 = 3 -> noError") in r.transcript
    again = await d.apply(MAC, "cm-ctrl-disable-forwarding", kind=DeviceKind.CABLE_MODEM)
    assert (again.changed, again.failed) == (False, False)
    assert len(fake.sets) == 1  # nothing that changes state was sent
    obs = await d.observe(MAC)
    assert obs.verdict is Verdict.BLOCKED and obs.state == "onlineNetAccessDisabled(5)"
    assert obs.detail["docsIf3CmtsCmRegStatusValue"] == "forwardingDisabled(17)"
    assert obs.blocks_present["cm-ctrl-disable-forwarding"] is True
    removed = await d.remove(MAC, "cm-ctrl-disable-forwarding")
    assert (removed.changed, removed.failed) == (True, False)
    assert fake.sets[-1][1] == SetVarbind(CTRL_DISABLE, "integer", 2)


async def test_push_fails_closed_when_the_read_back_disagrees() -> None:
    fake = registered_cmts()
    fake.on_set = lambda f, vbs: None  # the device says noError but nothing changes
    r = await make("casa-c100g", snmp=fake).apply(MAC, "cm-ctrl-disable-forwarding",
                                                  kind=DeviceKind.CABLE_MODEM)
    assert r.failed and not r.changed
    assert r.error is not None and "read back says absent" in r.error


async def test_hotlist_cert_reads_the_modem_cert_then_creates_the_row_in_cisco_order() -> None:
    fake = registered_cmts()
    d = make("docsis3-generic", snmp=fake)
    r = await d.apply(MAC, "bpi-hotlist-cert", kind=DeviceKind.CABLE_MODEM)
    assert (r.changed, r.failed) == (True, False), r.error
    row = MAC.oid_index
    assert fake.sets == [[SetVarbind((*PROV, PROV_STATUS, *row), "integer", 4),
                          SetVarbind((*PROV, PROV_CERT, *row), "octets", CERT),
                          SetVarbind((*PROV, PROV_TRUST, *row), "integer", 2)]]
    cert = dotted("docsBpi2CmtsAuthBpkmCmCert")
    assert any(line.startswith(f"GET {cert}.1001.0.29.207.74.18.126 -> <302 octets")
               for line in r.transcript)
    assert await d.read_back(MAC, "bpi-hotlist-cert")
    gone = await d.remove(MAC, "bpi-hotlist-cert")
    assert (gone.changed, gone.failed) == (True, False)
    assert fake.sets[-1] == [SetVarbind((*PROV, PROV_STATUS, *row), "integer", 6)]


async def test_hotlist_needs_bpi_plus() -> None:
    fake = registered_cmts()
    del fake.values[AUTH_CERT]  # no BPI+ authorisation row: not a BPI+ modem
    r = await make("docsis3-generic", snmp=fake).apply(MAC, "bpi-hotlist-cert",
                                                       kind=DeviceKind.CABLE_MODEM)
    assert r.failed and r.error is not None and "needs bpi_plus" in r.error
    assert fake.sets == []


async def test_deny_list_capacity_comes_from_the_profile() -> None:
    fake = FakeSnmp(values={(*DENY, 2, 0, 0, 0, 0, i): 1 for i in range(100)})
    with pytest.raises(CapacityError, match="full \\(100 of 100\\)"):
        await make("arris-e6000", snmp=fake).apply(MAC, "deny-list",
                                                   kind=DeviceKind.CABLE_MODEM)
    assert fake.sets == []


async def test_a_full_table_is_not_recounted_until_an_entry_is_removed() -> None:
    fake = FakeSnmp(values={(*DENY, 2, 0, 0, 0, 0, i): 1 for i in range(100)})
    d = make("arris-e6000", snmp=fake)
    for _ in range(3):
        with pytest.raises(CapacityError, match="full"):
            await d.apply(MAC, "deny-list", kind=DeviceKind.CABLE_MODEM)
    assert [op for op, _ in fake.calls].count("walk") == 1  # counted once, then known
    # This driver removes an entry: there is room again, so the next ban counts anew.
    victim = Mac("02:00:00:00:00:07")
    removed = await d.remove(victim, "deny-list")
    assert (removed.changed, removed.failed) == (True, False), removed.error
    walks = [op for op, _ in fake.calls].count("walk")
    with pytest.raises(CapacityError):  # the fake keeps the row: still 100
        await d.apply(MAC, "deny-list", kind=DeviceKind.CABLE_MODEM)
    assert [op for op, _ in fake.calls].count("walk") == walks + 1


async def test_resource_unavailable_on_the_set_is_capacity_too() -> None:
    fake = FakeSnmp(set_errors={DENY + MAC.oid_index: "resourceUnavailable"})
    with pytest.raises(CapacityError):
        await make("arris-e6000", snmp=fake).apply(MAC, "deny-list",
                                                   kind=DeviceKind.CABLE_MODEM)


async def test_cli_deny_full_is_capacity() -> None:
    def on_command(c: FakeCli, line: str) -> str | None:
        if line.startswith("configure"):
            raise CliCommandError("device rejected 'configure cable modem deny ...': "
                                  "Error: cable modem deny list is full (100 entries)")
        return None
    cli = FakeCli(on_command=on_command)
    cli.responses["show cable modem deny"] = ("Deny list entries: 100 of 100\n"
                                              "MAC Address     Denied Attempts")
    with pytest.raises(CapacityError):
        await make("arris-e6000", cli=cli).apply(MAC, "deny-list-cli",
                                                 kind=DeviceKind.CABLE_MODEM)


async def test_kick_renders_the_vendor_object_and_treats_unlisted_as_nothing_to_do() -> None:
    fake = registered_cmts()
    d = make("cisco-cbr8", snmp=fake)
    r = await d.kick(MAC)
    assert (r.changed, r.failed) == (True, False)
    assert fake.sets[-1] == [SetVarbind(oid("cdxCmCpeResetNow")
                                        + MAC.oid_index, "integer", 1)]
    fake.set_errors[fake.sets[-1][0].oid] = "noCreation"
    r = await d.kick(MAC)
    assert (r.changed, r.failed) == (False, False)
    assert "not listed" in r.transcript[-1]


async def test_kick_is_rate_limited_per_device_on_a_fake_clock() -> None:
    clock = Clock()
    lim = DeviceLimiter("dev1", max_sessions=1, resets_per_minute=6, clock=clock,
                        sleep=clock.sleep)
    fake = FakeSnmp()
    d = make("arris-e6000", snmp=fake, clock=clock, limiter=lim)
    first = await d.kick(MAC)
    second = await d.kick(MAC)
    assert not first.failed and not second.failed
    assert clock.sleeps == [pytest.approx(10.0)]  # 6 per minute: one every 10 s
    assert second.transcript[0] == "waited 10.00s for the reset budget"
    assert len(fake.sets) == 2


async def test_retries_use_exponential_backoff_with_full_jitter() -> None:
    clock = Clock()
    rng = random.Random(42)
    lim = DeviceLimiter("dev1", max_sessions=1, resets_per_minute=60, clock=clock,
                        sleep=clock.sleep, rng=rng, backoff=Backoff(4, 0.5, 1.5))
    fake = registered_cmts()
    fake.fail = [DeviceUnreachable("timeout", device="dev1")] * 3
    r = await make("casa-c100g", snmp=fake, limiter=lim).apply(
        MAC, "cm-ctrl-disable-forwarding", kind=DeviceKind.CABLE_MODEM)
    assert not r.failed
    expect = random.Random(42)
    assert clock.sleeps == [expect.uniform(0, 0.5), expect.uniform(0, 1.0),
                            expect.uniform(0, 1.5)]  # capped at 1.5


async def test_retries_give_up_and_non_transient_errors_are_not_retried() -> None:
    clock = Clock()
    fake = registered_cmts()
    fake.fail = [DeviceUnreachable("timeout", device="dev1")] * 5
    d = make("casa-c100g", snmp=fake, clock=clock)
    r = await d.apply(MAC, "cm-ctrl-disable-forwarding", kind=DeviceKind.CABLE_MODEM)
    assert r.failed and isinstance(r.exception, DeviceUnreachable)
    assert len(clock.sleeps) == 2  # three attempts (profile retry_attempts)
    fake.fail = [SnmpAuthError("wrong digest", device="dev1")]
    calls = len(fake.calls)
    r = await d.apply(MAC, "cm-ctrl-disable-forwarding", kind=DeviceKind.CABLE_MODEM)
    assert isinstance(r.exception, SnmpAuthError) and len(fake.calls) == calls + 1


async def test_read_back_and_observe_raise_instead_of_guessing() -> None:
    fake = registered_cmts()
    fake.fail = [DeviceUnreachable("timeout", device="dev1")] * 3
    with pytest.raises(DeviceUnreachable):
        await make("casa-c100g", snmp=fake).read_back(MAC, "cm-ctrl-disable-forwarding")


async def test_unknown_mac_is_absent_and_walk_cache_is_rechecked() -> None:
    fake = registered_cmts()
    d = make("casa-c100g", snmp=fake)
    assert (await d.observe(MAC)).verdict is Verdict.FORWARDING
    # With the row cached: one GET reads every source and re-checks the cached row (plus
    # the DOCS-IF pointer GET); the CM-CTRL read-back reuses the DOCS-IF3 value just read.
    before = len(fake.calls)
    obs = await d.observe(MAC)
    assert obs.blocks_present == {"cm-ctrl-disable-forwarding": False}
    gets = [oids for op, oids in fake.calls[before:] if op == "get"]
    assert len(fake.calls) - before == len(gets) == 2, fake.calls[before:]
    assert IF3_MAC in gets[-1]
    # the modem re-registers under a new DOCS-IF3 id: the cached row no longer matches
    fake.values[IF3_MAC] = b"\x02" * 6
    new = (*oid("docsIf3CmtsCmRegStatusMacAddr"), REG + 1)
    fake.values[new] = MAC.packed
    fake.values[(*oid("docsIf3CmtsCmRegStatusValue"), REG + 1)] = 17
    obs = await d.observe(MAC)
    assert obs.detail["docsIf3CmtsCmRegStatusValue"] == "forwardingDisabled(17)"
    other = Mac("00:1d:cf:00:00:01")
    obs = await d.observe(other)
    assert obs.verdict is Verdict.ABSENT and obs.state == "noSuchInstance"


async def test_arris_deny_hides_the_modem_and_sweep_lists_vendor_states() -> None:
    fake = FakeSnmp(values={DENY + MAC.oid_index: 1, (*CAD, 2, 0, 0, 0, 0, 1): 8,
                            (*CAD, 2, 0, 0, 0, 0, 2): 20})
    d = make("arris-e6000", snmp=fake)
    obs = await d.observe(MAC)
    assert obs.verdict is Verdict.ABSENT and obs.blocks_present["deny-list"] is True
    swept = await d.sweep()
    assert {str(m): (o.verdict, o.state) for m, o in swept.items()} == {
        "02:00:00:00:00:01": (Verdict.FORWARDING, "operational(8)"),
        "02:00:00:00:00:02": (Verdict.BLOCKED, "netAccessDisabled(20)")}


HOTLIST_READ = "show running-config | include ^hostname|^cable privacy hotlist cm"


async def test_cli_hotlist_sends_config_and_scrubs_secrets() -> None:
    config: list[str] = []

    def on_config(c: FakeCli, lines: list[str]) -> str:
        for line in lines:
            if line.startswith("no "):
                config.remove(line[3:])
            else:
                config.append(line)
        return f"enable {SECRET}"  # a device echoing a secret must not leak it
    cli = FakeCli(on_config=on_config)
    # The profile reads back through IOS "| include": the hostname line and hotlist lines.
    cli.responses[HOTLIST_READ] = lambda c: "\n".join(
        line for line in ["hostname cbr8-1", f"username enforcer password {SECRET}", *config]
        if re.search(HOTLIST_READ.split(" | include ")[1], line)) + f"\n{SECRET}"
    d = make("cisco-cbr8", cli=cli)
    r = await d.apply(MAC, "bpi-hotlist-cli", kind=DeviceKind.CABLE_MODEM)
    assert (r.changed, r.failed) == (True, False), r.error
    assert cli.configs == [["cable privacy hotlist cm 001d.cf4a.127e"]]
    text = "\n".join(r.transcript)
    assert SECRET not in text and "<secret>" in text
    r = await d.remove(MAC, "bpi-hotlist-cli")
    assert (r.changed, r.failed) == (True, False), r.error
    assert cli.configs[-1] == ["no cable privacy hotlist cm 001d.cf4a.127e"]


SHOW_DHCT = """MAC: 00:02:DE:4A:11:92
eCM MAC: 00:02:DE:4A:11:93
Account: ACC-40417
Packages: {packages}
DigitalService: {dms}
ServiceDisconnect: no
Decoding: {decoding}"""


async def test_headend_removes_sda_and_dms_and_reports_the_ecm_mac() -> None:
    box = {"packages": "BASIC,HD,SDA", "dms": "enabled", "decoding": "yes"}

    def on_command(c: FakeCli, line: str) -> str | None:
        if line == "modDhctCfg -pSDA -dms 00:02:DE:4A:11:92":
            box.update(packages="BASIC,HD", dms="disabled", decoding="no")
            return "modDhctCfg: transaction 1 OK for DHCT 00:02:DE:4A:11:92: ..."
        if line == "modDhctCfg +pSDA +dms 00:02:DE:4A:11:92":
            box.update(packages="BASIC,HD,SDA", dms="enabled", decoding="yes")
            return "modDhctCfg: transaction 2 OK"
        if line == "showDhct 00:02:DE:4A:11:92":
            return SHOW_DHCT.format(**box)
        return "showDhct: ERROR DHCT 00:02:DE:00:00:01 not found"
    cli = FakeCli(on_command=on_command)
    d = make("dncs-headend", cli=cli, cls=HeadendDriver)
    assert isinstance(d, HeadendDriver)
    stb = Mac("00:02:de:4a:11:92")
    refused = await d.apply(stb, "service-disconnect", kind=DeviceKind.CABLE_MODEM)
    assert refused.failed and cli.commands == []
    r = await d.apply(stb, "service-disconnect", kind=DeviceKind.SET_TOP)
    assert (r.changed, r.failed) == (True, False), r.error
    obs = await d.observe(stb)
    assert (obs.verdict, obs.state) == (Verdict.BLOCKED, "Decoding: no")
    assert obs.blocks_present == {"service-disconnect": True}
    assert await d.ecm_mac(stb) == Mac("00:02:de:4a:11:93")
    assert (await d.observe(Mac("00:02:de:00:00:01"))).verdict is Verdict.ABSENT
    r = await d.remove(stb, "service-disconnect")
    assert (r.changed, r.failed) == (True, False)
    assert (await d.observe(stb)).verdict is Verdict.FORWARDING


async def test_v2c_writes_are_refused_before_anything_is_sent() -> None:
    handle = SnmpEngineHandle()
    creds = snmp_auth(SnmpCredentials(version="2c", community=SecretStr("public-ro"),
                                      allow_v2c=True))
    s = await PysnmpSession.open(handle, "dev1", "127.0.0.1", 9, creds, timeout_s=0.1,
                                 retries=0, max_repetitions=10)
    with pytest.raises(Exception, match="allow_v2c_writes") as e:
        await s.set([SetVarbind((1, 3, 6, 1, 2, 1, 1, 5, 0), "octets", b"x")])
    assert "public-ro" not in str(e.value)
    handle.close()


def test_build_driver_picks_the_class_by_profile_kind(tmp_path: Path) -> None:
    creds = Credentials(
        snmp=SnmpCredentials(user="enforcer", auth_password=SecretStr("a" * 12),
                             priv_password=SecretStr("p" * 12)),
        ssh=SshCredentials(username="enforcer", password=SecretStr(SECRET)))
    inv = Inventory(credentials={"c": creds}, devices={
        "cbr8-1": Device(kind="cmts", profile="cisco-cbr8", host="127.0.0.1", credentials="c"),
        "dncs-1": Device(kind="headend", profile="dncs-headend", host="127.0.0.1",
                         credentials="c")})
    handle = SnmpEngineHandle()
    cmts = build_driver("cbr8-1", inv, PROFILES, snmp_engine=handle, state_dir=tmp_path)
    head = build_driver("dncs-1", inv, PROFILES, snmp_engine=handle, state_dir=tmp_path)
    assert type(cmts) is ProfileDriver and isinstance(head, HeadendDriver)
    assert cmts.mechanisms() == ["cm-ctrl-disable-forwarding", "bpi-hotlist-cli",
                                 "bpi-hotlist-cert"]
    handle.close()



class ColumnsSnmp(FakeSnmp):
    """A FakeSnmp that also walks several columns in one request stream (as the lean
    client's HybridSession does), recording each such walk."""

    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.column_walks: list[tuple[tuple[int, ...], ...]] = []

    async def walk_columns(self, columns: list[tuple[int, ...]]
                           ) -> dict[tuple[int, ...], list[tuple[tuple[int, ...], int, object]]]:
        self.column_walks.append(tuple(columns))
        out: dict[tuple[int, ...], list[tuple[tuple[int, ...], int, object]]] = {}
        for c in columns:
            out[c] = [(k[len(c):], 0, v) for k, v in sorted(self.values.items())
                      if k[:len(c)] == c and len(k) > len(c)]
        return out


async def test_a_multi_column_sweep_is_one_walk_on_a_session_that_walks_columns() -> None:
    """The DOCS-IF3 sweep reads the MAC column and the state columns: through a session
    that can walk columns together, that is one walk of all of them, never one
    ``bulk_walk`` per column."""
    fake = ColumnsSnmp(values={IF3_MAC: MAC.packed, IF3_STATE: 8, IF3_MDIF: IFX})
    d = make("cisco-cbr8", snmp=fake)
    swept = await d.sweep()
    assert swept[MAC].verdict is Verdict.FORWARDING
    assert len(fake.column_walks) == 1 and len(fake.column_walks[0]) >= 2
    assert not [c for c in fake.calls if c[0] == "walk"]


async def test_a_session_without_column_walks_walks_each_column() -> None:
    fake = FakeSnmp(values={IF3_MAC: MAC.packed, IF3_STATE: 8, IF3_MDIF: IFX})
    d = make("cisco-cbr8", snmp=fake)
    swept = await d.sweep()
    assert swept[MAC].verdict is Verdict.FORWARDING
    assert len([c for c in fake.calls if c[0] == "walk"]) >= 2


def test_the_lean_session_walks_columns_in_one_stream() -> None:
    from enforcer.drivers.snmp_state import ColumnWalker
    from enforcer.transport.hybrid import HybridSession

    assert issubclass(HybridSession, ColumnWalker)
    assert not issubclass(FakeSnmp, ColumnWalker)


def generic_table() -> dict[tuple[int, ...], SnmpValue]:
    """Four modems as a docsis3-generic CMTS lists them in DOCS-IF3 (reg status) and
    DOCS-IF (status): CM-CTRL-blocked, forwarding, only DOCS-IF operational (DOCS-IF3
    says other(1)), and an unmapped DOCS-IF3 value."""
    rows = {Mac("00:1d:cf:00:00:01"): (17, 8), Mac("00:1d:cf:00:00:02"): (8, 8),
            Mac("00:1d:cf:00:00:03"): (1, 8), Mac("00:1d:cf:00:00:04"): (99, 2)}
    out: dict[tuple[int, ...], SnmpValue] = {}
    for i, (mac, (if3, docsif)) in enumerate(rows.items(), start=1):
        out[(*oid("docsIf3CmtsCmRegStatusMacAddr"), 100 + i)] = mac.packed
        out[(*oid("docsIf3CmtsCmRegStatusValue"), 100 + i)] = if3
        out[(*oid("docsIfCmtsCmStatusMacAddress"), i)] = mac.packed
        out[(*oid("docsIfCmtsCmStatusValue"), i)] = docsif
    return out


@pytest.mark.parametrize("cls", [FakeSnmp, ColumnsSnmp])
async def test_observe_macs_gives_the_sweeps_verdicts_for_those_macs(
        cls: type[FakeSnmp]) -> None:
    """The reconciler's bulk read: for every asked MAC the verdict and state of the full
    sweep (the DOCS-IF reading decides where DOCS-IF3 does not), and nothing about
    other modems."""
    table = generic_table()
    swept = await make("docsis3-generic", snmp=cls(values=dict(table))).sweep()
    every = [Mac(f"00:1d:cf:00:00:0{i}") for i in range(1, 5)]
    for wanted in (every, every[:2], every[2:], [every[0], Mac("00:1d:cf:00:00:99")]):
        got = await make("docsis3-generic", snmp=cls(values=dict(table))).observe_macs(wanted)
        assert set(got) == {m for m in wanted if m in swept}
        for mac, obs in got.items():
            assert (obs.verdict, obs.state) == (swept[mac].verdict, swept[mac].state), mac
    assert swept[every[0]].verdict is Verdict.BLOCKED
    assert swept[every[2]].verdict is Verdict.FORWARDING  # DOCS-IF's operational(8)
    assert swept[every[3]].verdict is Verdict.UNKNOWN


async def test_observe_macs_walks_the_next_source_only_for_an_undecided_mac() -> None:
    """Every asked MAC decided by DOCS-IF3 (blocked or forwarding): its MAC and state
    columns are the only walk, as net-snmp's reference reads them. One undecided MAC
    (DOCS-IF3 other(1)) adds the DOCS-IF walk."""
    if3 = (oid("docsIf3CmtsCmRegStatusMacAddr"), oid("docsIf3CmtsCmRegStatusValue"))
    docsif = (oid("docsIfCmtsCmStatusMacAddress"), oid("docsIfCmtsCmStatusValue"))
    fake = ColumnsSnmp(values=generic_table())
    await make("docsis3-generic", snmp=fake).observe_macs(
        [Mac("00:1d:cf:00:00:01"), Mac("00:1d:cf:00:00:02")])
    assert fake.column_walks == [if3]
    fake = ColumnsSnmp(values=generic_table())
    got = await make("docsis3-generic", snmp=fake).observe_macs(
        [Mac("00:1d:cf:00:00:01"), Mac("00:1d:cf:00:00:03")])
    assert fake.column_walks == [if3, docsif]
    assert got[Mac("00:1d:cf:00:00:03")].verdict is Verdict.FORWARDING


async def test_observe_macs_fails_closed_on_an_agent_without_the_table() -> None:
    """An empty walk is not "no modems": the agent answering noSuchObject for the
    column raises, so the reconciler reports the device instead of finding no drift."""
    class NoTable(ColumnsSnmp):
        async def get(self, oids: Sequence[tuple[int, ...]]
                      ) -> list[tuple[tuple[int, ...], SnmpValue]]:
            return [(o, Missing.NO_SUCH_OBJECT) for o in oids]

    fake = NoTable()
    with pytest.raises(DriverError, match="noSuchObject"):
        await make("docsis3-generic", snmp=fake).observe_macs([Mac("00:1d:cf:00:00:01")])
