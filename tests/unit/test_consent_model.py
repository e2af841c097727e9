"""Property test: random sequences of orders, amendments, lift requests and approvals,
run through the real workflows, store (SQLite) and engine (``DeviceOps``) against
in-memory devices, checked after every step against an independent model:

    a MAC forwards on a device only when every order covering it there has been lifted
    (or amended away) with the consent its governing policy demands,

and, the other way, a MAC no active order covers is not left blocked. The model knows
the policy only as a table (who may approve, how many), not the enforcer's code."""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from enforcer.amend import AmendWorkflow, Changes
from enforcer.api.testing import FakeClock
from enforcer.config import load_settings
from enforcer.domain.lifecycle import LIFT_STATES, SCANNED_FOR_BAN
from enforcer.domain.mac import Mac
from enforcer.domain.model import DeviceKind, Reason, Role, Scope, Verdict
from enforcer.drivers.base import Observation, PushResult
from enforcer.engine.device_ops import DeviceOps
from enforcer.engine.pool import DriverPool
from enforcer.inventory.model import load_inventory
from enforcer.inventory.profiles import Profile, load_profiles
from enforcer.lifts import LiftError, LiftWorkflow
from enforcer.metrics import Metrics
from enforcer.notify import LogNotifier
from enforcer.policy import parse_policy
from enforcer.store import OrderSpec, Store, upgrade
from enforcer.store.records import DeviceSpec

MACS = ["00:1d:cf:00:00:01", "00:1d:cf:00:00:02", "00:1d:cf:00:00:03"]
#: Where each modem is registered: c1 serves node n1, c2 serves n2.
HOME = {MACS[0]: "c1", MACS[1]: "c1", MACS[2]: "c2"}
NODE_OF = {"c1": "n1", "c2": "n2"}
BOARD = ["alice", "bob", "carol"]
APPROVERS = [*BOARD, "bill", "oscar", "olga"]
#: The policy as a table: electorate, approvals needed, unanimous?
RULES = {Reason.THREAT_OF_VIOLENCE: (BOARD, 3, True),
         Reason.FRAUD: (APPROVERS, 2, False),
         Reason.NON_PAYMENT: (["bill"], 1, False)}
RANK = {Reason.NON_PAYMENT: 0, Reason.FRAUD: 1, Reason.THREAT_OF_VIOLENCE: 2}

INVENTORY = """
credentials:
  c: {snmp: {version: "3", user: u, auth_password: aaaaaaaa, priv_password: bbbbbbbb}}
devices:
  c1: {kind: cmts, profile: docsis3-generic, host: 127.0.0.1, snmp_port: 1, credentials: c}
  c2: {kind: cmts, profile: docsis3-generic, host: 127.0.0.1, snmp_port: 2, credentials: c}
nodes:
  n1: {serving: [{device: c1, interfaces: [1]}]}
  n2: {serving: [{device: c2, interfaces: [1]}]}
"""


def _block_profile() -> Profile:
    """A profile whose one mechanism ``block`` is persistent and needs no reset."""
    base = load_profiles(Path(__file__).resolve().parents[2] / "device_profiles")[
        "docsis3-generic"]
    block = base.mechanisms[0].model_copy(update={
        "name": "block", "persistence": "persistent", "kick_after_apply": False,
        "immediate": None, "capacity": None})
    return base.model_copy(update={"mechanisms": [block]})


BLOCK_PROFILE = _block_profile()


class FakeDevice:
    """A CMTS that holds blocks in a set; a modem registered here forwards unless
    blocked. Every call succeeds."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.profile = BLOCK_PROFILE
        self.blocks: set[tuple[Mac, str]] = set()

    def mechanisms(self) -> list[str]:
        return ["block"]

    async def apply(self, mac: Mac, mechanism: str, *, kind: DeviceKind) -> PushResult:
        changed = (mac, mechanism) not in self.blocks
        self.blocks.add((mac, mechanism))
        return PushResult(self.name, mac, mechanism, "apply").succeed(changed)

    async def remove(self, mac: Mac, mechanism: str) -> PushResult:
        changed = (mac, mechanism) in self.blocks
        self.blocks.discard((mac, mechanism))
        return PushResult(self.name, mac, mechanism, "remove").succeed(changed)

    async def kick(self, mac: Mac) -> PushResult:
        return PushResult(self.name, mac, "kick", "kick").succeed(False)

    def blocked(self, mac: Mac) -> bool:
        return any(m == mac for m, _ in self.blocks)

    async def observe(self, mac: Mac) -> Observation:
        if HOME.get(str(mac)) != self.name:
            return Observation(self.name, mac, Verdict.ABSENT, "offline")
        if self.blocked(mac):
            return Observation(self.name, mac, Verdict.BLOCKED, "blocked")
        return Observation(self.name, mac, Verdict.FORWARDING, "online")

    async def read_back(self, mac: Mac, mechanism: str) -> bool:
        return (mac, mechanism) in self.blocks

    async def close(self) -> None:
        return None


@dataclass
class ModelOrder:
    reason: Reason
    macs: set[str]
    scope: Scope
    node: str | None
    active: bool = True
    lift: ModelLift | None = None


@dataclass
class ModelLift:
    electorate: list[str]
    needed: int
    unanimous: bool
    target: tuple[Reason, set[str], Scope, str | None] | None  # None: the whole order
    yes: set[str] = field(default_factory=set)
    no: set[str] = field(default_factory=set)


def _covers(o: ModelOrder, mac: str, device: str) -> bool:
    if not o.active or mac not in o.macs:
        return False
    return o.scope is Scope.FOOTPRINT or o.node is None or NODE_OF[device] == o.node


@pytest.fixture(scope="module")
def inventory_path() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "inventory.yaml"
        p.write_text(INVENTORY)
        yield p


class ConsentMachine(RuleBasedStateMachine):
    inv_path: Path

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.TemporaryDirectory()
        url = f"sqlite:///{self.dir.name}/m.db"
        upgrade(url)
        self.store = Store.from_url(url, clock=FakeClock())
        self.users = {}
        for name in APPROVERS:
            groups = ("hs-board",) if name in BOARD else ("billing",) if name == "bill" else ()
            self.store.add_user(name, Role.APPROVER, groups=groups)
            self.users[name] = self.store.get_user(name)
        self.store.add_user("eve", Role.ENGINEER)
        self.eve = self.store.get_user("eve")
        def lift(group: str | None, rule: str, **kw: Any) -> dict[str, Any]:
            return {"group": group, "rule": rule, "requester_may_approve": False, **kw}

        reasons = {r.value: {"default_scope": "node", "layers": ["cmts"],
                             "lift": lift(None, "n_of_m", n=2)} for r in Reason}
        reasons["threat_of_violence"] = {"default_scope": "footprint", "layers": ["cmts"],
                                         "lift": lift("hs-board", "unanimous")}
        reasons["non_payment"] = {"default_scope": "node", "layers": ["cmts"],
                                  "lift": lift("billing", "any")}
        self.policy = parse_policy({"reasons": reasons}, "model policy")
        self.lifts = LiftWorkflow(store=self.store, policy=self.policy,
                                  notifier=LogNotifier(), wake=lambda _o: None)
        self.amends = AmendWorkflow(store=self.store, policy=self.policy, lifts=self.lifts)
        self.devices = {n: FakeDevice(n) for n in ("c1", "c2")}
        cfg = load_settings(None)
        cfg = cfg.model_copy(update={"engine": cfg.engine.model_copy(update={
            "verify_timeout_s": 0.0, "verify_settle_s": 0.0, "verify_poll_s": 0.01,
            "layer_wait_s": 0.0})})
        from prometheus_client import CollectorRegistry

        self.ops = DeviceOps(
            store=self.store, inventory=load_inventory(self.inv_path),
            pool=DriverPool(lambda n: self.devices[n]),  # type: ignore[arg-type,return-value]
            settings=cfg, metrics=Metrics(CollectorRegistry()),
            policy_layers=lambda r: list(self.policy.for_reason(r).layers))
        self.model: dict[str, ModelOrder] = {}

    def teardown(self) -> None:
        self.store.dispose()
        self.dir.cleanup()

    # ---- the engine, run to a fixed point ---------------------------------------------

    def _engine(self) -> None:
        async def run() -> None:
            for _ in range(3):
                for o in self.store.list_orders(limit=1000):
                    for device in ("c1", "c2"):
                        # As the device loops do (enforcer.engine.runner): an order
                        # waiting for a lift's consent is still enforced.
                        if o.state in SCANNED_FOR_BAN:
                            await self.ops.scan_ban(o, device)
                        elif o.state in LIFT_STATES:
                            await self.ops.scan_lift(o, device)
                        o = self.store.get_order(o.id)
        asyncio.run(run())

    # ---- rules ----------------------------------------------------------------------

    @rule(reason=st.sampled_from(list(RULES)), macs=st.sets(st.sampled_from(MACS), min_size=1,
                                                              max_size=2),
          footprint=st.booleans(), node=st.sampled_from(["n1", "n2"]))
    def file_order(self, reason: Reason, macs: set[str], footprint: bool, node: str) -> None:
        if len(self.model) >= 6:
            return
        scope = Scope.FOOTPRINT if footprint else Scope.NODE
        order, _ = self.store.create_order(OrderSpec(
            ticket="T", account="A", reason=reason, scope=scope, node=node,
            devices=tuple(DeviceSpec(Mac(m), DeviceKind.CABLE_MODEM) for m in sorted(macs))),
            actor="eve", source="api")
        self.model[order.id] = ModelOrder(reason, set(macs), scope, node)
        self._engine()

    def _open(self) -> list[str]:
        return [i for i, o in self.model.items() if o.active]

    @precondition(lambda self: any(o.active and o.lift is None for o in self.model.values()))
    @rule(data=st.data())
    def request_lift(self, data: st.DataObject) -> None:
        oid = data.draw(st.sampled_from([i for i, o in self.model.items()
                                         if o.active and o.lift is None]))
        self.lifts.request(oid, self.eve, reason="settled")
        m = self.model[oid]
        electorate, needed, unanimous = RULES[m.reason]
        m.lift = ModelLift(list(electorate), needed, unanimous, None)

    @precondition(lambda self: any(o.active for o in self.model.values()))
    @rule(data=st.data(), reason=st.sampled_from(list(RULES)), drop=st.booleans(),
          add=st.sampled_from(MACS), widen=st.booleans())
    def amend(self, data: st.DataObject, reason: Reason, drop: bool, add: str,
              widen: bool) -> None:
        oid = data.draw(st.sampled_from(self._open()))
        m = self.model[oid]
        if m.lift is not None and m.lift.target is not None:
            return  # one request at a time: an open amendment waits
        remove = sorted(m.macs)[:1] if drop and len(m.macs) > 1 else []
        extra = [add] if add not in m.macs else []
        scope = None if not widen else (Scope.NODE if m.scope is Scope.FOOTPRINT
                                        else Scope.FOOTPRINT)
        ch = Changes(reason=reason if reason is not m.reason else None, scope=scope,
                     add_devices=tuple((Mac(a), DeviceKind.CABLE_MODEM, None) for a in extra),
                     remove_macs=tuple(Mac(r) for r in remove))
        # The model's own view of up and down.
        up_reason = ch.reason is not None and RANK[reason] > RANK[m.reason]
        up_scope = scope is Scope.FOOTPRINT
        downs = bool(remove) or (ch.reason is not None and not up_reason) or \
            scope is Scope.NODE
        ups = bool(extra) or up_reason or up_scope
        if not ups and not downs:
            with pytest.raises(LiftError):
                self.amends.amend(oid, self.eve, ch, may_downgrade=True)
            return
        if downs and m.lift is not None and not ups:
            with pytest.raises(LiftError):  # a lift request is open already
                self.amends.amend(oid, self.eve, ch, may_downgrade=True)
            return
        res = self.amends.amend(oid, self.eve, ch, may_downgrade=True)
        if ups:
            m.lift = None  # superseded
            if up_reason:
                m.reason = reason
            if up_scope:
                m.scope = Scope.FOOTPRINT
            m.macs |= set(extra)
        if downs:
            assert res.pending is not None
            electorate, needed, unanimous = RULES[m.reason]
            assert sorted(res.pending.electorate or ()) == sorted(electorate)
            final = (reason if ch.reason is not None else m.reason,
                     m.macs - set(remove), scope or m.scope, m.node)
            m.lift = ModelLift(list(electorate), needed, unanimous, final)
        else:
            assert res.pending is None
        self._engine()

    @precondition(lambda self: any(o.lift is not None for o in self.model.values()))
    @rule(data=st.data(), who=st.sampled_from(APPROVERS), yes=st.booleans())
    def decide(self, data: st.DataObject, who: str, yes: bool) -> None:
        oid = data.draw(st.sampled_from([i for i, o in self.model.items()
                                         if o.lift is not None]))
        m = self.model[oid]
        lift = m.lift
        assert lift is not None
        decision = "approve" if yes else "refuse"
        if who not in lift.electorate or who in lift.yes | lift.no:
            with pytest.raises(LiftError):
                self.lifts.decide(oid, self.users[who], decision=decision)
            return
        _, outcome = self.lifts.decide(oid, self.users[who], decision=decision)
        (lift.yes if yes else lift.no).add(who)
        expected = "recorded"
        if lift.unanimous and lift.no:
            expected = "refused"
        elif len(lift.yes) >= lift.needed:
            expected = "approved"
        elif len(lift.electorate) - len(lift.no) < lift.needed:
            expected = "refused"
        assert outcome == expected, (outcome, expected, lift)
        if outcome == "approved":
            if lift.target is None:
                m.active = False
            else:
                m.reason, m.macs, m.scope, m.node = lift.target
            m.lift = None
        elif outcome == "refused":
            m.lift = None
        self._engine()

    # ---- the property -----------------------------------------------------------------

    @invariant()
    def forwards_only_with_consent(self) -> None:
        for mac, home in HOME.items():
            covered = [oid for oid, o in self.model.items() if _covers(o, mac, home)]
            blocked = self.devices[home].blocked(Mac(mac))
            assert blocked == bool(covered), (
                f"{mac} on {home}: blocked={blocked}, covering orders={covered}, "
                f"model={json.dumps({k: str(v) for k, v in self.model.items()})}")


@pytest.mark.slow
def test_consent_model(inventory_path: Path) -> None:
    ConsentMachine.inv_path = inventory_path
    machine: Any = ConsentMachine.TestCase
    # No shrinking: a failure prints its whole (unshrunk) sequence of steps at once.
    machine.settings = settings(max_examples=20, stateful_step_count=14, deadline=None,
                                phases=[Phase.explicit, Phase.reuse, Phase.generate],
                                suppress_health_check=[HealthCheck.too_slow])
    machine().runTest()
