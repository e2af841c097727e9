"""Consent holds per MAC, on the lab: a second, weaker order on the same MAC, an
amendment or an ``on_behalf_of`` never gives service back without the board. Judged by
the lab's ground truth sampled every half second for the whole test, not only at the
end. Real daemon (``enforcer serve``), real lab, real SNMP and SSH."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lab.demo import send_webhook
from lab.testing import LabHandle, running_lab
from tests.conftest import Daemon, start_daemon, stop_daemon

pytestmark = [pytest.mark.lab, pytest.mark.slow]

TOPOLOGY = """
name: consent
timings: {retry_s: 0.3, reboot_s: 0.8, reboot_spread_s: 0.3, offline_retention_s: 5,
          stb_check_s: 0.3}
devices:
  - name: cbr8-1
    dialect: cisco-cbr8
    nodes: [{name: node-a1, modems: 6, set_tops: 2}, {name: node-a2, modems: 4}]
  - name: e6000-1
    dialect: arris-e6000
    deny_capacity: 20
    nodes: [{name: node-b1, modems: 6}]
  - name: dncs-1
    dialect: dncs-headend
subscribers:
  - account: S1
    headend: dncs-1
    devices:
      - {kind: cable_modem, mac: "00:1d:cf:10:00:01", cmts: cbr8-1, node: node-a1}
      - {kind: set_top, mac: "00:02:de:10:00:02", ecm_mac: "00:02:de:10:00:03",
         cmts: cbr8-1, node: node-a1}
  - account: S2
    devices: [{kind: cable_modem, mac: "00:1d:cf:20:00:01", cmts: e6000-1, node: node-b1}]
  - account: S3
    devices: [{kind: cable_modem, mac: "00:1d:cf:30:00:01", cmts: cbr8-1, node: node-a2}]
  - account: S4
    headend: dncs-1
    devices:
      - {kind: cable_modem, mac: "00:1d:cf:40:00:01", cmts: cbr8-1, node: node-a1}
      - {kind: set_top, mac: "00:02:de:40:00:02", ecm_mac: "00:02:de:40:00:03",
         cmts: cbr8-1, node: node-a1}
  - account: S5
    devices: [{kind: cable_modem, mac: "00:1d:cf:50:00:01", cmts: cbr8-1, node: node-a2}]
"""
BOARD = ("alice", "bob", "carol")
INTERVAL = 2.0  # reconcile and watch interval: the reconciler and watcher run throughout


def _policy(path: Path) -> Path:
    safety = {"default_scope": "footprint", "layers": ["cmts", "headend"], "lift": {
        "group": "hs-board", "rule": "unanimous", "time_limit_hours": 72,
        "requester_may_approve": False}}
    ordinary = {"default_scope": "node", "lift": {"rule": "n_of_m", "n": 2}}
    path.write_text(json.dumps({"reasons": {
        "threat_of_violence": safety, "harassment": safety, "fraud": ordinary,
        "theft_of_service": ordinary, "other": ordinary,
        "non_payment": {"default_scope": "node",
                        "lift": {"group": "billing", "rule": "any"}}}}))
    return path


class Env:
    def __init__(self, lab: LabHandle, d: Daemon, people: dict[str, str]) -> None:
        self.lab, self.d, self.people = lab, d, people

    def call(self, method: str, path: str, who: str, body: Any = None) -> httpx.Response:
        token = self.people.get(who) or self.d.tokens[who]
        return httpx.request(method, self.d.base + path, json=body, timeout=30,
                             headers={"authorization": f"Bearer {token}"})

    def order(self, oid: str) -> dict[str, Any]:
        return dict(self.d.get(f"/v1/orders/{oid}"))

    def ban(self, reason: str, devices: list[dict[str, str]], *, scope: str | None = None,
            node: str | None = None, account: str = "ACC") -> str:
        body: dict[str, Any] = {"ticket": f"T-{time.monotonic_ns()}", "account": account,
                                "reason": reason, "devices": devices}
        if scope:
            body["scope"] = scope
        if node:
            body["node"] = node
        r = send_webhook(self.d.base, self.d.secret, body)
        assert r.status_code == 202, r.text
        oid: str = r.json()["order_id"]
        self.d.wait_state(oid, "verified", timeout=45)
        return oid

    def lift(self, oid: str, approvers: tuple[str, ...], **extra: Any) -> dict[str, Any]:
        r = self.call("POST", f"/v1/orders/{oid}/lift", "engineer",
                      {"reason": "settled", **extra})
        assert r.status_code == 202, r.text
        out: dict[str, Any] = r.json()
        for who in approvers:
            r = self.call("POST", f"/v1/orders/{oid}/approvals", who, {})
            assert r.status_code == 201, r.text
            out = r.json()
        return out


class Sampler:
    """The lab's ground truth for some MACs every half second, in a thread, for as long
    as the test runs: every moment one of them forwards (modem) or decodes (set-top)
    is recorded."""

    def __init__(self, lab: LabHandle, modems: list[str],
                 boxes: tuple[str, ...] | list[str] = ()) -> None:
        self.lab, self.modems, self.boxes = lab, list(modems), list(boxes)
        self.samples = 0
        self.violations: list[tuple[float, str, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for mac in self.modems:
                t = self.lab.truth(mac)
                if t.get("forwarding"):
                    self.violations.append((time.time(), mac, str(t.get("why"))))
            for mac in self.boxes:
                h = self.lab.truth(mac).get("headend") or {}
                if h.get("decoding"):
                    self.violations.append((time.time(), mac, "set-top decoding"))
            self.samples += 1
            self._stop.wait(0.5)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def assert_held(self) -> None:
        assert self.samples >= 4, f"only {self.samples} samples"
        assert not self.violations, f"the ban broke: {self.violations[:5]}"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    work = tmp_path_factory.mktemp("consent")
    topo = work / "topology.yaml"
    topo.write_text(TOPOLOGY)
    with running_lab(topo, state_dir=work / "lab") as lab:
        d = start_daemon(lab, work, ENFORCER_POLICY=str(_policy(work / "policy.yaml")),
                         ENFORCER_ENGINE__RECONCILE_INTERVAL_S=str(INTERVAL),
                         ENFORCER_ENGINE__WATCH_INTERVAL_S=str(INTERVAL),
                         ENFORCER_ENGINE__JITTER="0.05")
        people: dict[str, str] = {}
        for name, groups in [*((b, ["hs-board"]) for b in BOARD), ("bill", ["billing"]),
                             ("oscar", []), ("olga", [])]:
            args = ["users", "add", name, "--role", "approver", "--json"]
            for g in groups:
                args += ["--group", g]
            people[name] = json.loads(d.cli(*args).stdout)["token"]
        try:
            yield Env(lab, d, people)
        finally:
            stop_daemon(d)


def _wait(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_weaker_second_order_lifted_leaves_the_safety_ban(env: Env) -> None:
    """Safety ban first, then a non_payment order on the same modem (per-registration
    CM-CTRL on the cBR-8): lifting the weaker one with billing's single approval never
    lets the modem forward; the block passes to the safety order."""
    modem = "00:1d:cf:10:00:01"
    safety = env.ban("threat_of_violence", [{"mac": modem, "kind": "cable_modem"}])
    weak = env.ban("non_payment", [{"mac": modem, "kind": "cable_modem"}], node="node-a1")
    shown = env.order(weak)
    assert safety in shown["linked_orders"]
    [cov] = shown["coverage"]
    assert {o["order_id"] for o in cov["orders"]} == {safety, weak}
    assert cov["governing"] == {"reason": "threat_of_violence", "group": "hs-board",
                                "rule": "unanimous", "n": None}
    where = env.call("GET", f"/v1/where/{modem}", "engineer").json()
    assert {o["order_id"] for o in where["orders"]} == {safety, weak}
    with Sampler(env.lab, [modem]) as s:
        out = env.lift(weak, ("bill",))
        assert out["outcome"] == "approved"
        lifted = env.d.wait_state(weak, "lifted", timeout=45)
        # Released for this order (its block passed to the safety order, see below).
        assert [t["state"] for t in lifted["targets"] if t["mac"] == modem] == ["removed"]
        time.sleep(INTERVAL * 3)  # a reconcile and a sweep or two run meanwhile
    s.assert_held()
    order = env.d.wait_state(safety, "verified", timeout=30)
    assert any(t["device"] == "cbr8-1" and t["mac"] == modem and t["state"] != "removed"
               for t in order["targets"]), order["targets"]
    assert [e for e in _entries(env, weak) if e.action == "target.released"]
    kept = [e.payload for e in _entries(env, weak) if e.action == "block.kept"]
    assert kept and kept[0]["kept_for"] == [safety]
    assert env.lab.truth(modem)["forwarding"] is False


def test_safety_order_filed_on_a_weaker_deny_list_block(env: Env) -> None:
    """The operator's side: a non_payment ARRIS deny-list block exists; a safety order
    for the same modem is filed (it co-owns the block); lifting the older order leaves
    the modem unable to register."""
    modem = "00:1d:cf:20:00:01"
    weak = env.ban("non_payment", [{"mac": modem, "kind": "cable_modem"}], node="node-b1")
    assert "deny" in json.dumps(env.lab.blocks("e6000-1")).lower()
    safety = env.ban("threat_of_violence", [{"mac": modem, "kind": "cable_modem"}])
    held = [t for t in env.order(safety)["targets"]
            if t["device"] == "e6000-1" and t["state"] != "removed"]
    assert held, "the safety order co-owns the deny-list block"
    with Sampler(env.lab, [modem]) as s:
        assert env.lift(weak, ("bill",))["outcome"] == "approved"
        env.d.wait_state(weak, "lifted", timeout=45)
        time.sleep(INTERVAL * 3)
    s.assert_held()
    assert env.d.wait_state(safety, "verified", timeout=30)["state"] == "verified"
    blocks = json.dumps(env.lab.blocks("e6000-1"))
    assert modem in blocks


def test_upgrade_to_safety_needs_the_whole_board(env: Env) -> None:
    """non_payment -> threat_of_violence by amendment: the billing approver no longer
    counts, two of three board members are not enough, the third lifts it."""
    modem = "00:1d:cf:30:00:01"
    oid = env.ban("non_payment", [{"mac": modem, "kind": "cable_modem"}], node="node-a2")
    # A billing lift is opened, then the upgrade supersedes it.
    r = env.call("POST", f"/v1/orders/{oid}/lift", "engineer", {"reason": "paid"})
    assert r.status_code == 202
    r = env.call("POST", f"/v1/orders/{oid}/amendments", "engineer",
                 {"reason": "threat_of_violence", "scope": "footprint",
                  "note": "threatened the call centre", "ticket": "ESC-UP"})
    assert r.status_code == 202, r.text
    res = r.json()
    assert {c["field"] for c in res["applied"]} >= {"reason", "scope"}
    assert res["pending"] is None and res["superseded_lift_requests"]
    env.d.wait_state(oid, "verified", timeout=45)
    with Sampler(env.lab, [modem]) as s:
        r = env.call("POST", f"/v1/orders/{oid}/approvals", "bill", {})
        assert r.status_code == 409  # the billing request was superseded
        # on_behalf_of a board member: refused, and shrinks nothing.
        r = env.call("POST", f"/v1/orders/{oid}/lift", "engineer",
                     {"reason": "x", "on_behalf_of": "alice"})
        assert r.status_code == 422 and "alice" in r.text
        r = env.call("POST", f"/v1/orders/{oid}/lift", "engineer", {"reason": "board met"})
        assert r.status_code == 202
        assert r.json()["lift_request"]["electorate"] == list(BOARD)
        assert env.call("POST", f"/v1/orders/{oid}/approvals", "bill", {}).status_code == 403
        for who in BOARD[:2]:
            assert env.call("POST", f"/v1/orders/{oid}/approvals", who,
                            {}).json()["outcome"] == "recorded"
        time.sleep(INTERVAL * 2)
        assert env.order(oid)["state"] == "lift_pending"
    s.assert_held()
    assert env.call("POST", f"/v1/orders/{oid}/approvals", BOARD[2],
                    {}).json()["outcome"] == "approved"
    env.d.wait_state(oid, "lifted", timeout=45)
    env.lab.wait_truth(modem, lambda t: t["forwarding"] is True, timeout=30)


def test_downgrade_waits_for_consent_and_nothing_changes(env: Env) -> None:
    """Removing a device or narrowing the scope of a safety ban is a lift of that part:
    refused for a role that may not ask, pending for one that may; nothing changes on
    any device until the board agrees, and then only that part is released."""
    modem, stb = "00:1d:cf:40:00:01", "00:02:de:40:00:02"
    oid = env.ban("threat_of_violence", [{"mac": modem, "kind": "cable_modem"},
                                         {"mac": stb, "kind": "set_top"}])
    before = _blocks(env)
    with Sampler(env.lab, [modem], [stb]) as s:
        r = env.call("POST", f"/v1/orders/{oid}/amendments", "escalation-system",
                     {"remove_macs": [stb]})
        assert r.status_code == 403  # escalation-system's token may not request lifts
        r = env.call("POST", f"/v1/orders/{oid}/amendments", "auditor", {"scope": "node"})
        assert r.status_code == 403
        r = env.call("POST", f"/v1/orders/{oid}/amendments", "engineer",
                     {"remove_macs": [stb], "note": "set-top returned to the shop"})
        assert r.status_code == 202, r.text
        pending = r.json()["pending"]
        assert pending is not None and pending["electorate"] == list(BOARD)
        assert pending["rule"] == "unanimous" and r.json()["applied"] == []
        assert env.order(oid)["state"] == "lift_pending"
        r = env.call("POST", f"/v1/orders/{oid}/approvals", "alice", {})
        assert r.json()["outcome"] == "recorded"
        r = env.call("POST", f"/v1/orders/{oid}/approvals", "bob", {"decision": "refuse"})
        assert r.json()["outcome"] == "refused"
        env.d.wait_state(oid, "verified", timeout=30)
        time.sleep(INTERVAL * 2)
        assert {d["mac"] for d in env.order(oid)["devices"]} == {modem, stb}
        assert _blocks(env) == before
    s.assert_held()
    # With the whole board: only the set-top (and its eCM) is released.
    with Sampler(env.lab, [modem]) as s:
        r = env.call("POST", f"/v1/orders/{oid}/amendments", "engineer",
                     {"remove_macs": [stb], "note": "board agreed"})
        assert r.status_code == 202
        for who in BOARD:
            out = env.call("POST", f"/v1/orders/{oid}/approvals", who, {}).json()
        assert out["outcome"] == "approved"
        env.lab.wait_truth(stb, lambda t: t["headend"]["decoding"] is True, timeout=45)
        order = env.d.wait_state(oid, "verified", timeout=45)
        assert [d["mac"] for d in order["devices"]] == [modem]
        assert any(e["kind"] == "downgrade" for e in _amended(env, oid))
        time.sleep(INTERVAL * 2)  # the modem stays blocked through a reconcile
    s.assert_held()


def test_two_orders_on_one_set_top(env: Env) -> None:
    """The headend follows the same rule: the set-top stays dark while the safety order
    holds it, whatever happens to a fraud order on the same box."""
    stb = "00:02:de:10:00:02"
    safety = env.ban("harassment", [{"mac": stb, "kind": "set_top"}])
    fraud = env.ban("fraud", [{"mac": stb, "kind": "set_top"}], node="node-a1")
    with Sampler(env.lab, [], [stb]) as s:
        out = env.lift(fraud, ("oscar", "olga"))
        assert out["outcome"] == "approved"
        env.d.wait_state(fraud, "lifted", timeout=45)
        time.sleep(INTERVAL * 3)
    s.assert_held()
    assert env.order(safety)["state"] == "verified"
    assert env.lab.truth(stb)["headend"]["decoding"] is False


def test_breach_is_loud(env: Env) -> None:
    """A verified ban whose block the device loses (a CMTS reboot drops CM-CTRL) is a
    breach: counted, audited, shown on the order, and enforced again."""
    modem = "00:1d:cf:50:00:01"
    oid = env.ban("threat_of_violence", [{"mac": modem, "kind": "cable_modem"}])
    env.lab.reboot("cbr8-1")
    env.lab.wait_truth(modem, lambda t: bool(t["seen"]) and t["seen"][0]["phase"] == "online",
                       timeout=15)
    _wait(lambda: env.order(oid)["breaches"]["count"] >= 1, INTERVAL * 4 + 20, "a breach")
    env.lab.wait_truth(modem, lambda t: t["forwarding"] is False, timeout=INTERVAL * 3 + 10)
    text = httpx.get(env.d.base + "/metrics", timeout=10).text
    assert any(line.startswith("enforcer_ban_breaches_total{") and
               not line.endswith(" 0.0") for line in text.splitlines())
    assert env.order(oid)["breaches"]["recent"][-1]["mac"] == modem


def _blocks(env: Env) -> dict[str, dict[str, list[str]]]:
    """Which MACs each kind of block holds on each device (not the counters)."""
    out: dict[str, dict[str, list[str]]] = {}
    for dev in ("cbr8-1", "e6000-1"):
        out[dev] = {k: sorted(v) for k, v in env.lab.blocks(dev).items()
                    if isinstance(v, (dict, list))}
    return out


def _entries(env: Env, oid: str) -> list[Any]:
    from enforcer.store import Store

    store = Store.from_url(f"sqlite:///{env.d.env['ENFORCER_STATE_DIR']}/enforcer.db")
    try:
        return list(store.audit_entries(order_id=oid, limit=100_000))
    finally:
        store.dispose()


def _amended(env: Env, oid: str) -> list[dict[str, Any]]:
    """The order's ``order.amended`` audit entries, read from the daemon's database."""
    return [e.payload for e in _entries(env, oid) if e.action == "order.amended"]
