"""A daemon killed (SIGKILL) with notifications pending delivers them after a restart,
once each, under the webhook-ids they were written with. Real ``enforcer serve``
subprocesses on one SQLite state directory, a real receiver on loopback; the one CMTS
in the inventory is a closed loopback port (no device is needed for notifications)."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from enforcer.store import Store
from lab.testing import free_port, wait_ready
from tests.notify.receiver import Receiver, receiver

KEY = b"r" * 32
SECRET = "whsec_" + base64.b64encode(KEY).decode()
HOOK_SECRET = "whsec_" + base64.b64encode(b"h" * 32).decode()


def _until(what: Callable[[], bool], timeout: float, why: str) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            raise AssertionError(why)
        time.sleep(0.1)


def _files(tmp: Path, url: str) -> dict[str, str]:
    inventory = tmp / "inventory.yaml"
    inventory.write_text(json.dumps({
        "credentials": {"c": {"snmp": {"user": "u", "auth_password": "authpass1",
                                       "priv_password": "privpass1"}}},
        "devices": {"cmts-x": {"kind": "cmts", "profile": "docsis3-generic",
                               "host": "127.0.0.1", "snmp_port": free_port(),
                               "credentials": "c"}},
        "nodes": {"node-x": {"serving": [{"device": "cmts-x"}]}}}))
    every = {"default_scope": "node", "lift": {"group": "g", "rule": "any"},
             "notify": [{"to": ["noc"], "events": ["ban.imposed"]}]}
    policy = tmp / "policy.yaml"
    policy.write_text(json.dumps({
        "webhooks": {"noc": {"url": url, "secret": SECRET, "timeout_s": 2}},
        "delivery": {"max_attempts": 50, "retry_base_s": 0.2, "retry_max_s": 0.5,
                     "poll_s": 0.2},
        "reasons": {r: every for r in ("threat_of_violence", "harassment", "fraud",
                                       "theft_of_service", "non_payment", "other")}}))
    port = free_port()
    return {**os.environ, "ENFORCER_INVENTORY": str(inventory),
            "ENFORCER_STATE_DIR": str(tmp / "state"), "ENFORCER_POLICY": str(policy),
            "ENFORCER_HTTP__LISTEN": f"127.0.0.1:{port}",
            "ENFORCER_WEBHOOK__SECRETS": json.dumps([HOOK_SECRET]),
            "ENFORCER_INSTANCE_ID": "outbox-test", "ENFORCER_ENGINE__LEASE_TTL_S": "3",
            "ENFORCER_ENGINE__RETRY_BASE_S": "5", "ENFORCER_ENGINE__MAX_RETRY_BACKOFF_S": "30"}


def _serve(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = open(log, "ab")  # noqa: SIM115 - the process owns it
    proc = subprocess.Popen([sys.executable, "-m", "enforcer.cli.main", "serve"], env=env,
                            stdout=out, stderr=subprocess.STDOUT)
    wait_ready(f"http://{env['ENFORCER_HTTP__LISTEN']}", proc, log, timeout=60)
    return proc


def test_sigkill_with_pending_notifications_delivers_them_after_restart(tmp_path: Path) -> None:
    with receiver(KEY) as rec:
        _run(tmp_path, rec)


def _run(tmp_path: Path, rec: Receiver) -> None:
    env = _files(tmp_path, rec.url)
    token = json.loads(subprocess.run(
        [sys.executable, "-m", "enforcer.cli.main", "users", "add", "eng", "--role",
         "engineer", "--json"], env=env, check=True, capture_output=True, text=True,
        timeout=60).stdout)["token"]
    log = tmp_path / "enforcer.log"
    base = f"http://{env['ENFORCER_HTTP__LISTEN']}"
    rec.status = 503  # the NOC's receiver is down
    proc = _serve(env, log)
    store = Store.from_url(f"sqlite:///{tmp_path / 'state' / 'enforcer.db'}")
    try:
        for i in range(5):
            r = httpx.post(f"{base}/v1/orders", timeout=10, headers={
                "authorization": f"Bearer {token}"}, json={
                "ticket": f"T-{i}", "account": f"acct-{i}", "reason": "fraud",
                "node": "node-x",
                "devices": [{"mac": f"00:11:22:33:44:{i:02x}", "kind": "cable_modem"}]})
            assert r.status_code == 202, r.text
        _until(lambda: len(rec.attempts) == 5, 60, f"not every message tried: {rec.attempts}")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        pending = store.outbox_messages(state="pending")
        assert len(pending) == 5 and not rec.accepted
        ids = {m["id"] for m in pending}
        assert set(rec.attempts) == ids

        rec.status = 204  # the receiver is back; the daemon restarts on the same state
        proc = _serve(env, log)
        _until(lambda: len(rec.accepted) == 5, 60, f"not delivered after restart: "
               f"{rec.accepted} / {store.outbox_messages()}")
        _until(lambda: not store.outbox_messages(state="pending"), 30, "still pending")
        time.sleep(1.0)  # a few more delivery passes: nothing is sent again
        assert set(rec.accepted) == ids
        assert all(n == 1 for n in rec.accepted.values()), rec.accepted
        assert rec.bad_signatures == 0
        assert {b["type"] for b in rec.bodies.values()} == {"ban.imposed"}
        assert sorted(b["data"]["ticket"] for b in rec.bodies.values()) == [
            f"T-{i}" for i in range(5)]
        text = httpx.get(f"{base}/metrics", timeout=10).text
        assert 'enforcer_notifications{state="delivered"} 5.0' in text
        assert 'enforcer_notifications_delivered_total{target="noc"} 5.0' in text
    finally:
        store.dispose()
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
