"""Device profile loader: every shipped profile loads; malformed ones fail at load
time naming FILE:LINE and the reason."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from enforcer.domain.model import Verdict
from enforcer.errors import ProfileError
from enforcer.inventory.profiles import Profile, load_profile, load_profiles

PROFILES = Path(__file__).resolve().parents[2] / "device_profiles"
SHIPPED = ["arris-e6000", "casa-c100g", "cisco-cbr8", "dncs-headend", "docsis3-generic",
           "kea-dhcp4"]


def test_every_shipped_profile_loads() -> None:
    profiles = load_profiles(PROFILES)
    assert sorted(profiles) == SHIPPED
    for name, p in profiles.items():
        assert p.platform == name
        assert p.mechanisms, name
        assert p.kick is not None or p.kind in ("headend", "dhcp"), name


def test_shipped_mechanism_choices_match_the_lab_dialects() -> None:
    p = load_profiles(PROFILES)
    names = {k: [m.name for m in v.mechanisms] for k, v in p.items()}
    assert names["cisco-cbr8"] == ["cm-ctrl-disable-forwarding", "bpi-hotlist-cli",
                                   "bpi-hotlist-cert"]
    assert names["arris-e6000"] == ["deny-list", "deny-list-cli", "cm-ctrl-disable-forwarding"]
    assert names["casa-c100g"] == ["cm-ctrl-disable-forwarding"]
    assert names["docsis3-generic"] == ["cm-ctrl-disable-forwarding", "bpi-hotlist-cert"]
    assert names["dncs-headend"] == ["service-disconnect"]
    assert p["arris-e6000"].limits.deny_list_size == 100
    cm_ctrl = p["casa-c100g"].mechanism("cm-ctrl-disable-forwarding")
    assert cm_ctrl.persistence == "registration" and not cm_ctrl.kick_after_apply
    assert p["arris-e6000"].mechanism("deny-list").kick_after_apply


def test_state_maps_follow_the_facts() -> None:
    cisco = load_profiles(PROFILES)["cisco-cbr8"]
    assert cisco.observe.snmp is not None
    src = {s.name: s for s in cisco.observe.snmp.sources}
    assert src["docsIf3CmtsCmRegStatusValue"].states[17].verdict is Verdict.BLOCKED
    assert src["docsIf3CmtsCmRegStatusValue"].states[8].verdict is Verdict.FORWARDING
    assert src["docsIfCmtsCmStatusValue"].states[7].verdict is Verdict.BLOCKED
    assert src["cdxCmtsCmStatusValue"].states[5].name == "onlineNetAccessDisabled"


MINIMAL = """\
platform: test-cmts
kind: cmts
transports:
  snmp: {timeout_s: 1}
mechanisms:
  - name: block
    transport: snmp
    persistence: registration
    kick_after_apply: false
    apply:
      snmp:
        - - {oid: "1.3.6.1.4.1.1.1.{mac_index}", type: integer, value: "1"}
    remove:
      snmp:
        - - {oid: "1.3.6.1.4.1.1.1.{mac_index}", type: integer, value: "2"}
    read_back:
      snmp:
        - {oid: "1.3.6.1.4.1.1.1.{mac_index}", values: [1]}
observe:
  blocks: [block]
  snmp:
    sources:
      - name: state
        column: "1.3.6.1.4.1.1.2"
        index: {by: mac}
        states:
          1: {name: up, verdict: forwarding}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "test-cmts.yaml"
    path.write_text(text)
    return path


def error_of(path: Path) -> str:
    with pytest.raises(ProfileError) as e:
        load_profile(path)
    return str(e.value)


def test_minimal_profile_loads(tmp_path: Path) -> None:
    p = load_profile(write(tmp_path, MINIMAL))
    assert isinstance(p, Profile)
    assert p.limits.max_sessions == 2
    assert p.transports.snmp is not None and p.transports.snmp.max_repetitions == 25


@pytest.mark.parametrize(("change", "line", "reason"), [
    # missing key: kick_after_apply removed from the mechanism (starts on line 6)
    (("    kick_after_apply: false\n", ""), 6, r"mechanisms\.0\.kick_after_apply: Field required"),
    # unknown key
    (("    persistence: registration\n", "    persistence: registration\n    colour: red\n"),
     9, r"mechanisms\.0\.colour: Extra inputs are not permitted"),
    # bad OID
    (('"1.3.6.1.4.1.1.2"', '"1.3.six.1"'), 24, r"not an OID: '1\.3\.six\.1'"),
    # unknown placeholder in an OID
    (('{oid: "1.3.6.1.4.1.1.1.{mac_index}", type: integer, value: "1"}',
      '{oid: "1.3.6.1.4.1.1.1.{mac}", type: integer, value: "1"}'), 12,
     r"unknown placeholder\(s\) in OID: mac"),
    # unknown mechanism reference
    (("  blocks: [block]", "  blocks: [block, deny-list]"), 20,
     r"observe\.blocks\.1: unknown mechanism 'deny-list'"),
    # bad state verdict
    (("verdict: forwarding", "verdict: maybe"), 27, r"verdict: Input should be"),
])
def test_malformed_profiles_name_file_line_and_reason(
        tmp_path: Path, change: tuple[str, str], line: int, reason: str) -> None:
    old, new = change
    assert old in MINIMAL
    path = write(tmp_path, MINIMAL.replace(old, new, 1))
    msg = error_of(path)
    assert msg.startswith(f"{path}:{line}: "), msg
    assert re.search(reason, msg), msg


def test_bad_regex_is_refused_with_its_line(tmp_path: Path) -> None:
    text = MINIMAL.replace("transports:\n", "transports:\n  ssh:\n    device_type: cisco_xe\n"
                           "    error_patterns: ['^% Invalid', '(unclosed']\n", 1)
    path = write(tmp_path, text)
    msg = error_of(path)
    assert msg.startswith(f"{path}:6: transports.ssh.error_patterns.1: bad regular expression")


def test_regex_quantifiers_are_not_placeholders(tmp_path: Path) -> None:
    text = MINIMAL.replace("transports:\n", "transports:\n  ssh:\n    device_type: cisco_xe\n"
                           "    error_patterns: ['^[0-9a-f]{4}\\.{mac}']\n", 1)
    assert load_profile(write(tmp_path, text)).transports.ssh is not None


def test_mechanism_needs_its_transport_configured(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("    transport: snmp\n", "    transport: ssh\n"))
    msg = error_of(path)
    assert f"{path}:7: mechanisms.0.transport: transport 'ssh' is not configured" in msg


def test_unknown_capability_and_source(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("    kick_after_apply: false\n",
                                           "    kick_after_apply: false\n    requires: [bpi]\n"))
    assert "mechanisms.0.requires: unknown capability 'bpi'" in error_of(path)
    path = write(tmp_path, MINIMAL.replace('{oid: "1.3.6.1.4.1.1.1.{mac_index}", values: [1]}',
                                           "{source: nope, values: [1]}"))
    assert ":18: mechanisms.0.read_back.snmp.0.source: unknown observe source 'nope'" \
        in error_of(path)


def test_platform_must_match_file_name(tmp_path: Path) -> None:
    path = tmp_path / "other.yaml"
    path.write_text(MINIMAL)
    assert f"{path}:1: platform 'test-cmts' must match the file name 'other'" in error_of(path)


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("kind: cmts\n", "kind: [cmts\n"))
    msg = error_of(path)
    assert msg.startswith(f"{path}:") and "not valid YAML" in msg


def test_load_profiles_refuses_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="no such profile directory"):
        load_profiles(tmp_path / "nope")


CLI_BLOCK = """\
  - name: cli-block
    transport: ssh
    persistence: persistent
    kick_after_apply: true
    apply:
      cli: {mode: config, lines: ["deny {mac}"]}
    remove:
      cli: {mode: config, lines: ["no deny {mac}"]}
    read_back:
      cli: {command: "show deny", pattern: '(?m)^{mac}$'LISTING}
"""


def with_cli_block(listing: str) -> str:
    text = MINIMAL.replace("transports:\n", "transports:\n  ssh:\n    device_type: cisco_xe\n", 1)
    return text.replace("observe:\n", CLI_BLOCK.replace("LISTING", listing) + "observe:\n", 1)


def test_a_cli_read_back_must_say_what_its_listing_looks_like(tmp_path: Path) -> None:
    msg = error_of(write(tmp_path, with_cli_block("")))
    assert re.search(r"read_back\.cli\.listing: Field required", msg), msg
    p = load_profile(write(tmp_path, with_cli_block(", listing: '(?m)^Denied MACs$'")))
    check = p.mechanism("cli-block").read_back.cli
    assert check is not None and check.listing == "(?m)^Denied MACs$" and check.empty is None


def test_a_listing_row_needs_mac_and_state_groups(tmp_path: Path) -> None:
    listing = ("listing:\n  command: show modems\n  header: ['^MAC']\n"
               "  row: '^(?P<mac>\\S+) (\\S+)'\n  states: {up: {meaning: forwarding}}\n")
    msg = error_of(write(tmp_path, MINIMAL + listing))
    assert re.search(r"listing\.row: needs the named group\(s\) state", msg), msg
    ok = listing.replace("(\\S+)'", "(?P<state>\\S+)'")
    p = load_profile(write(tmp_path, MINIMAL + ok))
    assert p.listing is not None and p.listing.states["up"].meaning == "forwarding"
    bad = ok.replace("meaning: forwarding", "meaning: maybe")
    assert "listing.states.up.meaning" in error_of(write(tmp_path, MINIMAL + bad))


def test_a_listing_layout_is_checked_like_the_listing(tmp_path: Path) -> None:
    listing = ("listing:\n  command: show modems\n  header: ['^MAC']\n"
               "  row: '^(?P<mac>\\S+) (?P<state>\\S+)'\n"
               "  layouts:\n    - name: wide\n      header: ['^MAC +Node']\n"
               "      row: '^(?P<mac>\\S+) (\\S+) (?P<node>\\S+)'\n"
               "  states: {up: {meaning: forwarding}}\n")
    msg = error_of(write(tmp_path, MINIMAL + listing))
    assert re.search(r"listing\.layouts\.0\.row: needs the named group\(s\) state", msg), msg
    ok = listing.replace("(\\S+) (?P<node>", "(?P<state>\\S+) (?P<node>")
    p = load_profile(write(tmp_path, MINIMAL + ok))
    assert p.listing is not None
    assert [lay.name for lay in p.listing.all_layouts()] == ["classic", "wide"]
    twice = ok.replace("name: wide", "name: classic")
    assert "layout 'classic' is defined twice" in error_of(write(tmp_path, MINIMAL + twice))
