"""The DROP class expression: rendering, parsing back, and the operator's own class."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from enforcer.dhcp.dropclass import (
    DropSet,
    find_class,
    parse_class,
    render_class,
    render_test,
    with_class,
)
from enforcer.domain.mac import Mac
from enforcer.errors import DriverError

A, B = Mac("00:1d:cf:4a:12:7e"), Mac("00:1d:cf:4a:12:01")


def test_render_is_sorted_and_canonical() -> None:
    d = DropSet(macs=frozenset({A, B}), remote_ids=frozenset({A.packed}))
    assert render_test(d) == ("pkt4.mac == 0x001dcf4a1201 or pkt4.mac == 0x001dcf4a127e or "
                              "relay4[2].hex == 0x001dcf4a127e")
    assert render_test(DropSet()) is None


def test_round_trip_through_a_class() -> None:
    d = DropSet(macs=frozenset({A}), remote_ids=frozenset({b"\x01\x02\x03"}))
    cls = render_class(d, None)
    assert cls is not None and cls["name"] == "DROP"
    assert parse_class(cls) == (d, True)


def test_no_bans_and_no_base_removes_the_class() -> None:
    assert render_class(DropSet(), None) is None
    assert parse_class(None) == (DropSet(), True)


def test_an_operators_drop_class_is_kept_as_base_and_restored() -> None:
    theirs: dict[str, Any] = {
        "name": "DROP", "test": "substring(option[61].hex,0,3) == 0x010203",
              "user-context": {"owner": "noc"}, "comment": "theirs"}
    drops, consistent = parse_class(theirs)
    assert drops == DropSet(base=theirs["test"]) and consistent
    ours = render_class(drops.with_({A}), theirs)
    assert ours is not None
    assert ours["test"] == f"({theirs['test']}) or pkt4.mac == 0x001dcf4a127e"
    assert ours["user-context"]["owner"] == "noc" and ours["comment"] == "theirs"
    back, ok = parse_class(ours)
    assert ok and back.macs == {A} and back.base == theirs["test"]
    restored = render_class(back.without({A}), ours)
    assert restored == theirs


def test_base_terms_are_not_mistaken_for_bans() -> None:
    base = "pkt4.mac == 0x00000000beef"
    cls = render_class(DropSet(macs=frozenset({A}), base=base), None)
    assert cls is not None
    drops, ok = parse_class(cls)
    assert ok and drops.macs == {A} and drops.base == base


def test_a_hand_edited_test_is_detected() -> None:
    cls = render_class(DropSet(macs=frozenset({A})), None)
    assert cls is not None
    cls["test"] += " or pkt4.mac == 0x001dcf4a127e"
    drops, ok = parse_class(cls)
    assert drops.macs == {A} and not ok


def test_a_class_without_a_test_is_refused() -> None:
    with pytest.raises(DriverError):
        parse_class({"name": "DROP"})


def test_with_class_keeps_other_classes_in_place() -> None:
    dhcp4 = {"client-classes": [{"name": "x", "test": "true"},
                                {"name": "DROP", "test": "false"},
                                {"name": "y", "test": "true"}]}
    new = with_class(dhcp4, {"name": "DROP", "test": "pkt4.mac == 0x001dcf4a127e"})
    assert [c["name"] for c in new["client-classes"]] == ["x", "DROP", "y"]
    assert find_class(new) == {"name": "DROP", "test": "pkt4.mac == 0x001dcf4a127e"}
    gone = with_class(dhcp4, None)
    assert [c["name"] for c in gone["client-classes"]] == ["x", "y"]
    assert dhcp4["client-classes"][1]["test"] == "false"  # the input is not changed


macs = st.binary(min_size=6, max_size=6).map(lambda b: Mac(bytes([b[0] & 0xFC]) + b[1:])
                                              if (b[0] & 0xFC) or any(b[1:]) else A)


@given(st.frozensets(macs, max_size=8), st.frozensets(st.binary(min_size=1, max_size=40),
                                                      max_size=5))
def test_any_ban_set_parses_back(ms: frozenset[Mac], rids: frozenset[bytes]) -> None:
    d = DropSet(macs=ms, remote_ids=rids)
    cls = render_class(d, None)
    if d.empty():
        assert cls is None
        return
    assert parse_class(cls) == (d, True)
