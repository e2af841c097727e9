"""Device answers read the way real boxes give them (fixtures: tests/fixtures/cli, sources
in its README): every real refusal form raises the profile's error; a read-back that does
not positively recognise its listing never concludes "absent"; every state word maps to
its meaning; SNMP noSuchObject is "not supported", not "no entry"."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from enforcer.domain.mac import Mac
from enforcer.domain.model import DeviceKind, Verdict
from enforcer.drivers import ProfileDriver
from enforcer.drivers.cli_mech import UnrecognisedAnswer, parse_listing, read_check
from enforcer.drivers.fakes import FakeCli, FakeSnmp
from enforcer.drivers.render import Context, Scrubber
from enforcer.drivers.snmp_state import reading
from enforcer.errors import DriverError
from enforcer.inventory.profiles import Profile, load_profiles
from enforcer.mib import oid
from enforcer.transport.base import DeviceLimiter, Missing, Oid, SnmpValue

ROOT = Path(__file__).resolve().parents[2]
PROFILES = load_profiles(ROOT / "device_profiles")
FIXTURES = ROOT / "tests" / "fixtures" / "cli"
MAC = Mac("0a:00:3e:20:00:02")

REFUSALS = {
    "arris-e6000": ["Error: Bad command", "Error: Missing parameter",
                    "Error: Ambiguous parameter", "Error: Enter show ? to obtain help"],
    "cisco-cbr8": ["% Invalid input detected at '^' marker.", "% Incomplete command.",
                   '% Ambiguous command:  "sh ca"'],
    "casa-c100g": ["% Invalid input detected at '^' marker.", "% Incomplete command.",
                   '% Ambiguous command:  "sh ca"'],
}

# The meaning of every state word named in the issue and the vendor glossaries.
MEANINGS = {
    "cisco-cbr8": {
        "online": "forwarding", "online(pk)": "forwarding", "online(pt)": "forwarding",
        "w-online(pt)": "forwarding", "p-online(pt)": "forwarding",
        "w-online(pk)": "forwarding", "online(d)": "blocked", "online(pkd)": "blocked",
        "online(ptd)": "blocked", "w-online(ptd)": "blocked", "reject(pk)": "blocked",
        "w-reject(pk)": "blocked", "reject(m)": "blocked", "reject(c)": "blocked",
        "reject(pt)": "blocked", "init(r1)": "registering", "init(r2)": "registering",
        "init(rc)": "registering", "init(d)": "registering", "init(i)": "registering",
        "init(o)": "registering", "init(t)": "registering", "offline": "offline",
        "expire(pt)": "unknown", "w-expire(pt)": "unknown",
    },
    "casa-c100g": {
        "online": "forwarding", "online(pt)": "forwarding", "online(pk)": "forwarding",
        "online(d)": "blocked", "online(pkd)": "blocked", "online(ptd)": "blocked",
        "reject(pk)": "blocked", "reject(m)": "blocked", "reject(c)": "blocked",
        "reject(pt)": "blocked", "init(r1)": "registering", "init(r2)": "registering",
        "init(rc)": "registering", "init(d)": "registering", "init(i)": "registering",
        "init(o)": "registering", "init(t)": "registering", "offline": "offline",
        "expire(pt)": "unknown",
    },
    "arris-e6000": {
        "Operational": "forwarding", "Online-d": "blocked", "Registered": "registering",
        "Ranging": "registering", "Ranged": "registering", "DhcpV4Done": "registering",
        "Offline": "offline",
    },
}
VERDICT = {"forwarding": Verdict.FORWARDING, "blocked": Verdict.BLOCKED,
           "registering": Verdict.UNKNOWN, "offline": Verdict.ABSENT,
           "unknown": Verdict.UNKNOWN}


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def listing(platform: str) -> Profile:
    p = PROFILES[platform]
    assert p.listing is not None
    return p


# ---- refusals ------------------------------------------------------------------------

@pytest.mark.parametrize(("platform", "text"),
                         [(p, t) for p, texts in REFUSALS.items() for t in texts])
def test_every_real_refusal_form_is_an_error(platform: str, text: str) -> None:
    ssh = PROFILES[platform].transports.ssh
    assert ssh is not None
    assert ssh.refusal(f"{text}\n") == text
    assert ssh.refusal(f"           ^\n{text}\n\n") == text  # after an IOS caret line


@pytest.mark.parametrize("platform", list(REFUSALS))
def test_a_listing_is_not_a_refusal(platform: str) -> None:
    ssh = PROFILES[platform].transports.ssh
    assert ssh is not None
    assert ssh.refusal(fixture(f"{platform}_show_cable_modem.txt")) is None


# ---- read-backs fail closed ----------------------------------------------------------

READ_BACKS = [("arris-e6000", "deny-list-cli", fixture("arris-e6000_show_cable_modem_deny.txt")),
              ("cisco-cbr8", "bpi-hotlist-cli",
               f"hostname cbr8-1\ncable privacy hotlist cm {MAC.format('dotted')}\n")]
BAD_ANSWERS = {
    "an error": "Error: Bad command\n",
    "an IOS error": "% Invalid input detected at '^' marker.\n",
    "an empty answer": "",
    "a blank answer": "\n\n",
    "a truncated answer": "Deny list entries: 2 of 100\n",
    "an unknown layout": "MAC             Count\n0a00.3e20.0009  1\n",
}


@pytest.mark.parametrize(("platform", "mech", "good"), READ_BACKS)
@pytest.mark.parametrize("bad", list(BAD_ANSWERS))
def test_a_read_back_never_concludes_absent_from_an_unrecognised_answer(
        platform: str, mech: str, good: str, bad: str) -> None:
    p = PROFILES[platform]
    check = p.mechanism(mech).read_back.cli
    assert check is not None
    ctx = Context(MAC, p.mac_format)
    assert read_check(check, ctx, good, device="d", command="c") is True
    other = Context(Mac("0a:00:3e:20:00:99"), p.mac_format)
    assert read_check(check, other, good, device="d", command="c") is False
    with pytest.raises(UnrecognisedAnswer):
        read_check(check, ctx, BAD_ANSWERS[bad], device="d", command="c")


def make(platform: str, cli: FakeCli) -> ProfileDriver:
    lim = DeviceLimiter("dev1", max_sessions=2, resets_per_minute=60,
                        rng=random.Random(7))

    async def factory() -> FakeCli:
        return cli
    return ProfileDriver("dev1", PROFILES[platform], limiter=lim, cli=factory)


@pytest.mark.parametrize("bad", list(BAD_ANSWERS))
async def test_lift_on_an_error_listing_sends_nothing_and_fails(bad: str) -> None:
    """ARRIS deny list listing answering an error: the lift must not say "absent
    already" (nor send anything); it fails, so the target stays retrying."""
    cli = FakeCli(responses={"show cable modem deny": BAD_ANSWERS[bad]})
    d = make("arris-e6000", cli)
    r = await d.remove(MAC, "deny-list-cli")
    assert r.failed and not r.changed
    assert isinstance(r.exception, UnrecognisedAnswer)
    assert "already" not in "\n".join(r.transcript)
    assert cli.commands == ["show cable modem deny"]
    r = await d.apply(MAC, "deny-list-cli", kind=DeviceKind.CABLE_MODEM)
    assert r.failed and isinstance(r.exception, UnrecognisedAnswer)
    assert cli.commands == ["show cable modem deny"] * 2  # nothing configured


CISCO_BAD = {
    "an IOS error": "% Invalid input detected at '^' marker.\n",
    "an empty answer": "",
    # the filter's first line (hostname) is missing: cut, or not the filtered config
    "a truncated answer": f"cable privacy hotlist cm {MAC.format('dotted')}\n",
    "an unknown layout": "Total hotlist entries: 0\nType  MAC Address     Certificate\n",
}


@pytest.mark.parametrize("bad", list(CISCO_BAD))
async def test_hotlist_lift_on_an_unrecognised_read_back_sends_nothing_and_fails(
        bad: str) -> None:
    """cBR-8 hotlist by CLI: the filtered running-config read-back answering anything
    but the filtered config: neither the lift nor the ban concludes, nothing is sent."""
    command = "show running-config | include ^hostname|^cable privacy hotlist cm"
    cli = FakeCli(responses={command: CISCO_BAD[bad]})
    d = make("cisco-cbr8", cli)
    r = await d.remove(MAC, "bpi-hotlist-cli")
    assert r.failed and not r.changed and isinstance(r.exception, UnrecognisedAnswer)
    assert "already" not in "\n".join(r.transcript)
    r = await d.apply(MAC, "bpi-hotlist-cli", kind=DeviceKind.CABLE_MODEM)
    assert r.failed and isinstance(r.exception, UnrecognisedAnswer)
    assert cli.commands == [command] * 2 and not cli.configs


async def test_lift_on_a_recognised_listing_removes_and_reads_back() -> None:
    denied = {MAC.format("dotted")}

    def on_command(c: FakeCli, line: str) -> str | None:
        if line.startswith("configure no cable modem deny "):
            denied.discard(line.rsplit(" ", 1)[1])
            return ""
        if line == "show cable modem deny":
            return "\n".join([f"Deny list entries: {len(denied)} of 100",
                              "MAC Address     Denied Attempts",
                              *(f"{m}  0" for m in sorted(denied))])
        return None
    cli = FakeCli(on_command=on_command)
    r = await make("arris-e6000", cli).remove(MAC, "deny-list-cli")
    assert (r.changed, r.failed) == (True, False), r.error
    r = await make("arris-e6000", cli).remove(MAC, "deny-list-cli")
    assert (r.changed, r.failed) == (False, False)  # recognised, and absent: nothing to do
    assert "read back: absent already" in r.transcript


async def test_headend_observe_of_an_unrecognised_answer_is_an_error() -> None:
    cli = FakeCli(responses={"showDhct 00:02:DE:4A:11:92": "Segmentation fault\n"})
    d = make("dncs-headend", cli)
    with pytest.raises(UnrecognisedAnswer):
        await d.observe(Mac("00:02:de:4a:11:92"))


# ---- listings and state vocabularies -------------------------------------------------

@pytest.mark.parametrize("platform", list(MEANINGS))
def test_every_state_word_maps_to_its_meaning(platform: str) -> None:
    spec = listing(platform).listing
    assert spec is not None
    for word, meaning in MEANINGS[platform].items():
        assert word in spec.states, word
        assert spec.states[word].meaning == meaning, word


@pytest.mark.parametrize("platform", list(MEANINGS))
def test_the_profile_reads_the_recorded_layout(platform: str) -> None:
    spec = listing(platform).listing
    assert spec is not None
    text = fixture(f"{platform}_show_cable_modem.txt")
    got = parse_listing(spec, text, device="d", command="show cable modem")
    assert not got.unknown
    rows = re.findall(r"(?m)^.*[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}.*$", text)
    assert len(got.rows) == len(rows) > 5
    for mac, (verdict, word, meaning) in got.rows.items():
        assert meaning == MEANINGS[platform][word], word
        assert verdict is VERDICT[meaning]
        assert mac.format("dotted") in text


def test_casa_blank_address_ipv6_continuation_and_marks() -> None:
    spec = listing("casa-c100g").listing
    assert spec is not None
    got = parse_listing(spec, fixture("casa-c100g_show_cable_modem.txt"), device="d",
                        command="show cable modem")
    assert got.rows[Mac("0a:00:3e:30:00:08")][1] == "offline"  # blank address
    assert got.rows[Mac("0a:00:3e:30:00:03")][1] == "online(pk)"  # '#' partial service


def test_an_unknown_state_word_is_surfaced_not_guessed() -> None:
    spec = listing("cisco-cbr8").listing
    assert spec is not None
    text = fixture("cisco-cbr8_show_cable_modem.txt").replace("w-online(pt) ", "cc(r1)       ")
    got = parse_listing(spec, text, device="d", command="show cable modem")
    assert got.unknown == {"cc(r1)"}
    assert got.rows[Mac("0a:00:3e:10:00:01")] == (Verdict.UNKNOWN, "cc(r1)", "unknown")


@pytest.mark.parametrize("platform", list(MEANINGS))
@pytest.mark.parametrize("how", ["error", "empty", "truncated", "unknown layout", "odd row"])
def test_a_listing_not_positively_recognised_is_an_error(platform: str, how: str) -> None:
    spec = listing(platform).listing
    assert spec is not None
    text = fixture(f"{platform}_show_cable_modem.txt")
    lines = text.splitlines()
    bad = {
        "error": REFUSALS[platform][0],
        "empty": "",
        # cut after the first rows: the header is there, the closing summary is not (the
        # cBR-8 listing has no footer, so it is cut inside its header instead)
        "truncated": "\n".join(lines[:5] if spec.footer else lines[:2]),
        "unknown layout": "\n".join(["Modem MAC        Status", "0a00.3e10.0001   up"]),
        "odd row": text.replace(lines[-3] if spec.footer else lines[-1],
                                "0a00.3e10.00ff  something else entirely"),
    }[how]
    with pytest.raises(UnrecognisedAnswer):
        parse_listing(spec, bad, device="d", command="show cable modem")


# ---- SNMP: noSuchObject is "not supported" -------------------------------------------

def test_no_such_object_is_not_absent() -> None:
    src = next(s for s in PROFILES["cisco-cbr8"].observe.snmp.sources  # type: ignore[union-attr]
               if s.name == "cdxCmtsCmStatusValue")
    assert reading(src, Missing.NO_SUCH_INSTANCE)[0] is Verdict.ABSENT
    verdict, state = reading(src, Missing.NO_SUCH_OBJECT)
    assert verdict is Verdict.UNKNOWN and "not supported" in state


async def test_snmp_read_back_on_an_unsupported_table_is_an_error() -> None:
    mac = Mac("00:1d:cf:4a:12:7e")
    deny = oid("cadCmDenyRowStatus") + mac.oid_index
    fake = FakeSnmp(values={deny: Missing.NO_SUCH_OBJECT})
    lim = DeviceLimiter("dev1", max_sessions=2, resets_per_minute=60, rng=random.Random(7))

    async def factory() -> FakeSnmp:
        return fake
    d = ProfileDriver("dev1", PROFILES["arris-e6000"], limiter=lim, snmp=factory)
    with pytest.raises(DriverError, match="not supported"):
        await d.read_back(mac, "deny-list")
    r = await d.remove(mac, "deny-list")
    assert r.failed and not fake.sets  # no "absent already", nothing sent


async def test_pointer_table_not_supported_is_not_absent() -> None:
    mac = Mac("00:1d:cf:4a:12:7e")
    ptr = oid("docsIfCmtsCmPtr") + mac.oid_index
    fake = FakeSnmp(values={ptr: Missing.NO_SUCH_OBJECT})
    lim = DeviceLimiter("dev1", max_sessions=2, resets_per_minute=60, rng=random.Random(7))

    async def factory() -> FakeSnmp:
        return fake
    d = ProfileDriver("dev1", PROFILES["cisco-cbr8"], limiter=lim, snmp=factory)
    with pytest.raises(DriverError, match="does not support"):
        await d.observe(mac)


class NoDenyTable(FakeSnmp):
    """An agent without the CADANT deny table: walks of it are empty, GETs of it answer
    noSuchObject."""

    async def get(self, oids: Sequence[Oid]) -> list[tuple[Oid, SnmpValue]]:
        out = await super().get(oids)
        return [(o, Missing.NO_SUCH_OBJECT if o[:len(DENY)] == DENY else v) for o, v in out]


DENY = oid("cadCmDenyRowStatus")


async def test_an_empty_walk_of_an_unsupported_table_is_not_an_empty_table() -> None:
    lim = DeviceLimiter("dev1", max_sessions=2, resets_per_minute=60, rng=random.Random(7))
    fake = NoDenyTable()

    async def factory() -> FakeSnmp:
        return fake
    d = ProfileDriver("dev1", PROFILES["arris-e6000"], limiter=lim, snmp=factory)
    with pytest.raises(DriverError, match="not support"):
        await d.list_blocks("deny-list")
    supported = FakeSnmp()  # an empty but supported table: GETs answer noSuchInstance

    async def factory2() -> FakeSnmp:
        return supported
    d2 = ProfileDriver("dev2", PROFILES["arris-e6000"], limiter=lim, snmp=factory2)
    assert await d2.list_blocks("deny-list") == set()


async def test_an_unrecognised_answer_quoting_a_secret_is_scrubbed() -> None:
    secret = "s3cret-Passw0rd"
    cli = FakeCli(responses={"show cable modem deny": f"enable secret {secret}\n"})
    lim = DeviceLimiter("dev1", max_sessions=2, resets_per_minute=60, rng=random.Random(7))

    async def factory() -> FakeCli:
        return cli
    d = ProfileDriver("dev1", PROFILES["arris-e6000"], limiter=lim, cli=factory,
                      scrub=Scrubber([secret]))
    r = await d.remove(MAC, "deny-list-cli")
    assert r.failed and r.error is not None and "<secret>" in r.error
    assert secret not in r.error and secret not in "\n".join(r.transcript)


# ---- Remote PHY / vCCAP views: other layouts of the same listing ---------------------

# (platform, layout, fixture): sources in tests/fixtures/cli/README.md
VIEWS = [("cisco-cbr8", "rphy", "cisco-cbr8_show_cable_modem_rphy.txt"),
         ("casa-c100g", "vccap", "casa-c100g_show_cable_modem_vccap.txt")]


@pytest.mark.parametrize(("platform", "layout", "name"), VIEWS)
def test_the_profile_reads_the_remote_phy_view(platform: str, layout: str, name: str) -> None:
    spec = listing(platform).listing
    assert spec is not None
    text = fixture(name)
    got = parse_listing(spec, text, device="d", command="show cable modem")
    assert got.layout == layout and not got.unknown
    rows = re.findall(r"(?m)^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4} .*$", text)
    assert len(got.rows) == len(rows) > 5
    for line in rows:
        mac = Mac(line.split()[0], allow_group=True)
        verdict, word, meaning = got.rows[mac]
        assert meaning == MEANINGS[platform][word], word
        assert verdict is VERDICT[meaning]
        mac_domain, device_class, node = line.split()[-3:]  # the three added columns
        assert got.fields[mac] == {"mac_domain": mac_domain, "device_class": device_class,
                                   "rphy_node": node}
    # the same modems and words as the classic view of the same fleet
    classic = parse_listing(spec, fixture(f"{platform}_show_cable_modem.txt"), device="d",
                            command="show cable modem")
    assert classic.layout == "classic" and not classic.fields
    assert {m: r[1] for m, r in classic.rows.items()} == {m: r[1] for m, r in got.rows.items()}


@pytest.mark.parametrize(("platform", "layout", "name"), VIEWS)
@pytest.mark.parametrize("how", ["truncated", "odd row", "classic row", "undeclared view",
                                 "two layouts"])
def test_a_remote_phy_view_not_positively_recognised_is_an_error(
        platform: str, layout: str, name: str, how: str) -> None:
    spec = listing(platform).listing
    assert spec is not None
    text = fixture(name)
    lines = text.splitlines()
    first_row = next(ln for ln in lines if re.match(r"[0-9a-f]{4}\.", ln))
    classic = fixture(f"{platform}_show_cable_modem.txt").splitlines()
    bad = {
        # the closing summary (Casa) or the last header line (Cisco, no footer) is missing
        "truncated": "\n".join(lines[:4] if spec.footer else lines[:2]),
        "odd row": text.replace(first_row, first_row.rsplit(None, 3)[0] + "  ??"),
        # a row of the classic layout under the view's header: its columns are missing
        "classic row": text.replace(first_row, next(
            ln for ln in classic if ln.startswith(first_row[:14]))),
        # a view with one more column than the profile declares
        "undeclared view": "\n".join(ln + "  Foo" if i < 3 and ln.rstrip().endswith(
            ("RPHY", "Node")) else ln for i, ln in enumerate(lines)),
        # both the classic and the view's header: which one is it?
        "two layouts": "\n".join([*classic, *lines]),
    }[how]
    with pytest.raises(UnrecognisedAnswer):
        parse_listing(spec, bad, device="d", command="show cable modem")


def test_an_empty_view_is_read_only_as_its_documented_empty_answer() -> None:
    """A view with its header and summary but no rows is a recognised empty listing; a
    view's header alone without the summary is truncated, never "no modems"."""
    spec = listing("casa-c100g").listing
    assert spec is not None
    lines = fixture("casa-c100g_show_cable_modem_vccap.txt").splitlines()
    empty = "\n".join([*lines[:2], "online cm 0 ; offline cm 0 ; ranging cm 0"])
    got = parse_listing(spec, empty, device="d", command="show cable modem")
    assert (got.layout, got.rows) == ("vccap", {})
    with pytest.raises(UnrecognisedAnswer, match="truncated"):
        parse_listing(spec, "\n".join(lines[:2]), device="d", command="show cable modem")
