"""A real Prometheus server (Debian's ``prometheus``) scrapes the running daemon on
loopback every second; after a ban filed through the signed webhook is verified, its
HTTP API returns the expected series. Every query of the NOC dashboard and every alert
expression is evaluated by that server against the live data too."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from lab.testing import free_port
from tests.ops.conftest import ROOT, OpsDaemon, ban, casa_modem

prometheus_path = shutil.which("prometheus")
pytestmark = [
    pytest.mark.lab, pytest.mark.slow,
    pytest.mark.skipif(prometheus_path is None, reason="prometheus not installed "
                       "(apt-get install prometheus; .ci/run installs it)"),
]
WAIT_S = 60.0


class Prom:
    def __init__(self, base: str, process: subprocess.Popen[bytes], log: Path) -> None:
        self.base, self.process, self.log = base, process, log

    def query(self, promql: str) -> list[dict[str, Any]]:
        r = httpx.get(self.base + "/api/v1/query", params={"query": promql}, timeout=10)
        body = r.json()
        assert r.status_code == 200 and body["status"] == "success", (promql, body)
        assert body["data"]["resultType"] == "vector", (promql, body)
        return list(body["data"]["result"])

    def wait_for(self, promql: str, pred: Callable[[list[dict[str, Any]]], bool],
                 timeout: float = WAIT_S) -> list[dict[str, Any]]:
        """Query until ``pred(result)`` holds (bounded)."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(promql)
            if pred(result):
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"{promql} never matched; last result: {result}\n"
                                     f"prometheus log:\n{self.log.read_text()[-2000:]}")
            time.sleep(0.5)


def value(result: list[dict[str, Any]]) -> float:
    return sum(float(s["value"][1]) for s in result)


@pytest.fixture(scope="module")
def prom(ops_daemon: OpsDaemon, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prom]:
    assert prometheus_path is not None
    work = tmp_path_factory.mktemp("prometheus")
    target = ops_daemon.daemon.base.removeprefix("http://")
    config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
              "rule_files": [str(ROOT / "deploy" / "prometheus" / "alerts.yml")],
              "scrape_configs": [{"job_name": "enforcer", "scrape_interval": "1s",
                                  "scrape_timeout": "1s",
                                  "static_configs": [{"targets": [target]}]}]}
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log_path = work / "prometheus.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed below, after the process ends
    proc = subprocess.Popen(
        [prometheus_path, f"--config.file={work / 'prometheus.yml'}",
         f"--storage.tsdb.path={work / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
         "--storage.tsdb.retention.time=1h"],
        stdout=log, stderr=subprocess.STDOUT, cwd=work)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError("prometheus exited:\n" + log_path.read_text()[-3000:])
            try:
                if httpx.get(base + "/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("prometheus not ready:\n" + log_path.read_text()[-3000:])
            time.sleep(0.2)
        yield Prom(base, proc, log_path)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_prometheus_sees_the_ban_through_its_http_api(ops_daemon: OpsDaemon, prom: Prom) -> None:
    up = prom.wait_for('up{job="enforcer"}', lambda r: value(r) == 1)
    assert len(up) == 1
    # Everything before this ban (the fixture's own ban) is already in the series.
    prom.wait_for('sum(enforcer_orders{state="verified"})', lambda r: value(r) >= 1)
    before_verified = value(prom.query('sum(enforcer_orders{state="verified"})'))
    before_count = value(prom.query("enforcer_time_to_verified_seconds_count"))
    before_pushes = value(prom.query('sum(enforcer_pushes_total{device="casa-1"})'))

    order_id = ban(ops_daemon.daemon, casa_modem(41))  # webhook, then wait for verified
    assert order_id

    verified = prom.wait_for('enforcer_orders{state="verified"}',
                             lambda r: value(r) >= before_verified + 1)
    assert {s["metric"]["reason"] for s in verified} == {"threat_of_violence"}
    assert all(s["metric"]["job"] == "enforcer" for s in verified)
    prom.wait_for("enforcer_time_to_verified_seconds_count",
                  lambda r: value(r) >= before_count + 1)
    pushes = prom.wait_for('enforcer_pushes_total{device="casa-1"}',
                           lambda r: value(r) >= before_pushes + 1)
    assert {s["metric"]["result"] for s in pushes} <= {"changed", "unchanged"}
    assert {s["metric"]["mechanism"] for s in pushes} == {"cm-ctrl-disable-forwarding"}
    accepted = prom.query('enforcer_orders_accepted_total{source="webhook"}')
    assert value(accepted) >= 2
    # The histogram's buckets are there for the dashboard's quantiles.
    q = prom.query("histogram_quantile(0.95, sum by (le) "
                   "(enforcer_time_to_verified_seconds_bucket))")
    assert len(q) == 1 and float(q[0]["value"][1]) > 0
    # Device reachability is exported per device once the daemon has talked to it.
    devices = prom.wait_for("enforcer_device_up", lambda r: len(r) > 0)
    inventory = {d["name"] for d in ops_daemon.daemon.get("/v1/devices")["devices"]}
    assert {s["metric"]["device"] for s in devices} <= inventory


def _dashboard_queries() -> list[tuple[str, str]]:
    dash = json.loads((ROOT / "deploy" / "grafana" / "enforcer-dashboard.json").read_text())
    out = []
    for p in dash["panels"]:
        for t in p.get("targets", []):
            out.append((p["title"], t["expr"]))
    return out


def _grafana_to_promql(expr: str) -> str:
    """Grafana's variables, as Grafana would substitute them for this scrape."""
    return (expr.replace('instance=~"$instance"', 'instance=~".*"')
            .replace("$__rate_interval", "1m").replace("$__range", "1h"))


def test_every_dashboard_query_and_alert_expression_evaluates(ops_daemon: OpsDaemon,
                                                               prom: Prom) -> None:
    prom.wait_for('sum(enforcer_orders{state="verified"})', lambda r: value(r) >= 1)
    queries = _dashboard_queries()
    assert len(queries) >= 15
    for title, expr in queries:
        promql = _grafana_to_promql(expr)
        assert "$" not in promql, (title, promql)
        prom.query(promql)  # asserts status success
    # The NOC's headline panels show the ban.
    by_title = {t: _grafana_to_promql(e) for t, e in queries}
    assert value(prom.query(by_title["Bans in force (verified)"])) >= 1
    assert value(prom.query(by_title["Lift requests waiting"])) == 0
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            prom.query(re.sub(r"\s+", " ", rule["expr"]))
    # Prometheus loaded the rule file and evaluates it.
    r = httpx.get(prom.base + "/api/v1/rules", timeout=10).json()
    names = {rule["name"] for g in r["data"]["groups"] for rule in g["rules"]}
    assert {"EnforcerBanNotVerified", "EnforcerDeviceUnreachable", "EnforcerBannedMacSighted",
            "EnforcerAuditChainBroken", "EnforcerDenyListNearCapacity"} <= names
