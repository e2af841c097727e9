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


# ---- what mutation testing found untested (scripts/mutation.sh) ------------------------

def test_a_table_index_with_an_ff_octet_is_a_mac() -> None:
    assert str(Mac.from_oid_index((0, 17, 34, 51, 68, 255))) == "00:11:22:33:44:ff"
    assert str(Mac.from_oid_index((255, 255, 255, 255, 255, 254))) == "ff:ff:ff:ff:ff:fe"
    assert Mac.from_oid_index((0, 0, 0, 0, 0, 0)).packed == b"\x00" * 6


@pytest.mark.parametrize("index", [
    (0, 17, 34, 51, 68, 256), (0, 17, 34, 51, 68, -1), (0, 17, 34, 51, 68),
    (0, 17, 34, 51, 68, 85, 102), (),
])
def test_a_bad_table_index_is_refused_naming_it(index: tuple[int, ...]) -> None:
    with pytest.raises(MacError) as e:
        Mac.from_oid_index(index)
    assert str(e.value) == f"not a MAC index: {'.'.join(map(str, index))}"


def test_multicast_and_broadcast_rows_read_from_an_index_are_kept() -> None:
    """A device's table may list group addresses: reading them is not banning them."""
    assert str(Mac.from_oid_index((1, 0, 94, 0, 0, 1))) == "01:00:5e:00:00:01"
    assert str(Mac.from_oid_index((255,) * 6)) == "ff:ff:ff:ff:ff:ff"
    assert Mac("01:00:5e:00:00:01", allow_group=True).packed == bytes.fromhex("01005e000001")


def test_what_the_device_receives_is_exactly_the_profile_style() -> None:
    m = Mac("0a:1b:2c:3d:4e:5f")
    assert {s: m.format(s) for s in ("colon", "colon_upper", "dash", "dash_upper", "dotted",
                                      "bare", "bare_upper")} == {
        "colon": "0a:1b:2c:3d:4e:5f", "colon_upper": "0A:1B:2C:3D:4E:5F",
        "dash": "0a-1b-2c-3d-4e-5f", "dash_upper": "0A-1B-2C-3D-4E-5F",
        "dotted": "0a1b.2c3d.4e5f", "bare": "0a1b2c3d4e5f", "bare_upper": "0A1B2C3D4E5F"}
    assert (m.colon(), m.dashed(), m.bare()) == (
        "0a:1b:2c:3d:4e:5f", "0a-1b-2c-3d-4e-5f", "0a1b2c3d4e5f")
    assert m.oid_suffix == "10.27.44.61.78.95"
    assert m.oid_index == (10, 27, 44, 61, 78, 95)
    with pytest.raises(MacError) as e:
        m.format("Colon")
    assert str(e.value) == ("unknown MAC format 'Colon'; one of colon, colon_upper, dash, "
                            "dash_upper, dotted, bare, bare_upper")


def test_construction_from_every_kind_of_value() -> None:
    m = Mac(CANON)
    assert Mac(m) == m and Mac(m).packed == m.packed
    assert Mac(bytearray(bytes.fromhex("001a2b3c4d5e"))) == m  # type: ignore[arg-type]
    with pytest.raises(MacError) as e:
        Mac(b"\x00\x01\x02\x03\x04\x05\x06")
    assert str(e.value) == "a MAC address has 6 octets, got 7"
    with pytest.raises(MacError) as e:
        Mac(12345)  # type: ignore[arg-type]
    assert str(e.value) == "not a MAC address: int"
    with pytest.raises(MacError, match="multicast"):
        Mac(bytes.fromhex("01005e000001"))
    with pytest.raises(MacError, match="multicast"):
        Mac(Mac("01:00:5e:00:00:01", allow_group=True))
    assert Mac("2:2:3:4:5:6") == Mac("02:02:03:04:05:06")
    assert parse_mac(" 001A.2B3C.4D5E ") == m


@pytest.mark.parametrize("text", [
    "x001a2b3c4d5e", "001a2b3c4d5ex", "x001a.2b3c.4d5e", "001a.2b3c.4d5ex",
    "x00:1a:2b:3c:4d:5e", "00:1a:2b:3c:4d:5ex", "001a2b3c4d5e\n001a2b3c4d5e",
])
def test_notations_are_anchored_at_both_ends(text: str) -> None:
    with pytest.raises(MacError, match="not a MAC address"):
        Mac(text)


def test_the_refusal_shows_the_text_cut_at_40_characters() -> None:
    hint = ("(expected e.g. 00:11:22:33:44:55, 00-11-22-33-44-55, 0011.2233.4455 or "
            "001122334455)")
    forty = "g" * 40
    with pytest.raises(MacError) as e:
        Mac(forty)
    assert str(e.value) == f"not a MAC address: {forty!r} {hint}"
    with pytest.raises(MacError) as e:
        Mac(forty + "h")
    assert str(e.value) == f"not a MAC address: {forty + '...'!r} {hint}"


@pytest.mark.parametrize(("raw", "message"), [
    ("ffffffffffff", "ff:ff:ff:ff:ff:ff is the broadcast address, not a device"),
    ("000000000000", "00:00:00:00:00:00 is the all-zero address, not a device"),
    ("03005e000001", "03:00:5e:00:00:01 is a multicast (group) address, not a device"),
])
def test_non_unicast_refusals_say_why(raw: str, message: str) -> None:
    with pytest.raises(MacError) as e:
        Mac(raw)
    assert str(e.value) == message
    assert Mac("02005e000001").packed[0] == 2  # the local bit is not the group bit


def test_comparisons_with_other_types_are_not_implemented() -> None:
    m = Mac(CANON)
    assert m.__eq__(CANON) is NotImplemented
    assert m.__lt__(CANON) is NotImplemented
    assert m != CANON
    with pytest.raises(TypeError):
        _ = m < CANON
    assert hash(m) == hash(m.packed)
    assert not Mac("00:00:00:00:00:04") < Mac("00:00:00:00:00:02")
    assert not m < Mac(CANON) and m <= Mac(CANON)
    assert str(m) == CANON


def test_pydantic_accepts_a_mac_refuses_non_strings_and_describes_the_schema() -> None:
    class _Holder(BaseModel):  # built here, so the schema hooks run inside the test
        mac: Mac

    m = Mac(CANON)
    assert _Holder(mac=m).mac is m
    with pytest.raises(ValidationError) as e:
        _Holder.model_validate({"mac": 12345})
    assert e.value.errors()[0]["msg"] == "Value error, a MAC address must be a string"
    with pytest.raises(ValidationError) as e:
        _Holder.model_validate({"mac": "nope"})
    assert e.value.errors()[0]["msg"] == "Value error, " + (
        "not a MAC address: 'nope' (expected e.g. 00:11:22:33:44:55, 00-11-22-33-44-55, "
        "0011.2233.4455 or 001122334455)")
    assert _Holder.model_validate({"mac": "001A.2B3C.4D5E"}).mac == m
    assert _Holder.model_validate_json('{"mac": "001a2b3c4d5e"}').mac == m
    assert "MacError" not in str(e.value)
    assert _Holder(mac=m).model_dump() == {"mac": CANON}
    assert _Holder(mac=m).model_dump_json() == f'{{"mac":"{CANON}"}}'
    schema = _Holder.model_json_schema()["properties"]["mac"]
    assert schema == {
        "type": "string", "title": "Mac",
        "description": "MAC address in any common notation (colon, dash, dotted, bare)",
        "examples": ["00:11:22:33:44:55"]}
