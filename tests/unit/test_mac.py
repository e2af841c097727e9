"""MAC parsing: every notation, bad inputs, non-unicast refused, pydantic integration."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from enforcer.domain.mac import Mac, parse_mac
from enforcer.errors import InputError, MacError

CANON = "00:1a:2b:3c:4d:5e"


@pytest.mark.parametrize("text", [
    "00:1a:2b:3c:4d:5e", "00:1A:2B:3C:4D:5E", "00-1a-2b-3c-4d-5e", "00-1A-2B-3C-4D-5E",
    "001a.2b3c.4d5e", "001A.2B3C.4D5E", "001a2b3c4d5e", "001A2B3C4D5E", "  00:1a:2b:3c:4d:5e\n",
    "0:1a:2b:3c:4d:5e",
])
def test_every_notation_parses_to_the_canonical_form(text: str) -> None:
    assert str(Mac(text)) == CANON


def test_formats() -> None:
    m = Mac(CANON)
    assert m.dotted() == "001a.2b3c.4d5e"
    assert m.bare() == "001a2b3c4d5e"
    assert m.bare(upper=True) == "001A2B3C4D5E"
    assert m.dashed(upper=True) == "00-1A-2B-3C-4D-5E"
    assert m.format("colon_upper") == "00:1A:2B:3C:4D:5E"
    assert m.oid_index == (0, 26, 43, 60, 77, 94)
    assert Mac.from_oid_index(m.oid_index) == m
    with pytest.raises(MacError, match="unknown MAC format"):
        m.format("nope")


@pytest.mark.parametrize("text", [
    "", "00:1a:2b:3c:4d", "00:1a:2b:3c:4d:5e:6f", "00:1a-2b:3c:4d:5e", "001a.2b3c.4d5",
    "001a2b3c4d5g", "zz:zz:zz:zz:zz:zz", "hello", "001:1a:2b:3c:4d:5e",
])
def test_bad_text_is_refused_with_a_helpful_message(text: str) -> None:
    with pytest.raises(MacError, match="not a MAC address"):
        Mac(text)


@pytest.mark.parametrize(("text", "why"), [
    ("ff:ff:ff:ff:ff:ff", "broadcast"), ("FFFF.FFFF.FFFF", "broadcast"),
    ("00:00:00:00:00:00", "all-zero"), ("000000000000", "all-zero"),
    ("01:00:5e:00:00:01", "multicast"), ("33:33:00:00:00:01", "multicast"),
])
def test_non_unicast_addresses_are_refused(text: str, why: str) -> None:
    with pytest.raises(MacError, match=why):
        Mac(text)


def test_mac_error_is_an_input_error_and_a_value_error() -> None:
    with pytest.raises(InputError):
        parse_mac("nope")
    with pytest.raises(ValueError):
        parse_mac("nope")


def test_bytes_and_type_errors() -> None:
    assert Mac(bytes.fromhex("001a2b3c4d5e")) == Mac(CANON)
    with pytest.raises(MacError, match="6 octets"):
        Mac(b"\x00\x01")
    with pytest.raises(MacError):
        Mac(12345)  # type: ignore[arg-type]


def test_value_semantics() -> None:
    assert Mac("001a2b3c4d5e") == Mac(CANON)
    assert len({Mac("001a2b3c4d5e"), Mac(CANON)}) == 1
    assert Mac("00:00:00:00:00:02") < Mac("00:00:00:00:00:04")
    assert repr(Mac(CANON)) == f"Mac('{CANON}')"


class _Holder(BaseModel):
    mac: Mac


def test_pydantic_validates_and_serialises() -> None:
    assert _Holder.model_validate({"mac": "001A.2B3C.4D5E"}).model_dump(mode="json") == {
        "mac": CANON}
    with pytest.raises(ValidationError, match="broadcast"):
        _Holder.model_validate({"mac": "ff:ff:ff:ff:ff:ff"})


unicast = st.binary(min_size=6, max_size=6).filter(
    lambda b: not b[0] & 1 and b != b"\x00" * 6)


@given(unicast, st.sampled_from(["colon", "colon_upper", "dash", "dash_upper", "dotted",
                                 "bare", "bare_upper"]))
def test_every_format_round_trips(raw: bytes, style: str) -> None:
    m = Mac(raw)
    assert Mac(m.format(style)) == m
    assert str(Mac(m.format(style))) == m.colon()


@given(st.binary(min_size=6, max_size=6).filter(lambda b: bool(b[0] & 1)))
def test_group_bit_is_always_refused(raw: bytes) -> None:
    with pytest.raises(MacError):
        Mac(raw.hex())
    assert Mac(raw, allow_group=True).packed == raw


@given(st.text(max_size=30))
def test_arbitrary_text_never_crashes(text: str) -> None:
    try:
        m = Mac(text)
    except MacError:
        return
    assert len(m.packed) == 6
