"""An insider with write access to the database (not to the daemon's key files) tries to
restore service to a banned modem, on the lab, with the modem's ground truth sampled
every ~0.5 s for the whole test:

* a state flip (``UPDATE orders SET state='lifting'``);
* forged approval rows (and the request row marked approved) after one real approval;
* forged chain entries with the hashes recomputed (``lift.approval`` x2, ``lift.approved``).

Each time the engine removes nothing: the modem never forwards, the order never becomes
``lifted``, ``lift.unproven`` is audited, ``enforcer_lift_unproven_total`` rises (the
``EnforcerLiftUnproven`` alert's input), and ``enforcer audit verify`` reports it.
Real daemon (``enforcer serve``), real lab, real SNMP and SSH."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from enforcer.store.audit import canonical_json, entry_hash
from lab.testing import LabHandle
from tests.conftest import Daemon, start_daemon, stop_daemon
from tests.lifts.test_lift_e2e import _population

pytestmark = [pytest.mark.lab, pytest.mark.slow]
WATCH_S = 8.0  # how long each attack is watched after the engine refused it


class Sampler:
    """Samples ``lab.truth(mac)['forwarding']`` every 0.5 s in a thread."""

    def __init__(self, lab: LabHandle, mac: str) -> None:
        self.lab, self.mac = lab, mac
        self.samples: list[tuple[float, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.monotonic(), self.lab.truth(self.mac)["forwarding"]))
            except httpx.HTTPError as e:  # recorded: a gap in the samples fails the test
                self.samples.append((time.monotonic(), f"error: {e}"))
            self._stop.wait(0.5)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def assert_never_forwarded(self, min_samples: int) -> None:
        assert len(self.samples) >= min_samples, self.samples
        bad = [s for s in self.samples if s[1] is not False]
        assert not bad, f"modem {self.mac} forwarded (or unknown) at {bad[:5]}"
        gaps = [b[0] - a[0] for a, b in zip(self.samples, self.samples[1:], strict=False)]
        assert max(gaps) < 2.0, f"ground truth not sampled throughout (gap {max(gaps):.1f}s)"


@pytest.fixture(scope="module")
def insider(lab: LabHandle, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[Daemon, dict[str, str]]]:
    work = tmp_path_factory.mktemp("insider")
    policy = work / "policy.yaml"
    safety = {"default_scope": "footprint", "lift": {
        "group": "hs-board", "rule": "unanimous", "time_limit_hours": 72,
        "requester_may_approve": False}}
    other = {"default_scope": "node", "lift": {"rule": "n_of_m", "n": 2}}
    policy.write_text(json.dumps({"reasons": {
        "threat_of_violence": safety, "harassment": safety, "fraud": other,
        "theft_of_service": other, "non_payment": other, "other": other}}))
    d = start_daemon(lab, work, ENFORCER_POLICY=str(policy),
                     ENFORCER_ENGINE__FULL_SCAN_S="1", ENFORCER_AUDIT__ANCHOR_INTERVAL_S="2")
    try:
        board = {}
        for name in ("alice", "bob", "carol"):
            out = d.cli("users", "add", name, "--role", "approver", "--group", "hs-board",
                        "--json").stdout
            board[name] = json.loads(out)["token"]
        yield d, board
    finally:
        stop_daemon(d)


def _db(d: Daemon) -> sqlite3.Connection:
    return sqlite3.connect(Path(d.env["ENFORCER_STATE_DIR"]) / "enforcer.db", timeout=30)


def _sql(d: Daemon, stmt: str, *params: Any) -> None:
    with _db(d) as conn:
        conn.execute(stmt, params)
    conn.close()


def _unproven(d: Daemon, order_id: str) -> list[dict[str, Any]]:
    with _db(d) as conn:
        rows = conn.execute("SELECT payload FROM audit_log WHERE order_id = ? AND action = "
                            "'lift.unproven'", (order_id,)).fetchall()
    conn.close()
    return [json.loads(r[0]) for r in rows]


def _metric(d: Daemon) -> float:
    for line in httpx.get(d.base + "/metrics", timeout=10).text.splitlines():
        if line.startswith("enforcer_lift_unproven_total "):
            return float(line.split()[1])
    raise AssertionError("enforcer_lift_unproven_total not exported")


def _ban(d: Daemon, lab: LabHandle, i: int) -> tuple[str, str]:
    modem, _stb, _ecm = _population(lab, "node-a1", i)
    out = d.cli("ban", "--account", f"ACC-INSIDER-{i}", "--ticket", f"ESC-IN-{i}",
                "--reason", "threat_of_violence", "--mac", modem, "--node", "node-a1",
                "--json", token=d.tokens["engineer"])
    order_id = json.loads(out.stdout)["order_id"]
    d.wait_state(order_id, "verified", timeout=60)
    return order_id, modem


def _refused(d: Daemon, order_id: str, before: float, sampler: Sampler) -> str:
    """Wait until the engine has refused the lift, watch WATCH_S more; the why."""
    deadline = time.monotonic() + 30
    while not _unproven(d, order_id):
        assert time.monotonic() < deadline, "the engine never looked at the lifting order"
        time.sleep(0.2)
    assert _metric(d) > before
    until = time.monotonic() + WATCH_S
    while time.monotonic() < until:
        order = d.get(f"/v1/orders/{order_id}")
        assert order["state"] == "lifting", order["state"]
        assert all(t["state"] != "removed" for t in order["targets"]), order["targets"]
        time.sleep(0.5)
    # Every ~0.5 s (slower on a loaded machine; gaps over 2 s fail).
    sampler.assert_never_forwarded(min_samples=int(WATCH_S))
    [first, *_] = _unproven(d, order_id)
    return str(first["why"])


def _verify_reports(d: Daemon, order_id: str, *expect: str) -> None:
    res = d.cli("audit", "verify", "--full", check=False)
    assert res.returncode == 11, res.stdout + res.stderr
    assert order_id in res.stderr and all(e in res.stderr for e in expect), res.stderr


def test_state_flip_leaves_the_modem_blocked(lab: LabHandle,
                                             insider: tuple[Daemon, dict[str, str]]) -> None:
    d, _board = insider
    order_id, modem = _ban(d, lab, 11)
    with Sampler(lab, modem) as sampler:
        before = _metric(d)
        _sql(d, "UPDATE orders SET state = 'lifting' WHERE id = ?", order_id)
        why = _refused(d, order_id, before, sampler)
    assert "no lift.approved entry" in why
    _verify_reports(d, order_id, "the database says lifting", "without a proven lift")


def test_forged_approval_rows_leave_the_modem_blocked(
        lab: LabHandle, insider: tuple[Daemon, dict[str, str]]) -> None:
    d, board = insider
    order_id, modem = _ban(d, lab, 12)
    with Sampler(lab, modem) as sampler:
        out = d.cli("lift", order_id, "--reason", "please", "--json",
                    token=d.tokens["engineer"])
        lift_id = json.loads(out.stdout)["lift_request"]["id"]
        d.cli("approve", order_id, token=board["alice"])  # one genuine approval
        before = _metric(d)
        now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
        for name in ("bob", "carol"):
            _sql(d, "INSERT INTO approvals (lift_request_id, approver, decision, note, "
                 "created_at) VALUES (?, ?, 'approve', NULL, ?)", lift_id, name, now)
        _sql(d, "UPDATE lift_requests SET state = 'approved' WHERE id = ?", lift_id)
        _sql(d, "UPDATE orders SET state = 'lifting' WHERE id = ?", order_id)
        why = _refused(d, order_id, before, sampler)
    assert "no lift.approved entry" in why
    _verify_reports(d, order_id, "has no lift.approval entry in the chain")


def test_recomputed_chain_leaves_the_modem_blocked(
        lab: LabHandle, insider: tuple[Daemon, dict[str, str]]) -> None:
    d, board = insider
    order_id, modem = _ban(d, lab, 13)
    with Sampler(lab, modem) as sampler:
        out = d.cli("lift", order_id, "--reason", "please", "--json",
                    token=d.tokens["engineer"])
        lift_id = json.loads(out.stdout)["lift_request"]["id"]
        d.cli("approve", order_id, token=board["alice"])
        before = _metric(d)
        forged = [("bob", "lift.approval", {"lift_request_id": lift_id, "decision": "approve",
                                            "note": None}),
                  ("carol", "lift.approval", {"lift_request_id": lift_id,
                                              "decision": "approve", "note": None}),
                  ("carol", "lift.approved", {"lift_request_id": lift_id,
                                              "rule": "unanimous", "needed": 3})]
        with _db(d) as conn:  # one transaction: the daemon's writers wait on it
            conn.execute("BEGIN IMMEDIATE")
            seq, prev, key_id = conn.execute("SELECT seq, hash, key_id FROM audit_log "
                                             "ORDER BY seq DESC LIMIT 1").fetchone()
            for actor, action, payload in forged:
                seq += 1
                at = datetime.now(UTC)
                body = canonical_json(payload)
                # What an insider without the key computes: the documented SHA-256 of the
                # entry, under the real key id, linked to the real head.
                h = entry_hash(seq=seq, at=at, actor=actor, action=action,
                               order_id=order_id, payload=json.loads(body), prev_hash=prev)
                conn.execute("INSERT INTO audit_log (seq, at, actor, action, order_id, "
                             "payload, prev_hash, hash, key_id) VALUES (?,?,?,?,?,?,?,?,?)",
                             (seq, at.replace(tzinfo=None).isoformat(sep=" "), actor, action,
                              order_id, body, prev, h, key_id))
                prev = h
            conn.execute("INSERT INTO approvals (lift_request_id, approver, decision, note, "
                         "created_at) VALUES (?, 'bob', 'approve', NULL, ?), "
                         "(?, 'carol', 'approve', NULL, ?)",
                         (lift_id, at.replace(tzinfo=None).isoformat(sep=" "), lift_id,
                          at.replace(tzinfo=None).isoformat(sep=" ")))
            conn.execute("UPDATE lift_requests SET state = 'approved' WHERE id = ?",
                         (lift_id,))
            conn.execute("UPDATE orders SET state = 'lifting' WHERE id = ?", (order_id,))
        conn.close()
        why = _refused(d, order_id, before, sampler)
    assert "audit chain broken" in why or "not made with the audit key" in why, why
    res = d.cli("audit", "verify", "--full", check=False)
    assert res.returncode == 11 and "BROKEN" in res.stderr, res.stdout + res.stderr
    health = httpx.get(d.base + "/metrics", timeout=10).text
    assert "enforcer_audit_chain_ok 0.0" in health


def test_keys_are_announced_and_anchored(insider: tuple[Daemon, dict[str, str]]) -> None:
    """The daemon made its keys outside the database (0600), recorded the HMAC key id
    and the evidence key in the chain, and anchors carry both."""
    d, _board = insider
    state = Path(d.env["ENFORCER_STATE_DIR"])
    keys = sorted((state / "audit-keys").glob("*.key"))
    assert keys and all(k.stat().st_mode & 0o077 == 0 for k in keys)
    out = json.loads(d.cli("audit", "pubkey", "--json").stdout)
    with _db(d) as conn:
        [(payload, key_id)] = conn.execute("SELECT payload, key_id FROM audit_log WHERE "
                                           "action = 'audit.keys'").fetchall()
        keyed = conn.execute("SELECT count(*) FROM audit_log WHERE key_id IS NULL").fetchone()
    conn.close()
    announced = json.loads(payload)
    assert announced["hmac_key_id"] == key_id == keys[-1].stem and keyed == (0,)
    assert announced["evidence_public_key"] == out["public_key"]
    assert announced["evidence_key_fingerprint"] == out["fingerprint"]
    deadline = time.monotonic() + 10
    while not (state / "anchors" / "anchors.jsonl").exists():
        assert time.monotonic() < deadline
        time.sleep(0.2)
    last = json.loads((state / "anchors" / "anchors.jsonl").read_text().splitlines()[-1])
    assert last["key_id"] == key_id and last["evidence_key"] == out["fingerprint"]
    with _db(d) as conn:
        assert conn.execute("SELECT hash FROM audit_log WHERE seq = ?",
                            (last["seq"],)).fetchone() == (last["hash"],)
    conn.close()
