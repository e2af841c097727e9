"""Audit fixtures: a SQLite store with a settable clock and a few audited events."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from enforcer.api.testing import FakeClock
from enforcer.domain.mac import Mac
from enforcer.domain.model import DeviceKind, OrderState, Reason, Role, Scope
from enforcer.store import DeviceSpec, Evidence, OrderSpec, Store, TargetSpec, upgrade
from enforcer.store.auditkey import load_keyring


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    upgrade(url)
    return url


@pytest.fixture
def store(db_url: str, tmp_path: Path) -> Iterator[Store]:
    """Keyed with the keys in ``tmp_path/state/audit-keys`` (what a config with
    ``state_dir: tmp_path/state`` names)."""
    keys = load_keyring(tmp_path / "state" / "audit-keys")
    s = Store.from_url(db_url, clock=FakeClock(), audit_keys=keys)
    yield s
    s.dispose()


def make_order(store: Store, account: str = "ACC-1") -> str:
    spec = OrderSpec(ticket="ESC-7", account=account, reason=Reason.THREAT_OF_VIOLENCE,
                     scope=Scope.FOOTPRINT,
                     devices=(DeviceSpec(Mac("00:11:22:33:44:55"), DeviceKind.CABLE_MODEM),),
                     evidence=(Evidence("call_recording", "https://rec/77", "00:03:12"),))
    order_id = store.create_order(spec, actor="escalation-system", source="webhook")[0].id
    [t] = store.replace_targets(order_id, [TargetSpec(
        "cbr8-1", Mac("00:11:22:33:44:55"), DeviceKind.CABLE_MODEM, "cm-ctrl")])
    store.update_target(t.id, actor="engine", audit_action="target.applied", state="applied",
                        transcript="snmp set ok\nsnmp-server user enf grp v3 auth sha "
                                   "Hunter2pass priv aes 128 Pr1vPass\npassword: letmein")
    store.record_event("engine", "order.verification", order_id,
                       {"looks": [{"device": "cbr8-1", "verdict": "blocked"}]})
    store.set_order_state(order_id, OrderState.VERIFIED, actor="engine")
    return order_id


@pytest.fixture
def order_id(store: Store) -> str:
    oid = make_order(store)
    store.add_user("noise", Role.AUDITOR)  # an entry of no order in between
    other = make_order(store, account="ACC-OTHER")
    store.add_user("alice", Role.APPROVER, groups=("hs-board",))
    lift = store.request_lift(oid, requested_by="eng", reason="resolved", rule="any",
                              needed=1, electorate=["alice"])
    store.decide_lift(lift.id, approver="alice", decision="approve", note="ok",
                      evaluate=lambda _l: "approved")
    store.set_order_state(other, OrderState.LIFT_PENDING, actor="x")
    return oid
