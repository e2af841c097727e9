"""Users and tokens, lift requests and approvals, migrations."""

from __future__ import annotations

from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from enforcer.api.testing import FakeClock
from enforcer.domain.mac import Mac
from enforcer.domain.model import DeviceKind, OrderState, Reason, Role, Scope
from enforcer.store import Conflict, DeviceSpec, NotFound, OrderSpec, Store, upgrade
from enforcer.store.schema import Base
from enforcer.store.users import token_digest


def test_add_user_and_authenticate(store: Store) -> None:
    user, token = store.add_user("alice", Role.ENGINEER)
    assert token.startswith(f"enf_{user.token_prefix}_")
    assert store.authenticate(token) == user
    assert store.authenticate(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert store.authenticate("garbage") is None
    assert store.authenticate(f"enf_{user.token_prefix}_{'x' * 43}") is None
    with store.read_session() as s:
        from sqlalchemy import text
        row = s.execute(text("SELECT token_hash FROM users WHERE name = 'alice'")).one()
    assert row[0] == token_digest(token) and token not in row[0]
    entry = store.audit_entries(action="user.added")[0]
    assert token not in str(entry.payload) and entry.payload["role"] == "engineer"


def test_duplicate_and_bad_names(store: Store) -> None:
    store.add_user("bob", Role.ADMIN)
    with pytest.raises(Conflict):
        store.add_user("bob", Role.AUDITOR)
    with pytest.raises(ValueError):
        store.add_user("bad name", Role.AUDITOR)
    with pytest.raises(ValueError):
        store.add_user("carol", "wizard")  # type: ignore[arg-type]


def test_expired_and_disabled_tokens(store: Store, clock: FakeClock) -> None:
    _, token = store.add_user("temp", Role.AUDITOR, expires_at=clock.now + timedelta(hours=1))
    assert store.authenticate(token) is not None
    clock.advance(3600)
    assert store.authenticate(token) is None
    _, token2 = store.add_user("gone", Role.AUDITOR)
    store.disable_user("gone", actor="admin")
    assert store.authenticate(token2) is None
    assert [u.name for u in store.list_users()] == ["gone", "temp"]
    with pytest.raises(NotFound):
        store.get_user("nobody")


def _order(store: Store) -> str:
    spec = OrderSpec("T", "A", Reason.HARASSMENT, Scope.FOOTPRINT,
                     (DeviceSpec(Mac("00:11:22:33:44:55"), DeviceKind.CABLE_MODEM),))
    return store.create_order(spec, actor="a", source="api")[0].id


def test_lift_request_and_approvals(store: Store, clock: FakeClock) -> None:
    order_id = _order(store)
    lift = store.request_lift(order_id, requested_by="eng", reason="resolved")
    assert lift.state == "open" and lift.id.startswith("lift_")
    assert store.get_order(order_id).state is OrderState.LIFT_PENDING
    assert store.open_lift_request(order_id) == lift
    with pytest.raises(Conflict):
        store.request_lift(order_id, requested_by="eng", reason="again")
    lift = store.record_approval(lift.id, approver="ann", decision="approve")
    lift = store.record_approval(lift.id, approver="ben", decision="refuse", note="no")
    assert [(a.approver, a.decision) for a in lift.approvals] == [
        ("ann", "approve"), ("ben", "refuse")]
    assert lift.state == "open"  # rules are the policy's job: nothing is lifted here
    assert store.get_order(order_id).state is OrderState.LIFT_PENDING
    with pytest.raises(Conflict):
        store.record_approval(lift.id, approver="ann", decision="approve")
    with pytest.raises(ValueError):
        store.record_approval(lift.id, approver="cat", decision="maybe")
    with pytest.raises(NotFound):
        store.record_approval("lift_nope", approver="cat", decision="approve")
    actions = [e.action for e in store.audit_entries(order_id=order_id)]
    assert actions == ["order.accepted", "lift.requested", "lift.approval", "lift.approval"]


def test_expired_lift_request(store: Store, clock: FakeClock) -> None:
    order_id = _order(store)
    lift = store.request_lift(order_id, requested_by="eng", reason="r",
                              ttl=timedelta(minutes=5))
    clock.advance(301)
    lift = store.record_approval(lift.id, approver="ann", decision="approve")
    assert lift.state == "expired" and lift.approvals == ()
    with pytest.raises(Conflict):
        store.record_approval(lift.id, approver="ann", decision="approve")


def test_lift_refused_for_unknown_or_lifted_order(store: Store) -> None:
    with pytest.raises(NotFound):
        store.request_lift("ord_nope", requested_by="e", reason="r")
    order_id = _order(store)
    store.set_order_state(order_id, OrderState.LIFTED, actor="engine")
    with pytest.raises(Conflict):
        store.request_lift(order_id, requested_by="e", reason="r")


def test_migrations_match_the_models_and_are_idempotent(store: Store, db_url: str) -> None:
    upgrade(db_url)  # again: no-op
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    assert store.ping()


def test_ping_fails_when_the_database_is_unreachable() -> None:
    s = Store.from_url("postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2")
    try:
        assert s.ping() is False
    finally:
        s.dispose()
