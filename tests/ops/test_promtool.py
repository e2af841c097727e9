"""The alert rules and the daemon's metrics pass Prometheus' own checker (promtool from
Debian's prometheus package): ``check rules``, ``test rules`` (the rules' unit tests),
``check config`` on the example Prometheus config, and ``check metrics`` on a live
``/metrics`` scrape of a daemon that has verified a ban."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.ops.conftest import ROOT, OpsDaemon, exported_names, metric_names_in

PROM_DIR = ROOT / "deploy" / "prometheus"
ALERTS = PROM_DIR / "alerts.yml"

promtool_path = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    promtool_path is None, reason="promtool not installed (apt-get install prometheus; "
    ".ci/run installs it)")


def promtool(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    assert promtool_path is not None
    return subprocess.run([promtool_path, *args], input=stdin.decode() if stdin else None,
                          capture_output=True, text=True, timeout=60, check=False)


def _rules() -> list[dict[str, object]]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [r for g in doc["groups"] for r in g["rules"]]


@needs_promtool
def test_alert_rules_pass_promtool_check_rules() -> None:
    r = promtool("check", "rules", str(ALERTS))
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in r.stdout, r.stdout


@needs_promtool
def test_alert_rules_unit_tests_pass() -> None:
    r = promtool("test", "rules", str(PROM_DIR / "alerts.test.yml"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


def test_alert_rules_cover_the_required_alerts_on_exported_metrics() -> None:
    rules = {str(r["alert"]): str(r["expr"]) for r in _rules()}
    required = {"EnforcerBanNotVerified": "enforcer_orders",
                "EnforcerDeviceUnreachable": "enforcer_device_up",
                "EnforcerBannedMacSighted": "enforcer_banned_mac_sightings_total",
                "EnforcerAuditChainBroken": "enforcer_audit_chain_ok",
                "EnforcerDenyListNearCapacity": "enforcer_device_table_used_ratio"}
    for alert, metric in required.items():
        assert alert in rules, f"missing alert {alert}"
        assert metric in metric_names_in(rules[alert]), (alert, rules[alert])
    known = exported_names()
    for alert, expr in rules.items():
        unknown = metric_names_in(expr) - known
        assert not unknown, f"{alert} uses metrics the daemon does not export: {unknown}"
    for r in _rules():
        labels = r.get("labels")
        annotations = r.get("annotations")
        assert isinstance(labels, dict) and labels.get("severity") in {"critical", "warning"}
        assert isinstance(annotations, dict) and annotations.get("summary"), r


@needs_promtool
def test_example_prometheus_config_passes_check_config(tmp_path: Path) -> None:
    # The example mounts alerts.yml at /etc/prometheus/enforcer-alerts.yml (compose.yaml);
    # here it is checked with the rule file next to it.
    cfg = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text())
    assert cfg["rule_files"] == ["/etc/prometheus/enforcer-alerts.yml"]
    shutil.copy(ALERTS, tmp_path / "enforcer-alerts.yml")
    cfg["rule_files"] = [str(tmp_path / "enforcer-alerts.yml")]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(cfg))
    r = promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout + r.stderr


@needs_promtool
@pytest.mark.lab
def test_live_metrics_pass_promtool_check_metrics(ops_daemon: OpsDaemon) -> None:
    resp = httpx.get(ops_daemon.daemon.base + "/metrics", timeout=10)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    text = resp.content
    # The scrape carries the ban: the verified order, its push and its verification time.
    assert b'enforcer_orders{reason="threat_of_violence",state="verified"}' in text
    assert b'enforcer_pushes_total{device="casa-1"' in text
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in text_string_to_metric_families(resp.text) for s in fam.samples}
    assert samples[("enforcer_time_to_verified_seconds_count", ())] >= 1
    r = promtool("check", "metrics", stdin=text)
    # promtool prints lint findings (e.g. naming problems) and exits 3 for them.
    assert r.returncode == 0, f"promtool check metrics:\n{r.stdout}{r.stderr}"
    assert r.stdout.strip() == "" and r.stderr.strip() == "", r.stdout + r.stderr
