"""Structured logs: with ``log.json`` the daemon writes one JSON object per line, and a
ban filed through the webhook can be followed by its order id through intake, push,
verify and the audit trail."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.ops.conftest import OpsDaemon

pytestmark = [pytest.mark.lab]


def _records(ops: OpsDaemon) -> list[dict[str, Any]]:
    lines = [ln for ln in ops.daemon.log_path.read_text().splitlines() if ln.strip()]
    assert lines, "the daemon logged nothing"
    out = []
    for ln in lines:
        try:
            doc = json.loads(ln)
        except ValueError:
            raise AssertionError(f"not a JSON log line: {ln[:300]}") from None
        assert isinstance(doc, dict), ln
        out.append(doc)
    return out


def test_every_line_is_a_json_object_with_the_documented_fields(ops_daemon: OpsDaemon) -> None:
    records = _records(ops_daemon)
    for doc in records:
        assert {"at", "level", "logger", "message", "order_id"} <= doc.keys(), doc
        assert doc["level"] in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}, doc
    assert any(d["message"].startswith("enforcer listening on") for d in records)


def test_order_id_carried_through_intake_push_verify_and_audit(ops_daemon: OpsDaemon) -> None:
    oid = ops_daemon.order_id
    mine = [d for d in _records(ops_daemon) if d["order_id"] == oid]
    events = {d.get("event") for d in mine}
    # intake (API), push and verify (engine), and the audit entries each step wrote
    assert {"order.accepted", "target.applied", "order.verified", "audit"} <= events, mine
    by_event = {d["event"]: d for d in mine if d.get("event")}
    assert by_event["order.accepted"]["logger"] == "enforcer.api.intake"
    assert by_event["order.accepted"]["source"] == "webhook"
    assert by_event["order.accepted"]["reason"] == "threat_of_violence"
    push = by_event["target.applied"]
    assert push["logger"].startswith("enforcer.engine.")
    assert push["device"] == "casa-1" and push["mac"] == ops_daemon.mac
    verified = by_event["order.verified"]
    assert verified["logger"].startswith("enforcer.engine.")
    assert isinstance(verified["time_to_verified_s"], float)
    assert verified["time_to_verified_s"] >= 0
    audited = {d["audit_action"] for d in mine if d.get("event") == "audit"}
    assert {"order.accepted", "target.applied", "target.verified", "order.state"} <= audited, \
        audited
    # The steps appear in order: accepted before the push, the push before verified.
    at = {e: min(d["at"] for d in mine if d.get("event") == e)
          for e in ("order.accepted", "target.applied", "order.verified")}
    assert at["order.accepted"] <= at["target.applied"] <= at["order.verified"], at


def test_no_webhook_secret_in_the_log(ops_daemon: OpsDaemon) -> None:
    text = ops_daemon.daemon.log_path.read_text()
    assert ops_daemon.daemon.secret not in text
    assert ops_daemon.daemon.secret.removeprefix("whsec_") not in text
