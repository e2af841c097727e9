"""No endpoint and no CLI command lifts or deletes a ban without the approvals: every
route is tried with every role (and bodies that ask for it), and the order never
reaches ``lifting`` or ``lifted``; there is no DELETE, PUT or PATCH route at all."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.routing import APIRoute
from typer.testing import CliRunner

from enforcer.cli.main import app as cli_app
from enforcer.domain.model import Role
from tests.lifts.conftest import BOARD, LiftEnv, policy_with

BODIES: list[dict[str, Any]] = [
    {}, {"state": "lifted"}, {"state": "lifting", "reason": "x"},
    {"decision": "approve"}, {"reason": "please", "ttl_hours": 1},
    {"decision": "approve", "lift_request_id": "LIFT"},
]


def _routes(env: LiftEnv) -> list[tuple[str, str]]:
    app = env.client._transport.app  # type: ignore[attr-defined]
    out = []
    for r in app.routes:
        if isinstance(r, APIRoute):
            out += [(m, r.path) for m in sorted(r.methods or ())]
    return out


@pytest.mark.asyncio
async def test_no_route_lifts_or_deletes_without_consent(board: LiftEnv) -> None:
    order_id = await board.verified_order()
    routes = _routes(board)
    assert not [m for m, _ in routes if m in ("DELETE", "PUT", "PATCH")], routes
    lift_id = ""
    for round_ in range(2):  # without, then with an open lift request
        for method, path in routes:
            url = re.sub(r"\{order_id\}", order_id, path)
            url = re.sub(r"\{lift_id\}", lift_id or "lift_x", url)
            url = re.sub(r"\{[a-z_]+\}", "x", url)
            for role in [*(r.value for r in Role), "alice", "bob", "dave"]:
                for body in BODIES if method == "POST" else [None]:
                    if body and body.get("lift_request_id"):
                        body = {**body, "lift_request_id": lift_id or "lift_x"}
                    await board.client.request(method, url, json=body,
                                               headers=board.auth(role))
                    # Only two of three board members can ever approve here, so no
                    # sequence of calls may lift the ban.
                    assert board.state(order_id) in ("verified", "lift_pending"), (
                        method, url, role, body)
            for method2 in ("DELETE", "PUT", "PATCH"):
                r = await board.client.request(method2, url, headers=board.auth("admin"))
                assert r.status_code in (404, 405)
        if round_ == 0:
            r = await board.lift(order_id)
            lift_id = r.json()["lift_request"]["id"]
            board.store.disable_user("carol", actor="test")  # the third can never consent
    assert board.state(order_id) == "lift_pending"
    assert "lift.approved" not in [e.action for e in board.store.audit_entries()]


@pytest.fixture
def served(board: LiftEnv) -> Iterator[str]:
    app = board.client._transport.app  # type: ignore[attr-defined]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive()
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_no_cli_command_lifts_without_consent(board: LiftEnv, served: str,
                                              tmp_path: Path) -> None:
    import asyncio

    order_id = asyncio.run(board.verified_order())
    runner = CliRunner()
    commands: list[list[str]] = [
        ["lift", order_id, "--reason", "x"], ["approve", order_id],
        ["approve", order_id, "--refuse"], ["orders", "show", order_id],
        ["ban", "--account", "a", "--ticket", "t", "--reason", "harassment", "--mac",
         "00:11:22:33:44:55"], ["plan", order_id], ["devices", "list"],
        ["cluster", "status"], ["reconcile"], ["accounts", "show", "a"],
        ["orders", "amend", order_id, "--reason", "fraud"],
        ["orders", "amend", order_id, "--remove-mac", "00:11:22:33:44:55"],
        ["ban", "--account", "a", "--ticket", "t", "--reason", "harassment",
         "--all-devices", "--dry-run"],
    ]
    for cmd in commands:
        for who in [*(r.value for r in Role), "alice", "bob", "dave"]:
            runner.invoke(cli_app, [*cmd, "--url", served, "--token", board.tokens[who]])
            assert board.state(order_id) in ("verified", "lift_pending"), (cmd, who)
    # Every top-level command is tried above, or is local and cannot reach the lift
    # endpoints: users / audit (database), serve (the daemon), dhcp (watches DHCP). A new
    # command must be classified here (and tried above if it talks to the API).
    names = {c.name or getattr(c.callback, "__name__", "") for c in
             cli_app.registered_commands} | {g.name for g in cli_app.registered_groups}
    assert names == {"ban", "orders", "lift", "approve", "devices", "where", "plan", "users",
                     "audit", "serve", "dhcp", "cluster", "accounts",
                     "reconcile"}, \
        "classify the new CLI command in this test"
    lift = board.store.open_lift_request(order_id)
    assert lift is not None and len([a for a in lift.approvals
                                     if a.decision == "approve"]) == 2  # alice, bob
    assert board.state(order_id) == "lift_pending"


def test_policy_keeps_the_board_rule() -> None:
    assert policy_with(BOARD).for_reason("harassment").lift.rule.value == "unanimous"
