"""Operations fixtures: one daemon (JSON logs) on the session's lab with one verified
ban, shared by the Prometheus, promtool and log tests; and helpers to ban lab modems
nobody else in the suite touches."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lab.demo import send_webhook
from lab.testing import LabHandle
from lab.topology import generated_mac
from tests.conftest import Daemon, start_daemon, stop_daemon

ROOT = Path(__file__).resolve().parents[2]
# casa-1 is the third device of lab/topologies/default.yaml, node-c1 its first node with
# 50 generated modems; the rest of the suite bans only the topology's named subscribers.
CASA_DEVICE_NO, CASA_NODE = 3, "node-c1"


def casa_modem(n: int) -> str:
    return ":".join(f"{b:02x}" for b in generated_mac(CASA_DEVICE_NO, 1, n))


def ban_body(mac: str, *, ticket: str) -> dict[str, Any]:
    return {"ticket": ticket, "account": f"OPS-{mac}", "reason": "threat_of_violence",
            "scope": "cmts", "node": CASA_NODE,
            "devices": [{"mac": mac, "kind": "cable_modem"}],
            "requested_by": "ops tests"}


def ban(d: Daemon, mac: str) -> str:
    """File a ban through the signed webhook and wait until it is verified."""
    r = send_webhook(d.base, d.secret, ban_body(mac, ticket=f"OPS-{time.monotonic_ns()}"))
    assert r.status_code == 202, r.text
    order_id: str = r.json()["order_id"]
    d.wait_state(order_id, "verified", timeout=60)
    return order_id


@dataclass
class OpsDaemon:
    daemon: Daemon
    order_id: str  # a ban filed by webhook and verified
    mac: str


@pytest.fixture(scope="package")
def ops_daemon(lab: LabHandle, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[OpsDaemon]:
    d = start_daemon(lab, tmp_path_factory.mktemp("ops"), ENFORCER_LOG__JSON="true")
    try:
        mac = casa_modem(40)
        yield OpsDaemon(d, ban(d, mac), mac)
    finally:
        stop_daemon(d)


def exported_names() -> set[str]:
    """Every sample name the daemon can export (counters with ``_total``, histograms
    with ``_bucket``/``_sum``/``_count``), from the real metric definitions."""
    from prometheus_client import CollectorRegistry

    from enforcer.metrics import Metrics, TransportMetricsAdapter

    class _NoCounts:
        def count_orders(self) -> dict[tuple[str, str], int]:
            return {}

        def count_targets(self) -> dict[str, int]:
            return {}

        def count_outbox(self) -> tuple[dict[str, int], None]:
            return {}, None

    m = Metrics(CollectorRegistry())
    TransportMetricsAdapter(m)
    m.bind_store(_NoCounts())
    suffixes = {"counter": ("_total", "_created"), "gauge": ("",), "unknown": ("",),
                "histogram": ("_bucket", "_sum", "_count", "_created"),
                "summary": ("_sum", "_count", "_created", ""), "info": ("_info",)}
    names: set[str] = set()
    for fam in m.registry.collect():
        names.update(fam.name + s for s in suffixes.get(fam.type, ("",)))
    return names


def metric_names_in(promql: str) -> set[str]:
    """The ``enforcer_*`` metric names a PromQL expression uses."""
    import re

    return set(re.findall(r"\benforcer_[a-z0-9_]+", promql))
