"""Webhook authenticity: replays, clock skew, tampering, key rotation, and properties
of the signature check (hypothesis): it accepts exactly the correctly signed message
inside the time window, never raises anything but SignatureError, and compares every
candidate in constant time (no early exit)."""

from __future__ import annotations

import base64
import hmac
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enforcer.api.signature import SignatureError, sign, verify
from tests.api.api_env import KEY_NEW, KEY_OLD, Env, order_body
from tests.reliability.harness import record

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
TOL = 300
FUZZ: dict[str, int] = {"signature_property_cases": 0}


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    record("fuzz_webhook_signature", dict(FUZZ))


async def test_replay_returns_the_same_order_and_creates_nothing(env: Env) -> None:
    first = await env.hook(order_body(), msg_id="msg_replay")
    assert first.status_code == 202 and first.json()["created"] is True
    for _ in range(3):
        again = await env.hook(order_body(), msg_id="msg_replay")
        assert again.status_code == 202
        assert again.json() == {**first.json(), "created": False}
    assert len(env.store.list_orders()) == 1
    other = await env.hook(order_body(ticket="CHANGED"), msg_id="msg_replay")
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_conflict"
    assert len(env.store.list_orders()) == 1
    assert env.refusals()[-1]["webhook_id"] == "msg_replay"


async def test_a_captured_message_cannot_be_replayed_after_the_window(env: Env) -> None:
    raw, headers = env.signed(order_body(), msg_id="msg_captured")
    env.clock.advance(TOL + 1)  # the attacker replays it six minutes later
    r = await env.client.post("/v1/hooks/escalation", content=raw, headers=headers)
    assert r.status_code == 401 and r.json()["error"]["code"] == "stale_timestamp"
    assert env.store.list_orders() == []


@pytest.mark.parametrize(("skew", "ok"), [(-TOL - 2, False), (-TOL + 1, True), (-1, True),
                                          (0, True), (TOL - 1, True), (TOL + 2, False),
                                          (10 ** 9, False), (-10 ** 9, False)])
async def test_clock_skew(env: Env, skew: int, ok: bool) -> None:
    ts = int(env.clock().timestamp()) + skew
    r = await env.hook(order_body(), msg_id=f"msg_skew_{skew}", ts=max(ts, 0))
    assert (r.status_code == 202) is ok, r.text
    if not ok:
        assert r.json()["error"]["code"] == "stale_timestamp"
        assert env.store.list_orders() == []


async def test_changing_the_timestamp_or_id_breaks_the_signature(env: Env) -> None:
    raw, headers = env.signed(order_body(), msg_id="msg_a")
    for change in ({"webhook-id": "msg_b"},
                   {"webhook-timestamp": str(int(headers["webhook-timestamp"]) - 1)}):
        r = await env.client.post("/v1/hooks/escalation", content=raw,
                                  headers={**headers, **change})
        assert r.status_code == 401 and r.json()["error"]["code"] == "bad_signature"
    r = await env.client.post("/v1/hooks/escalation", content=raw + b" ", headers=headers)
    assert r.status_code == 401
    assert env.store.list_orders() == []


async def test_refusals_do_not_record_the_signature_or_body(env: Env) -> None:
    raw, headers = env.signed(order_body(note="secret-note-xyz"), msg_id="msg_x",
                              key=b"k" * 32)
    r = await env.client.post("/v1/hooks/escalation", content=raw, headers=headers)
    assert r.status_code == 401
    entry = repr(env.refusals()[-1])
    assert headers["webhook-signature"].split(",", 1)[1] not in entry
    assert "secret-note-xyz" not in entry
    assert "secret-note-xyz" not in r.text


def _check(**kw: Any) -> None:
    args: dict[str, Any] = {"keys": [KEY_NEW, KEY_OLD], "webhook_id": "msg_1",
                            "timestamp": str(int(NOW.timestamp())), "signature": None,
                            "body": b"{}", "now": NOW, "tolerance_s": TOL}
    args.update(kw)
    verify(**args)


header_text = st.one_of(st.none(), st.text(max_size=300),
                        st.text(alphabet="v1,=+/ abcdefABCDEF0123456789", max_size=120))


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(wid=header_text, ts=header_text, sig=header_text, body=st.binary(max_size=200))
def test_arbitrary_headers_only_ever_raise_signature_error(
        wid: str | None, ts: str | None, sig: str | None, body: bytes) -> None:
    FUZZ["signature_property_cases"] += 1
    with pytest.raises(SignatureError):
        _check(webhook_id=wid, timestamp=ts, signature=sig, body=body)


@settings(max_examples=300, deadline=None)
@given(wid=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1,
                   max_size=200),
       body=st.binary(max_size=500), skew=st.integers(-TOL, TOL),
       key_index=st.integers(0, 1), flip=st.integers(0, 31), extra=st.integers(0, 2))
def test_exactly_the_right_signature_is_accepted(wid: str, body: bytes, skew: int,
                                                 key_index: int, flip: int,
                                                 extra: int) -> None:
    FUZZ["signature_property_cases"] += 1
    key = (KEY_NEW, KEY_OLD)[key_index]
    ts = str(int(NOW.timestamp()) + skew)
    good = sign(key, wid, ts, body)
    decoy = sign(b"z" * 32, wid, ts, body)
    _check(webhook_id=wid, timestamp=ts, body=body, signature=" ".join(
        [decoy] * extra + [good]))
    digest = bytearray(base64.b64decode(good.removeprefix("v1,")))
    digest[flip] ^= 0x01
    bad = "v1," + base64.b64encode(bytes(digest)).decode()
    with pytest.raises(SignatureError) as e:
        _check(webhook_id=wid, timestamp=ts, body=body, signature=bad)
    assert e.value.code == "bad_signature"
    with pytest.raises(SignatureError):
        _check(webhook_id=wid, timestamp=ts, body=body + b"x", signature=good)
    with pytest.raises(SignatureError):  # another version tag is not v1
        _check(webhook_id=wid, timestamp=ts, body=body, signature="v2" + good[2:])


def test_comparison_is_constant_time_with_no_early_exit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every configured key is compared with every offered signature through
    hmac.compare_digest, even after a match: the time taken does not say which key
    matched or how many bytes of a guess were right."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr("hmac.compare_digest", spy)
    ts = str(int(NOW.timestamp()))
    good = sign(KEY_NEW, "msg_1", ts, b"{}")
    _check(timestamp=ts, signature=f"{good} v1,AAAA v1,BBBB")
    assert len(calls) == 2 * 3  # 2 keys x 3 signatures, none skipped after the match
    calls.clear()
    with pytest.raises(SignatureError):
        _check(timestamp=ts, signature="v1,AAAA")
    assert len(calls) == 2


def test_token_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Any) -> None:
    from enforcer.domain.model import Role
    from enforcer.store import Store, upgrade

    url = f"sqlite:///{tmp_path / 'u.db'}"
    upgrade(url)
    store = Store.from_url(url)
    try:
        _, token = store.add_user("someone", Role.AUDITOR)
        calls: list[int] = []
        real = hmac.compare_digest

        def spy(a: Any, b: Any) -> bool:
            calls.append(1)
            return real(a, b)

        monkeypatch.setattr("hmac.compare_digest", spy)
        assert store.authenticate(token) is not None
        assert store.authenticate(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
        assert len(calls) == 2  # the stored hash is compared, never the token itself
    finally:
        store.dispose()


def test_skew_window_is_symmetric_at_the_boundary() -> None:
    for skew, ok in ((TOL, True), (-TOL, True), (TOL + 1, False), (-TOL - 1, False)):
        ts = str(int((NOW + timedelta(seconds=skew)).timestamp()))
        sig = sign(KEY_OLD, "msg_1", ts, b"{}")
        if ok:
            _check(timestamp=ts, signature=sig)
        else:
            with pytest.raises(SignatureError, match="from our clock"):
                _check(timestamp=ts, signature=sig)
