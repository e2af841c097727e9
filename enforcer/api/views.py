"""JSON views of store records."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from enforcer.domain.coverage import strictest
from enforcer.policy import Policy
from enforcer.store import (
    AuditRecord,
    LiftRequestRecord,
    OrderRecord,
    TargetRecord,
    UserRecord,
)


def ts(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def _since(start: datetime, end: datetime | None) -> float | None:
    return round((end - start).total_seconds(), 3) if end else None


def order_summary(o: OrderRecord) -> dict[str, Any]:
    return {
        "id": o.id, "ticket": o.ticket, "account": o.account, "reason": o.reason.value,
        "scope": o.scope.value, "node": o.node, "state": o.state.value,
        "state_detail": o.state_detail, "source": o.source, "created_by": o.created_by,
        "requested_by": o.requested_by, "created_at": ts(o.created_at),
        "updated_at": ts(o.updated_at), "enforced_at": ts(o.enforced_at),
        "verified_at": ts(o.verified_at), "lifted_at": ts(o.lifted_at),
        "time_to_verified_s": _since(o.created_at, o.verified_at),
        "devices": [{"mac": str(d.mac), "kind": d.kind.value,
                     "ecm_mac": str(d.ecm_mac) if d.ecm_mac else None} for d in o.devices],
        "all_devices": o.all_devices,
    }


def target(t: TargetRecord, order_created: datetime) -> dict[str, Any]:
    return {
        "id": t.id, "device": t.device, "mac": str(t.mac), "device_kind": t.device_kind.value,
        "mechanism": t.mechanism, "state": t.state.value, "attempts": t.attempts,
        "last_error": t.last_error, "next_attempt_at": ts(t.next_attempt_at),
        "applied_at": ts(t.applied_at), "verified_at": ts(t.verified_at),
        "removed_at": ts(t.removed_at), "verdict": t.verdict,
        "transcript_sha256": t.transcript_sha256,
        "time_to_verified_s": _since(order_created, t.verified_at),
    }


def lift(r: LiftRequestRecord) -> dict[str, Any]:
    return {
        "id": r.id, "order_id": r.order_id, "requested_by": r.requested_by,
        "reason": r.reason, "state": r.state, "created_at": ts(r.created_at),
        "expires_at": ts(r.expires_at), "on_behalf_of": r.on_behalf_of, "group": r.group,
        "rule": r.rule, "needed": r.needed,
        "electorate": list(r.electorate) if r.electorate is not None else None,
        "decided_at": ts(r.decided_at),
        "approvals": [{"approver": a.approver, "decision": a.decision, "note": a.note,
                       "created_at": ts(a.created_at)} for a in r.approvals],
    }


def order_detail(o: OrderRecord, targets: list[TargetRecord],
                 lifts: list[LiftRequestRecord],
                 layer_of: Callable[[str], str] | None = None) -> dict[str, Any]:
    out = order_summary(o)
    out.update({
        "note": o.note,
        "evidence": [e.as_dict() for e in o.evidence],
        "targets": [target(t, o.created_at) for t in targets],
        "lift_requests": [lift(r) for r in lifts],
    })
    if layer_of is not None:
        out["layers"] = layers(targets, layer_of)
    return out


def layers(targets: list[TargetRecord], layer_of: Callable[[str], str]) -> dict[str, Any]:
    """Which enforcement layers (dhcp, cmts, headend) hold the ban, and which are
    verified: targets grouped by the kind of device they are on."""
    out: dict[str, dict[str, int]] = {}
    for t in targets:
        if t.state.value == "removed":
            continue
        try:
            name = layer_of(t.device)
        except KeyError:
            name = "unknown"
        row = out.setdefault(name, {"targets": 0, "applied": 0, "verified": 0})
        row["targets"] += 1
        row["applied"] += t.state.value in ("applied", "verified")
        row["verified"] += t.state.value == "verified"
    return {k: {**v, "holds": v["applied"] == v["targets"],
                "verified_all": v["verified"] == v["targets"]} for k, v in out.items()}


def user(u: UserRecord) -> dict[str, Any]:
    return {"name": u.name, "role": u.role.value, "token_prefix": u.token_prefix,
            "created_at": ts(u.created_at), "disabled": u.disabled,
            "expires_at": ts(u.expires_at), "groups": list(u.groups)}


def _macs(o: OrderRecord) -> list[str]:
    out: list[str] = []
    for d in o.devices:
        out.append(str(d.mac))
        if d.ecm_mac is not None:
            out.append(str(d.ecm_mac))
    return out


def consent(policy: Policy, o: OrderRecord) -> dict[str, Any]:
    lp = policy.for_reason(o.reason).lift
    return {"group": lp.group, "rule": lp.rule.value, "n": lp.n}


def holding(policy: Policy, covering: list[OrderRecord]) -> list[dict[str, Any]]:
    """The active orders that hold a MAC, each with who must consent to its lift."""
    return [{"order_id": o.id, "reason": o.reason.value, "state": o.state.value,
             "ticket": o.ticket, "consent": consent(policy, o)} for o in covering]


def coverage(o: OrderRecord, covering: list[OrderRecord], policy: Policy
             ) -> list[dict[str, Any]]:
    """For each MAC of the order: every active order holding it, and what must happen
    before it forwards again (each of them lifted, each with its own consent; the
    strictest of those policies governs)."""
    out = []
    for mac in _macs(o):
        holders = [c for c in covering if mac in _macs(c)]
        gov = strictest([c.reason for c in holders], lambda r: policy.for_reason(r).lift)
        governing = None
        if gov is not None:
            lp = policy.for_reason(gov).lift
            governing = {"reason": gov.value, "group": lp.group, "rule": lp.rule.value,
                         "n": lp.n}
        out.append({
            "mac": mac, "orders": holding(policy, holders), "governing": governing,
            "forwards_again_when": (
                "every order listed is lifted, each with its own consent"
                if holders else "no active order holds it")})
    return out


def breaches(entries: list[AuditRecord]) -> dict[str, Any]:
    """Times a MAC of the order was seen forwarding under the verified ban."""
    return {"count": len(entries),
            "recent": [{"at": ts(e.at), "device": e.payload.get("device"),
                        "mac": e.payload.get("mac"), "state": e.payload.get("state"),
                        "source": e.payload.get("source")} for e in entries[-10:]]}


def device_origins(accepted: list[AuditRecord], amended: list[AuditRecord]
                   ) -> dict[str, dict[str, Any]]:
    """Where each device of an order came from, by its audit entries: the order as filed,
    the account's links when it was filed (``all_devices``), or an amendment (by whom,
    when: the provisioning feed's for a device linked later)."""
    out: dict[str, dict[str, Any]] = {}
    for e in accepted:
        for d in e.payload.get("devices") or []:
            out[str(d.get("mac"))] = {"source": "order", "by": e.actor, "at": ts(e.at)}
        for d in e.payload.get("linked_devices") or []:
            out[str(d.get("mac"))] = {"source": "account link", "by": e.actor,
                                      "at": ts(e.at)}
    for e in amended:
        before = {str(d.get("mac")) for d in (e.payload.get("before") or {}).get("devices", [])}
        for d in (e.payload.get("after") or {}).get("devices", []):
            mac = str(d.get("mac"))
            if mac not in before:
                out[mac] = {"source": "provisioning feed" if e.actor == "provisioning"
                            else "amendment", "by": e.actor, "at": ts(e.at),
                            "note": e.payload.get("note")}
    return out
