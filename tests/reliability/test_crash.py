"""Crash consistency: file a few hundred orders through the signed webhook while the
daemon is SIGKILLed at random points (during intake, right after a batch of 202s while
pushes are in flight, a little later while verification polls), restart it on the same
state directory each time, and prove:

- every order that got a 2xx is in the database right after the next restart (the
  daemon commits before it answers) and reaches ``verified``;
- the escalation system's retries (same ``webhook-id``, same bytes) return the same
  order: orders == distinct webhook ids that got a 2xx, no MAC ordered twice;
- every banned modem cannot forward (lab ground truth), every block exists once, no
  target is left with an error and no push was ever rejected by a device;
- ``enforcer audit verify`` passes.

Bounded: 240 orders, 5 kills, a few minutes at most. The seed is in the report
(``RELIABILITY_SEED`` replays a run)."""

from __future__ import annotations

import os
import random
import re
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from lab.testing import LabHandle, running_lab
from tests.conftest import Daemon, start_daemon, stop_daemon
from tests.reliability.harness import (
    FAST_ENGINE,
    Webhook,
    generated_modems,
    order_body,
    record,
    restart,
    sigkill,
    store_of,
    wait_all,
)

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.timeout(420)]

TOPOLOGY = """
name: crash
timings: {retry_s: 0.3, reboot_s: 0.8, reboot_spread_s: 0.3}
v2c: false
devices:
  - name: cbr8-1
    dialect: cisco-cbr8
    nodes: [{name: node-a1, modems: 50}, {name: node-a2, modems: 30}]
  - name: e6000-1
    dialect: arris-e6000
    deny_capacity: 1000
    nodes: [{name: node-b1, modems: 30}]
  - name: casa-1
    dialect: casa-c100g
    nodes: [{name: node-c1, modems: 70}]
  - name: generic-1
    dialect: docsis3-generic
    ssh: false
    nodes: [{name: node-d1, modems: 60}]
"""

ORDERS = 240
#: (how the phase ends, orders sent in it). The last phase is not killed.
PHASES = [("after-202s", 40), ("during-intake", 50), ("verifying", 40), ("during-intake", 40),
          ("after-202s", 40), ("end", 30)]
#: SNMP error-status names and CLI error lines: a device refusing a push. A re-push after
#: a crash must never be one of these (re-applying a present block changes nothing).
DEVICE_REJECTIONS = re.compile(r"inconsistentValue|wrongValue|commitFailed|notWritable|"
                               r"resourceUnavailable|inconsistentName|noCreation|% Error|"
                               r"% Invalid")


@pytest.fixture(scope="module")
def crash_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LabHandle, Path]]:
    work = tmp_path_factory.mktemp("crash")
    topo = work / "topology.yaml"
    topo.write_text(TOPOLOGY)
    with running_lab(topo, state_dir=work / "lab") as lab:
        yield lab, work


def _send_all(hooks: list[Webhook], d: Daemon, pool: ThreadPoolExecutor,
              client: httpx.Client) -> list[int | None]:
    return list(pool.map(lambda h: h.send(d.base, d.secret, client), hooks))


def test_sigkill_at_random_points_loses_nothing(crash_lab: tuple[LabHandle, Path]) -> None:
    lab, work = crash_lab
    seed = int(os.environ.get("RELIABILITY_SEED") or time.time_ns() % 1_000_000)
    rng = random.Random(seed)
    started = time.monotonic()
    modems = generated_modems(lab)
    assert len(modems) >= ORDERS
    for m in rng.sample(modems, 5):  # the numbering matches the lab's fleet
        assert lab.truth(m.mac)["known"], m
    chosen = rng.sample(modems, ORDERS)
    hooks = [Webhook(wid=f"msg_crash_{seed}_{i:04d}",
                     raw=httpx.Request("POST", "/", json=order_body(i, m, tag="CRASH")).content,
                     mac=m.mac, device=m.device) for i, m in enumerate(chosen)]
    d = start_daemon(lab, work, secret=None, tokens=None, **FAST_ENGINE)
    kills: list[dict[str, object]] = []
    sent = 0
    restarts = 0
    replays_checked = 0
    resent_unanswered = 0
    try:
        with ThreadPoolExecutor(8) as pool, httpx.Client(timeout=10) as client:
            for phase, count in PHASES:
                batch = hooks[sent:sent + count]
                sent += count
                if phase == "during-intake":
                    # Kill while requests are in flight: some never get an answer.
                    delay = rng.uniform(0.02, 0.12)
                    futures = [pool.submit(h.send, d.base, d.secret, client) for h in batch]
                    time.sleep(delay)
                    sigkill(d)
                    for f in futures:
                        f.result()
                else:
                    _send_all(batch, d, pool, client)
                    if phase == "after-202s":
                        delay = rng.uniform(0.0, 0.3)  # pushes in flight
                    elif phase == "verifying":
                        delay = rng.uniform(0.6, 2.0)  # kicked, polling registration
                    else:
                        break  # "end": no kill
                    time.sleep(delay)
                    sigkill(d)
                acked = sum(1 for h in batch if h.order_id)
                kills.append({"phase": phase, "after_s": round(delay, 3), "sent": count,
                              "acked_before_kill": acked})
                restarts += 1
                d = restart(d, restarts)
                # Durable before acknowledged: every 2xx so far is in the database now.
                st = store_of(d)
                try:
                    for h in hooks[:sent]:
                        if h.order_id:
                            assert st.get_order(h.order_id).id == h.order_id
                finally:
                    st.dispose()
                # The escalation system retries what got no answer (same id, same bytes);
                # a few answered ones are retried too and must return the same order.
                unanswered = [h for h in hooks[:sent] if h.order_id is None]
                replays = [h for h in rng.sample(hooks[:sent], 5) if h.order_id]
                resent_unanswered += len(unanswered)
                for h in unanswered + replays:
                    before = h.order_id
                    status = h.send(d.base, d.secret, client)
                    assert status == 202, (h.wid, status)
                    if before is not None:
                        replays_checked += 1
                        assert h.order_id == before
            assert all(h.order_id for h in hooks), "every message got a 2xx in the end"

        order_ids = {h.order_id for h in hooks if h.order_id}
        assert len(order_ids) == len(hooks)  # one order per webhook id, never two
        intake_s = time.monotonic() - started
        wait_all(d, order_ids, "verified", timeout=150)
        converged_s = time.monotonic() - started

        st = store_of(d)
        try:
            stored = st.list_orders(limit=10_000)
            assert {o.id for o in stored} == order_ids, "orders == distinct acked webhook ids"
            macs = Counter(str(dev.mac) for o in stored for dev in o.devices)
            assert max(macs.values()) == 1, "no MAC ordered twice"
            accepted = st.audit_entries(action="order.accepted", limit=100_000)
            assert sorted(e.order_id or "" for e in accepted) == sorted(order_ids)
            blocks: Counter[tuple[str, str, str]] = Counter()
            for oid in order_ids:
                for t in st.targets_for_order(oid):
                    if t.state.value != "removed":
                        assert t.state.value == "verified", t
                        assert t.last_error is None, t
                        blocks[(t.device, str(t.mac), t.mechanism)] += 1
            assert blocks and max(blocks.values()) == 1, "every block exists once"
            errors = [e.payload.get("last_error") or e.payload.get("error") or ""
                      for action in ("target.retrying", "target.kicked")
                      for e in st.audit_entries(action=action, limit=100_000)]
            rejected = [e for e in errors if DEVICE_REJECTIONS.search(str(e))]
            assert not rejected, f"a device rejected a push: {rejected[:5]}"
            ok, bad_seq, why = st.verify_audit()
            assert ok, (bad_seq, why)
        finally:
            st.dispose()

        # Ground truth: no banned modem forwards; the ARRIS deny list holds each once.
        forwarding = [h.mac for h in hooks if lab.truth(h.mac).get("forwarding")]
        assert not forwarding, f"banned modems still forwarding: {forwarding[:10]}"
        deny = lab.blocks("e6000-1")["deny"]
        arris = {h.mac for h in hooks if h.device == "e6000-1"}
        assert set(deny) == arris, "the deny list holds exactly the banned ARRIS modems"

        audit = d.cli("audit", "verify", "--json", check=False)
        assert audit.returncode == 0, audit.stdout + audit.stderr
        record("crash", {
            "seed": seed, "orders_filed": len(hooks), "orders_verified": len(order_ids),
            "kills": len(kills), "kill_points": kills, "restarts": restarts,
            "unanswered_then_resent": resent_unanswered,
            "unanswered_but_committed": sum(1 for h in hooks if h.created[:1] == [False]),
            "replays_checked_same_order": replays_checked,
            "lost": 0, "duplicates": 0, "intake_s": round(intake_s, 1),
            "time_to_all_verified_s": round(converged_s, 1),
        })
        assert len(kills) >= 5
    finally:
        stop_daemon(d)
