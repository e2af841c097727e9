"""Every limit in the policy model, tested at its bound and one step past it.

The validators are pydantic-decorated and the limits are ``Field`` declarations, which
mutation testing (scripts/mutation.sh) does not mutate: these tests are what would notice
``n: ge=1`` becoming ``ge=0`` (with ``n: 0`` the first decision, even a refusal, would
approve a lift), a default changing, or a pattern losing its anchors."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from pydantic import ValidationError

from enforcer.domain.model import Reason, Scope
from enforcer.policy import (
    Delivery,
    Event,
    LiftPolicy,
    NotifyRule,
    Policy,
    ReasonPolicy,
    Rule,
    WebhookTarget,
)

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


def ok(model: type[Any], **fields: Any) -> Any:
    return model.model_validate(fields)


def bad(model: type[Any], **fields: Any) -> str:
    with pytest.raises(ValidationError) as e:
        model.model_validate(fields)
    return str(e.value)


# ---- the lift rule ---------------------------------------------------------------------

def test_n_zero_is_refused_so_a_refusal_can_never_approve_a_lift() -> None:
    assert "n" in bad(LiftPolicy, rule="n_of_m", n=0)
    assert bad(LiftPolicy, rule="n_of_m", n=-1)
    assert ok(LiftPolicy, rule="n_of_m", n=1).needed(5) == 1


def test_n_upper_bound() -> None:
    assert ok(LiftPolicy, rule="n_of_m", n=1000).n == 1000
    assert "less than or equal to 1000" in bad(LiftPolicy, rule="n_of_m", n=1001)


def test_n_belongs_to_n_of_m_only() -> None:
    assert "rule n_of_m needs n (how many approvals)" in bad(LiftPolicy, rule="n_of_m")
    assert "n is only for rule n_of_m, not any" in bad(LiftPolicy, rule="any", n=2)
    assert "n is only for rule n_of_m, not unanimous" in bad(LiftPolicy, rule="unanimous",
                                                             n=3)


@pytest.mark.parametrize(("rule", "n", "size", "needed"), [
    ("unanimous", None, 4, 4), ("unanimous", None, 1, 1), ("any", None, 4, 1),
    ("n_of_m", 3, 4, 3), ("n_of_m", 2, 9, 2)])
def test_needed(rule: str, n: int | None, size: int, needed: int) -> None:
    assert ok(LiftPolicy, rule=rule, n=n).needed(size) == needed


def test_lift_defaults_are_the_safe_ones() -> None:
    lp = ok(LiftPolicy, rule="unanimous")
    assert lp.requester_may_approve is False  # who asks never decides, unless said so
    assert lp.group is None and lp.n is None
    assert lp.time_limit_hours == 72


def test_time_limit_bounds() -> None:
    assert "greater than 0" in bad(LiftPolicy, rule="any", time_limit_hours=0)
    assert ok(LiftPolicy, rule="any", time_limit_hours=0.01).time_limit_hours == 0.01
    assert ok(LiftPolicy, rule="any", time_limit_hours=2160).time_limit_hours == 2160
    assert "less than or equal to 2160" in bad(LiftPolicy, rule="any",
                                                time_limit_hours=2160.5)


@pytest.mark.parametrize("name", ["hs-board", "A", "a" * 100, "x.y_z-1", "0board"])
def test_group_names_that_are_accepted(name: str) -> None:
    assert ok(LiftPolicy, rule="any", group=name).group == name


@pytest.mark.parametrize("name", ["", "-board", ".board", "_board", "a" * 101, "hs board",
                                  "x hs-board", "hs-board x", "hs-board\n", "\nhs-board",
                                  "hs/board", "hs-böard"])
def test_group_names_are_anchored_at_both_ends(name: str) -> None:
    assert "group" in bad(LiftPolicy, rule="any", group=name)


def test_unknown_keys_are_refused_everywhere() -> None:
    assert "Extra inputs are not permitted" in bad(LiftPolicy, rule="any", quorum=2)
    assert "Extra inputs" in bad(NotifyRule, to=["a"], when="now")
    assert "Extra inputs" in bad(Delivery, retries=3)


# ---- layers ----------------------------------------------------------------------------

def reason(**over: Any) -> dict[str, Any]:
    return {"default_scope": "node", "lift": {"rule": "any"}, **over}


def test_layers_default_and_order() -> None:
    assert ok(ReasonPolicy, **reason()).layers == ["cmts", "headend"]
    assert ok(ReasonPolicy, **reason(layers=["dhcp", "cmts"])).layers == ["dhcp", "cmts"]
    assert ok(ReasonPolicy, **reason(layers=["headend"])).layers == ["headend"]
    assert ok(ReasonPolicy, **reason()).impose == "immediately"


def test_layers_may_not_be_empty_or_repeat_or_be_unknown() -> None:
    assert "at least 1 item" in bad(ReasonPolicy, **reason(layers=[]))
    assert "layers: each layer at most once" in bad(ReasonPolicy,
                                                     **reason(layers=["cmts", "cmts"]))
    assert "each layer at most once" in bad(ReasonPolicy,
                                            **reason(layers=["dhcp", "cmts", "dhcp"]))
    assert "layers" in bad(ReasonPolicy, **reason(layers=["firewall"]))


def test_a_notify_rule_needs_a_target_and_defaults_to_every_event() -> None:
    assert "at least 1 item" in bad(NotifyRule, to=[])
    assert ok(NotifyRule, to=["noc"]).events == list(Event)
    assert "to" in bad(NotifyRule, to=["no spaces"])


# ---- webhook targets -------------------------------------------------------------------

@pytest.mark.parametrize("url", ["https://hooks.example", "http://127.0.0.1:8080/in",
                                 "https://h.example/a/b?c=d#e", "http://h/"])
def test_urls_that_are_accepted(url: str) -> None:
    assert ok(WebhookTarget, url=url, secret=SECRET).url == url


@pytest.mark.parametrize("url", ["ftp://h.example", "https://", "http:///path",
                                 "xhttps://h.example", " https://h.example",
                                 "https://h.example/a b", "https://h example",
                                 "https://h.example/\n", "https://h.example\nhttps://evil",
                                 "hooks.example/in"])
def test_urls_are_anchored_at_both_ends(url: str) -> None:
    assert "url" in bad(WebhookTarget, url=url, secret=SECRET)


def test_url_length_limit() -> None:
    base = "https://h.example/"
    assert ok(WebhookTarget, url=base + "a" * (2000 - len(base)), secret=SECRET)
    assert "at most 2000" in bad(WebhookTarget, url=base + "a" * (2001 - len(base)),
                                 secret=SECRET)


def test_timeout_bounds_and_default() -> None:
    url = "https://h.example"
    assert ok(WebhookTarget, url=url, secret=SECRET).timeout_s == 5.0
    assert "greater than 0" in bad(WebhookTarget, url=url, secret=SECRET, timeout_s=0)
    assert ok(WebhookTarget, url=url, secret=SECRET, timeout_s=60).timeout_s == 60
    assert "less than or equal to 60" in bad(WebhookTarget, url=url, secret=SECRET,
                                             timeout_s=60.5)


def test_exactly_one_secret_and_it_must_be_usable(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "https://h.example"
    assert "exactly one of secret" in bad(WebhookTarget, url=url)
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    assert "exactly one of secret" in bad(WebhookTarget, url=url, secret=SECRET,
                                          secret_env="HOOK_SECRET")
    t = ok(WebhookTarget, url=url, secret_env="HOOK_SECRET")
    assert t.key() == b"k" * 32 and t.secret_value() == SECRET
    monkeypatch.setenv("HOOK_SECRET", "")
    assert "environment variable HOOK_SECRET is not set" in bad(
        WebhookTarget, url=url, secret_env="HOOK_SECRET")
    monkeypatch.delenv("HOOK_SECRET")
    assert "environment variable HOOK_SECRET is not set" in bad(
        WebhookTarget, url=url, secret_env="HOOK_SECRET")
    assert t.secret_value() == ""  # the variable went away after loading
    for name in ("hook_secret", "1HOOK", "HOOK-SECRET", "HOOK SECRET"):
        assert "secret_env" in bad(WebhookTarget, url=url, secret_env=name)
    t = ok(WebhookTarget, url=url, secret=SECRET)
    assert t.key() == b"k" * 32 and t.secret_value() == SECRET
    assert "at least 16 bytes" in bad(
        WebhookTarget, url=url, secret="whsec_" + base64.b64encode(b"k" * 15).decode())


# ---- delivery --------------------------------------------------------------------------

@pytest.mark.parametrize(("field", "low_bad", "low_ok", "high_ok", "high_bad"), [
    ("queue_size", 0, 1, 1_000_000, 1_000_001),
    ("max_attempts", 0, 1, 100, 101),
    ("poll_s", 0, 0.001, 60, 60.5),
    ("keep_days", 0, 0.001, 3650, 3650.5),
    ("retry_base_s", 0, 0.001, 1e9, None),
    ("retry_max_s", 0, 0.001, 1e9, None),
])
def test_delivery_bounds(field: str, low_bad: float, low_ok: float, high_ok: float,
                         high_bad: float | None) -> None:
    assert field in bad(Delivery, **{field: low_bad})
    assert field in bad(Delivery, **{field: -1})
    assert getattr(ok(Delivery, **{field: low_ok}), field) == low_ok
    assert getattr(ok(Delivery, **{field: high_ok}), field) == high_ok
    if high_bad is not None:
        assert field in bad(Delivery, **{field: high_bad})


def test_delivery_defaults() -> None:
    d = Delivery()
    assert (d.queue_size, d.max_attempts, d.retry_base_s, d.retry_max_s, d.poll_s,
            d.keep_days) == (10_000, 8, 2.0, 600.0, 1.0, 7.0)


# ---- the whole policy and its routing --------------------------------------------------

def routed() -> Policy:
    """Harassment lift notices go to the board, fraud ones to the NOC; sightings of
    every reason to the NOC."""
    reasons: dict[str, Any] = {r.value: reason() for r in Reason}
    reasons["harassment"] = reason(default_scope="footprint", notify=[
        {"to": ["board"], "events": ["lift.requested", "lift.approved"]},
        {"to": ["noc"], "events": ["ban.sighting"]}])
    reasons["fraud"] = reason(notify=[{"to": ["noc", "audit"],
                                       "events": ["lift.requested"]}])
    hook = {"url": "https://h.example", "secret": SECRET}
    return Policy.model_validate(
        {"reasons": reasons, "webhooks": {"board": hook, "noc": hook, "audit": hook}})


def test_routing_is_by_reason_and_event() -> None:
    p = routed()
    assert p.targets_for("lift.requested", Reason.HARASSMENT) == ["board"]
    assert p.targets_for("lift.requested", "harassment") == ["board"]
    assert p.targets_for("lift.requested", Reason.FRAUD) == ["audit", "noc"]
    assert p.targets_for("lift.approved", Reason.FRAUD) == []
    assert p.targets_for("lift.approved", Reason.HARASSMENT) == ["board"]
    assert p.targets_for("lift.refused", Reason.HARASSMENT) == []
    assert p.targets_for("ban.sighting", Reason.HARASSMENT) == ["noc"]
    assert p.targets_for("ban.sighting", Reason.OTHER) == []
    # unknown reason: every reason's routing, sorted and without repeats
    assert p.targets_for("lift.requested", None) == ["audit", "board", "noc"]
    assert p.targets_for("ban.imposed", None) == []
    with pytest.raises(ValueError):
        p.targets_for("lift.requested", "weather")


def test_policy_level_checks() -> None:
    p = routed()
    assert p.version == 1
    assert p.default_scope(Reason.HARASSMENT) is Scope.FOOTPRINT
    assert p.for_reason("fraud") is p.reasons[Reason.FRAUD]
    assert p.secret_values() == [SECRET] * 3
    reasons: dict[str, Any] = {r.value: reason() for r in Reason}
    assert Policy.model_validate({"reasons": reasons}).secret_values() == []
    assert Policy.model_validate({"reasons": reasons}).delivery == Delivery()
    del reasons["fraud"], reasons["other"]
    assert "every reason needs a policy; missing: fraud, other" in bad(Policy,
                                                                        reasons=reasons)
    reasons = {r.value: reason() for r in Reason}
    reasons["other"] = reason(notify=[{"to": ["ghost"]}])
    assert ("reasons.other.notify: unknown webhook target 'ghost' (define it under "
            "webhooks)") in bad(Policy, reasons=reasons)
    assert "version" in bad(Policy, version=2, reasons={r.value: reason() for r in Reason})
    assert "webhooks" in bad(Policy, reasons={r.value: reason() for r in Reason},
                             webhooks={"bad name": {"url": "https://h", "secret": SECRET}})
    assert Rule("n_of_m") is Rule.N_OF_M
