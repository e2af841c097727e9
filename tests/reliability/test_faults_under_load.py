"""Device faults under load: while ~100 orders flow in through the signed webhook, the
lab's devices go unreachable, slow down, answer genErr, reboot (losing every
registration-scoped block), refuse our SNMP credentials and fail CLI commands. Then
every fault is cleared and, within a bounded time, every order must be ``verified``
and the lab's ground truth must show that no banned modem forwards. Nothing is lost:
orders == webhooks that got a 2xx. The counts (faults by kind, retries they caused,
convergence time) go to the report file of ``harness.REPORT``."""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from lab.testing import LabHandle, running_lab
from tests.conftest import start_daemon, stop_daemon
from tests.reliability.harness import (
    FAST_ENGINE,
    Webhook,
    error_kind,
    generated_modems,
    order_body,
    record,
    store_of,
    wait_all,
)

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.timeout(300)]

TOPOLOGY = """
name: faults
timings: {retry_s: 0.3, reboot_s: 1.0, reboot_spread_s: 0.3}
devices:
  - name: cbr8-1
    dialect: cisco-cbr8
    nodes: [{name: node-a1, modems: 40}]
  - name: e6000-1
    dialect: arris-e6000
    deny_capacity: 1000
    nodes: [{name: node-b1, modems: 40}]
  - name: casa-1
    dialect: casa-c100g
    nodes: [{name: node-c1, modems: 40}]
  - name: generic-1
    dialect: docsis3-generic
    ssh: false
    nodes: [{name: node-d1, modems: 40}]
"""

ORDERS = 100
SEND_EVERY_S = 0.2  # 100 orders over ~20 s, while the faults below play out
CONVERGE_WITHIN_S = 90.0


@pytest.fixture(scope="module")
def faults_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LabHandle, Path]]:
    work = tmp_path_factory.mktemp("faults")
    topo = work / "topology.yaml"
    topo.write_text(TOPOLOGY)
    with running_lab(topo, state_dir=work / "lab") as lab:
        yield lab, work


def test_faults_while_orders_flow_then_everything_converges(
        faults_lab: tuple[LabHandle, Path]) -> None:
    lab, work = faults_lab
    rng = random.Random(7)
    chosen = rng.sample(generated_modems(lab), ORDERS)
    hooks = [Webhook(wid=f"msg_faults_{i:04d}",
                     raw=httpx.Request("POST", "/", json=order_body(i, m, tag="FAULT")).content,
                     mac=m.mac, device=m.device) for i, m in enumerate(chosen)]
    d = start_daemon(lab, work, secret=None, tokens=None, **FAST_ENGINE,
                     ENFORCER_ENGINE__RECONCILE_INTERVAL_S="2",
                     ENFORCER_ENGINE__WATCH_INTERVAL_S="2", ENFORCER_ENGINE__JITTER="0.05")
    faults: Counter[str] = Counter()
    timeline: list[tuple[float, str]] = []
    t0 = time.monotonic()

    def at(when: float, what: str, fn: Callable[[], object]) -> None:
        time.sleep(max(0.0, t0 + when - time.monotonic()))
        fn()
        timeline.append((round(time.monotonic() - t0, 2), what))
        kind = what.split()[0]
        if kind != "clear":
            faults[kind] += 1

    def sender() -> None:
        with httpx.Client(timeout=10) as c:
            for h in hooks:
                for _ in range(5):  # the escalation system retries a failed delivery
                    if h.send(d.base, d.secret, c) == 202:
                        break
                    time.sleep(0.5)
                time.sleep(SEND_EVERY_S)

    try:
        flow = threading.Thread(target=sender, name="orders")
        flow.start()
        at(1.0, "unreachable casa-1", lambda: lab.fault("casa-1", unreachable=True))
        at(2.0, "slow_s cbr8-1 1s", lambda: lab.fault("cbr8-1", slow_s=1.0))
        at(3.0, "snmp_gen_err generic-1", lambda: lab.fault("generic-1", snmp_gen_err=True))
        at(5.0, "clear casa-1", lambda: lab.clear_faults("casa-1"))
        at(5.5, "reboot e6000-1", lambda: lab.reboot("e6000-1"))
        at(7.0, "clear generic-1", lambda: lab.clear_faults("generic-1"))
        at(8.0, "wrong_credentials casa-1", lambda: lab.fault("casa-1", wrong_credentials=True))
        at(9.0, "clear cbr8-1", lambda: lab.clear_faults("cbr8-1"))
        at(10.0, "cli_error e6000-1", lambda: lab.fault(
            "e6000-1", cli_error="% Error: simulated CLI failure"))
        at(11.0, "unreachable generic-1", lambda: lab.fault("generic-1", unreachable=True))
        at(13.0, "reboot cbr8-1", lambda: lab.reboot("cbr8-1"))
        at(14.0, "clear generic-1", lambda: lab.clear_faults("generic-1"))
        at(15.0, "snmp_gen_err e6000-1", lambda: lab.fault("e6000-1", snmp_gen_err=True))
        at(16.0, "slow_s casa-1 1s", lambda: lab.fault("casa-1", slow_s=1.0))
        at(18.0, "reboot generic-1", lambda: lab.reboot("generic-1"))
        flow.join(timeout=120)
        assert not flow.is_alive(), "the order flow did not finish"
        for name in ("cbr8-1", "e6000-1", "casa-1", "generic-1"):
            lab.clear_faults(name)
        cleared = time.monotonic()
        timeline.append((round(cleared - t0, 2), "clear all"))

        assert all(h.order_id for h in hooks), "every order got a 2xx"
        order_ids = {h.order_id for h in hooks if h.order_id}
        assert len(order_ids) == ORDERS
        wait_all(d, order_ids, "verified", timeout=CONVERGE_WITHIN_S)
        verified_s = time.monotonic() - cleared
        # Ground truth, bounded: reboots forget CM-CTRL blocks; the reconciler repairs.
        deadline = cleared + CONVERGE_WITHIN_S
        forwarding = [h.mac for h in hooks]
        while forwarding and time.monotonic() < deadline:
            forwarding = [m for m in forwarding if lab.truth(m).get("forwarding")]
            if forwarding:
                time.sleep(0.5)
        assert not forwarding, f"banned modems still forwarding: {forwarding[:10]}"
        truth_s = time.monotonic() - cleared
        wait_all(d, order_ids, "verified", timeout=CONVERGE_WITHIN_S)

        st = store_of(d)
        try:
            stored = {o.id for o in st.list_orders(limit=10_000)}
            assert stored == order_ids, "nothing lost, nothing duplicated"
            retries = st.audit_entries(action="target.retrying", limit=100_000)
            drift = st.audit_entries(action="target.drift", limit=100_000)
            ok, bad_seq, why = st.verify_audit()
            assert ok, (bad_seq, why)
        finally:
            st.dispose()
        errors = Counter(error_kind(str(e.payload.get("last_error", ""))) for e in retries)
        # The faults bit: pushes failed and were retried (else this test proved nothing).
        assert retries, "no push was ever retried: the faults had no effect"
        record("faults_under_load", {
            "orders_filed": ORDERS, "orders_verified": len(order_ids), "lost": 0,
            "faults_injected": sum(faults.values()), "faults_by_kind": dict(faults),
            "timeline": timeline, "push_retries": len(retries),
            "drift_repairs": len(drift), "retry_errors_by_kind": dict(errors),
            "converged_all_verified_s_after_clear": round(verified_s, 1),
            "converged_ground_truth_s_after_clear": round(truth_s, 1),
            "total_s": round(time.monotonic() - t0, 1),
        })
    finally:
        for name in ("cbr8-1", "e6000-1", "casa-1", "generic-1"):
            with contextlib.suppress(httpx.HTTPError):
                lab.clear_faults(name)
        stop_daemon(d)
