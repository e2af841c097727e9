"""The story on the lab: a ban for a threat of violence is lifted only when all three
members of the Health & Safety board approve; the modem then forwards again and the
set-top decodes. Real daemon (``enforcer serve``), real lab, real SNMP and SSH."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from lab.testing import LabHandle
from lab.topology import ecm_of, generated_mac
from tests.conftest import Daemon, start_daemon, stop_daemon

pytestmark = [pytest.mark.lab, pytest.mark.slow]
SECRET = "whsec_" + base64.b64encode(b"h" * 32).decode()


def _population(lab: LabHandle, node: str, i: int) -> tuple[str, str, str]:
    """(modem, set-top, its eCM) of the lab's generated population on ``node``."""
    for dev_no, d in enumerate(lab.topology.expanded_devices(), start=1):
        for node_no, n in enumerate(d.nodes, start=1):
            if n.name == node:
                cm = generated_mac(dev_no, node_no, i)
                stb = generated_mac(dev_no, node_no, i, set_top=True)
                return tuple(":".join(f"{b:02x}" for b in m)  # type: ignore[return-value]
                             for m in (cm, stb, ecm_of(stb)))
    raise LookupError(node)


@pytest.fixture
def hooks() -> Iterator[tuple[str, list[str]]]:
    got: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            got.append(json.loads(body)["type"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/board", got
    server.shutdown()
    server.server_close()


@pytest.fixture
def board_daemon(lab: LabHandle, tmp_path: Path,
                 hooks: tuple[str, list[str]]) -> Iterator[Daemon]:
    policy = tmp_path / "policy.yaml"
    safety = {"default_scope": "footprint", "lift": {
        "group": "hs-board", "rule": "unanimous", "time_limit_hours": 72,
        "requester_may_approve": False}, "notify": [{"to": ["board"]}]}
    other = {"default_scope": "node", "lift": {"rule": "n_of_m", "n": 2}}
    policy.write_text(json.dumps({
        "webhooks": {"board": {"url": hooks[0], "secret": SECRET}},
        "reasons": {"threat_of_violence": safety, "harassment": safety, "fraud": other,
                    "theft_of_service": other, "non_payment": other, "other": other}}))
    d = start_daemon(lab, tmp_path, ENFORCER_POLICY=str(policy))
    try:
        yield d
    finally:
        stop_daemon(d)


def test_board_of_three_lifts_the_ban_on_the_lab(lab: LabHandle, board_daemon: Daemon,
                                                 hooks: tuple[str, list[str]]) -> None:
    d = board_daemon
    board = {}
    for name in ("alice", "bob", "carol"):
        added = d.cli("users", "add", name, "--role", "approver", "--group", "hs-board",
                      "--json").stdout
        board[name] = json.loads(added)["token"]
    modem, stb, ecm = _population(lab, "node-a1", 7)
    out = d.cli("ban", "--account", "ACC-E2E-LIFT", "--ticket", "ESC-LIFT-1", "--reason",
                "threat_of_violence", "--mac", modem, "--mac", f"{stb}:set_top",
                "--node", "node-a1", "--json", token=d.tokens["engineer"])
    order_id = json.loads(out.stdout)["order_id"]
    d.wait_state(order_id, "verified", timeout=60)
    assert lab.truth(modem)["forwarding"] is False
    assert lab.truth(stb)["headend"]["decoding"] is False

    out = d.cli("lift", order_id, "--reason", "board hearing held; risk resolved",
                "--json", token=d.tokens["engineer"])
    assert json.loads(out.stdout)["lift_request"]["electorate"] == ["alice", "bob", "carol"]
    for name in ("alice", "bob"):
        out = d.cli("approve", order_id, "--json", token=board[name])
        assert json.loads(out.stdout)["outcome"] == "recorded"
    # Two of three: the ban stays in force, on the devices too.
    refused = d.cli("approve", order_id, token=d.tokens["approver"], check=False)
    assert refused.returncode == 5  # an approver outside the board
    assert d.get(f"/v1/orders/{order_id}")["state"] == "lift_pending"
    assert lab.truth(modem)["forwarding"] is False
    assert lab.truth(ecm)["forwarding"] is False
    assert lab.truth(stb)["headend"]["decoding"] is False

    out = d.cli("approve", order_id, "--note", "unanimous", "--json", token=board["carol"])
    assert json.loads(out.stdout)["outcome"] == "approved"
    order = d.wait_state(order_id, "lifted", timeout=90)
    assert all(t["state"] == "removed" for t in order["targets"])
    lab.wait_truth(modem, lambda t: t["forwarding"] is True, timeout=30)
    lab.wait_truth(stb, lambda t: t["headend"]["decoding"] is True, timeout=30)
    assert "lift.requested" in hooks[1] and "lift.approved" in hooks[1]
    r = httpx.post(f"{d.base}/v1/orders/{order_id}/approvals", json={},
                   headers={"authorization": f"Bearer {board['alice']}"}, timeout=10)
    assert r.status_code == 409  # nothing left to approve
