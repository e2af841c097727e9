"""A fresh installation with ``audit.anchor.file`` set passes ``enforcer audit verify``
from its first start on, across a clean stop and a restart: the daemon anchors the chain
head at start-up and at a clean stop, not only on its timer (here an hour, so the timer
never fires during the test)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from enforcer.audit.anchor import read_anchor_file
from lab.demo import send_webhook
from lab.testing import LabHandle
from tests.conftest import Daemon, start_daemon, stop_daemon

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def _verify(d: Daemon, *extra: str) -> dict[str, object]:
    res = d.cli("audit", "verify", "--json", *extra, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    out: dict[str, object] = json.loads(res.stdout)
    assert out["ok"] is True and out["chain_ok"] is True, out
    return out


def test_fresh_install_verifies_before_and_after_restart(lab: LabHandle,
                                                          tmp_path: Path) -> None:
    anchors = tmp_path / "worm" / "anchors.jsonl"
    env: dict[str, Any] = {"ENFORCER_AUDIT__ANCHOR__FILE": str(anchors),
           "ENFORCER_AUDIT__ANCHOR_INTERVAL_S": "3600"}
    d = start_daemon(lab, tmp_path / "d", **env)
    try:
        assert anchors.exists(), "no anchor written at start-up"
        at_start = read_anchor_file(anchors)
        assert at_start
        _verify(d)
        _verify(d, "--full")
        r = send_webhook(d.base, d.secret, {
            "ticket": "ANCHOR-1", "account": "ACC-ANCHOR", "reason": "threat_of_violence",
            "devices": [{"mac": "02:00:5e:aa:00:01", "kind": "cable_modem"}]})
        assert r.status_code == 202, r.text
    finally:
        stop_daemon(d)
    assert d.process.returncode == 0, d.log_path.read_text()[-3000:]
    at_stop = read_anchor_file(anchors)
    assert at_stop[-1].seq > at_start[-1].seq, "no anchor of the head at the clean stop"
    _verify(d)
    _verify(d, "--full")

    again = start_daemon(lab, tmp_path / "d", secret=d.secret, tokens=d.tokens, **env)
    try:
        _verify(again)
        _verify(again, "--full")
    finally:
        stop_daemon(again)
    assert read_anchor_file(anchors)[-1].seq >= at_stop[-1].seq
    _verify(again, "--full")
