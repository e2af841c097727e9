"""Policy loading and validation: the built-in policy, the story's example, and errors
that name the bad key."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from enforcer.config import Settings
from enforcer.domain.model import Reason, Scope
from enforcer.errors import ConfigError
from enforcer.policy import Rule, builtin_policy, load_policy, parse_policy, policy_for

ROOT = Path(__file__).resolve().parents[2]
SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


def _doc(**over: Any) -> dict[str, Any]:
    rp = {"default_scope": "node", "lift": {"rule": "any"}}
    doc: dict[str, Any] = {"reasons": {r.value: dict(rp) for r in Reason}}
    doc.update(over)
    return doc


def test_builtin_policy() -> None:
    p = builtin_policy()
    tov = p.for_reason(Reason.THREAT_OF_VIOLENCE)
    assert tov.impose == "immediately" and tov.default_scope is Scope.FOOTPRINT
    assert tov.lift.group == "hs-board" and tov.lift.rule is Rule.UNANIMOUS
    assert not tov.lift.requester_may_approve
    assert p.default_scope(Reason.FRAUD) is Scope.NODE
    assert p.for_reason("fraud").lift.needed(5) == 2
    assert policy_for(Settings()) is p
    # Separation of duties: every reason names its approving group (approvers and
    # groups are made only on the daemon's host), none falls back to "any approver".
    assert {r: p.for_reason(r).lift.group for r in Reason} == {
        r: "hs-board" if r in (Reason.THREAT_OF_VIOLENCE, Reason.HARASSMENT)
        else "lift-approvers" for r in Reason}


def test_story_example(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BOARD", "UNION", "NOC"):
        monkeypatch.setenv(f"ENFORCER_HOOK_{name}_SECRET", SECRET)
    p = load_policy(ROOT / "examples" / "policy.yaml")
    lift = p.for_reason(Reason.HARASSMENT).lift
    assert (lift.group, lift.rule, lift.time_limit_hours) == ("hs-board", Rule.UNANIMOUS, 72)
    assert lift.needed(3) == 3 and not lift.requester_may_approve
    assert p.targets_for("lift.requested", Reason.THREAT_OF_VIOLENCE) == ["board", "noc",
                                                                          "union"]
    assert p.targets_for("ban.sighting", Reason.THREAT_OF_VIOLENCE) == ["noc"]
    assert p.targets_for("lift.requested", Reason.FRAUD) == []
    assert p.targets_for("ban.sighting", None) == ["noc"]
    assert p.webhooks["board"].key() == b"k" * 32
    assert SECRET in p.secret_values()


def test_example_needs_its_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENFORCER_HOOK_BOARD_SECRET", raising=False)
    with pytest.raises(ConfigError, match="ENFORCER_HOOK_BOARD_SECRET is not set"):
        load_policy(ROOT / "examples" / "policy.yaml")


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d["reasons"].pop("fraud"), "missing: fraud"),
    (lambda d: d.update(colour="red"), "colour: unknown key"),
    (lambda d: d["reasons"]["fraud"]["lift"].update(rule="n_of_m"), "needs n"),
    (lambda d: d["reasons"]["fraud"]["lift"].update(n=2), "n is only for rule n_of_m"),
    (lambda d: d["reasons"]["fraud"]["lift"].update(rule="majority"), "reasons.fraud.lift.rule"),
    (lambda d: d["reasons"]["fraud"].update(impose="after_review"), "reasons.fraud.impose"),
    (lambda d: d["reasons"]["fraud"].update(default_scope="planet"),
     "reasons.fraud.default_scope"),
    (lambda d: d["reasons"]["fraud"]["lift"].update(time_limit_hours=0), "time_limit_hours"),
    (lambda d: d["reasons"]["fraud"].update(notify=[{"to": ["nobody"]}]),
     "unknown webhook target 'nobody'"),
    (lambda d: d.update(webhooks={"x": {"url": "https://x.example", "secret": "nope"}}),
     "starts with 'whsec_'"),
    (lambda d: d.update(webhooks={"x": {"url": "ftp://x", "secret": SECRET}}), "webhooks.x.url"),
    (lambda d: d.update(webhooks={"x": {"url": "https://x.example"}}), "exactly one"),
])
def test_invalid_policies_name_the_key(mutate: Any, message: str) -> None:
    doc = _doc()
    doc["reasons"] = {k: {**v, "lift": dict(v["lift"])} for k, v in doc["reasons"].items()}
    mutate(doc)
    with pytest.raises(ConfigError) as e:
        parse_policy(doc, "p.yaml")
    assert message in str(e.value) and str(e.value).startswith("p.yaml: ")


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read policy file"):
        load_policy(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("reasons: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_policy(bad)
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_policy(bad)
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(_doc()))
    assert load_policy(good).for_reason("other").lift.rule is Rule.ANY
    assert policy_for(Settings(policy=good)).for_reason("other").lift.needed(4) == 1
