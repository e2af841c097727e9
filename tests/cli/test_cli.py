"""The CLI against the real app served by uvicorn."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from enforcer.cli.main import app
from enforcer.cli.orders import parse_device
from enforcer.domain.model import OrderState, Role, TargetState
from enforcer.engine.contract import PlanRow, Sighting
from enforcer.store import TargetSpec
from tests.cli.cli_env import Served


def test_parse_device_notations() -> None:
    assert parse_device("0011.2233.4455") == {"mac": "00:11:22:33:44:55",
                                              "kind": "cable_modem"}
    assert parse_device("00:11:22:33:44:55:mta") == {"mac": "00:11:22:33:44:55", "kind": "mta"}
    assert parse_device("00-11-22-33-44-66:set_top=001122334477") == {
        "mac": "00:11:22:33:44:66", "kind": "set_top", "ecm_mac": "00:11:22:33:44:77"}


def _ban(served: Served, *extra: str) -> str:
    res = served.run("ban", "--account", "acct-1", "--ticket", "ESC-1", "--reason", "fraud",
                     "--mac", "0011.2233.4455", "--mac", "00:11:22:33:44:66:set_top",
                     "--node", "node-a", *extra)
    assert res.exit_code == 0, res.output + res.stderr
    order_id, state = res.stdout.split()
    assert state == "accepted"
    return order_id


def test_ban_list_show(served: Served) -> None:
    order_id = _ban(served, "--note", "angry caller")
    order = served.store.get_order(order_id)
    assert [d.kind.value for d in order.devices] == ["cable_modem", "set_top"]
    assert served.engine.accepted == [order_id]

    res = served.run("orders", "list")
    assert res.exit_code == 0 and order_id[-8:] in res.stdout and "fraud" in res.stdout
    assert order_id not in res.stdout and re.search(r"\d+ s ago", res.stdout)  # relative
    res = served.run("orders", "list", "--wide")
    assert res.exit_code == 0 and order_id in res.stdout and "ESC-1" in res.stdout
    listing = served.json("orders", "list", "--reason", "fraud")
    assert [o["id"] for o in listing["orders"]] == [order_id]

    res = served.run("orders", "show", order_id)
    assert res.exit_code == 0
    assert "00:11:22:33:44:66" in res.stdout and "angry caller" in res.stdout
    assert served.json("orders", "show", order_id)["id"] == order_id
    assert served.json("orders", "show", order_id[-8:])["id"] == order_id  # the short id


def test_token_is_never_printed(served: Served) -> None:
    res = served.run("orders", "list", role="auditor")
    assert served.tokens["auditor"] not in res.output + res.stderr


def test_ban_json(served: Served) -> None:
    doc = served.json("ban", "--account", "a", "--ticket", "t", "--reason", "harassment",
                      "--mac", "00:11:22:33:44:55")
    assert doc["state"] == "accepted"
    assert served.store.get_order(doc["order_id"]).scope.value == "footprint"


def test_ban_wait_until_verified(served: Served) -> None:
    def engine_at_work() -> None:
        for _ in range(200):
            orders = served.store.list_orders()
            if orders:
                break
            time.sleep(0.02)
        order_id = orders[0].id
        (t,) = served.store.replace_targets(order_id, [
            TargetSpec("cmts1", orders[0].devices[0].mac, orders[0].devices[0].kind, "deny")])
        time.sleep(0.3)
        served.store.update_target(t.id, actor="engine", audit_action="target.verified",
                                   state=TargetState.VERIFIED,
                                   verified_at=served.store.clock())
        served.store.set_order_state(order_id, OrderState.VERIFIED, actor="engine")

    worker = threading.Thread(target=engine_at_work)
    worker.start()
    res = served.run("ban", "--account", "a", "--ticket", "t", "--reason", "fraud",
                     "--mac", "00:11:22:33:44:55", "--wait", "--timeout", "20",
                     "--poll", "0.1")
    worker.join()
    assert res.exit_code == 0, res.output + res.stderr
    assert "verified in" in res.stdout


def test_ban_wait_times_out(served: Served) -> None:
    res = served.run("ban", "--account", "a", "--ticket", "t", "--reason", "fraud",
                     "--mac", "00:11:22:33:44:55", "--wait", "--timeout", "0.5",
                     "--poll", "0.1")
    assert res.exit_code == 9
    assert "not verified after 0.5 s" in res.stderr and "state accepted" in res.stderr


@pytest.mark.parametrize(("args", "role", "code", "text"), [
    (("orders", "list"), None, 4, "401"),
    (("orders", "show", "ord_nope"), "engineer", 6, "no order ord_nope"),
    (("users-nope",), "engineer", 2, ""),
    (("ban", "--account", "a", "--ticket", "t", "--reason", "fraud", "--mac",
      "00:11:22:33:44:55"), "auditor", 5, "403"),
    (("ban", "--account", "a", "--ticket", "t", "--reason", "fraud", "--mac",
      "00:11:22:33:44:55", "--node", "atlantis"), "engineer", 7, "unknown node"),
    (("ban", "--account", "a", "--ticket", "t", "--reason", "fraud", "--mac",
      "ff:ff:ff:ff:ff:ff"), "engineer", 2, "broadcast"),
    (("where", "zz"), "engineer", 7, "not a MAC address"),
    (("ban", "--account", "a", "--ticket", "t", "--reason", "fraud", "--mac",
      "00:11:22:33:44:55:modem"), "engineer", 2, "kinds: cable_modem, set_top"),
])
def test_errors_have_messages_and_exit_codes(served: Served, args: tuple[str, ...],
                                             role: str | None, code: int, text: str) -> None:
    res = served.run(*args, role=role)
    assert res.exit_code == code, res.output + res.stderr
    assert text in res.stderr


def test_connection_refused() -> None:
    res = CliRunner().invoke(app, ["orders", "list", "--url", "http://127.0.0.1:9",
                                   "--token", "x"])
    assert res.exit_code == 3 and "cannot connect" in res.stderr


def test_urls_without_a_scheme_or_with_a_path_are_explained(served: Served) -> None:
    res = CliRunner().invoke(app, ["orders", "list", "--url", "127.0.0.1:8080",
                                   "--token", "x"])
    assert res.exit_code == 2 and "must start with http:// or https://" in res.stderr
    res = CliRunner().invoke(app, ["orders", "list", "--url", served.url + "/api",
                                   "--token", served.tokens["engineer"]])
    assert res.exit_code == 6 and "base URL, without a path" in res.stderr


def test_version_users_list_and_reconcile(served: Served) -> None:
    import enforcer

    res = CliRunner().invoke(app, ["--version"])
    assert res.exit_code == 0 and res.stdout.strip() == f"enforcer {enforcer.__version__}"
    res = CliRunner().invoke(app, ["users", "list", "--config", str(served.config)])
    assert res.exit_code == 0, res.output + res.stderr
    assert "u-engineer" in res.stdout and "enabled" in res.stdout
    assert all(tok not in res.stdout for tok in served.tokens.values())
    users = json.loads(CliRunner().invoke(app, ["users", "list", "--json", "--config",
                                                str(served.config)]).stdout)["users"]
    assert {"name": "u-approver", "role": "approver"}.items() <= next(
        u for u in users if u["name"] == "u-approver").items()
    res = served.run("reconcile")
    assert res.exit_code == 0, res.output + res.stderr
    assert "checked" in res.stdout and "repairs" in res.stdout
    assert served.run("reconcile", role="auditor").exit_code == 5


def test_help_names_values_in_words() -> None:
    for args in (["--help"], ["ban", "--help"], ["orders", "list", "--help"],
                 ["users", "add", "--help"], ["approve", "--help"], ["audit", "export",
                                                                      "--help"]):
        res = CliRunner().invoke(app, args, env={"COLUMNS": "100"})
        assert res.exit_code == 0, res.output
        assert not re.search(r"<(str|bool|int|float|path|list\[)", res.stdout), res.stdout
    out = CliRunner().invoke(app, ["ban", "--help"], env={"COLUMNS": "100"}).stdout
    assert "ACCOUNT" in out and "--install-completion" in CliRunner().invoke(
        app, ["--help"]).stdout


def test_lift_and_approve(served: Served) -> None:
    # the default policy needs 2 members of lift-approvers
    served.store.add_user("u-approver-2", Role.APPROVER, groups=("lift-approvers",))
    order_id = _ban(served)
    res = served.run("lift", order_id, "--reason", "settled")
    assert res.exit_code == 0 and "lift_pending" in res.stdout
    lift_id = served.store.open_lift_request(order_id).id  # type: ignore[union-attr]
    res = served.run("approve", lift_id, role="approver")
    assert res.exit_code == 0 and "approve recorded" in res.stdout
    res = served.run("approve", order_id, "--refuse", role="approver")
    assert res.exit_code == 8 and "already decided" in res.stderr
    res = served.run("approve", order_id, "--json", role="admin")
    assert res.exit_code == 5 and "approver" in res.stderr  # only approvers approve
    assert served.store.get_order(order_id).state is OrderState.LIFT_PENDING


def test_devices_where_plan(served: Served) -> None:
    res = served.run("devices", "list", role="auditor")
    assert res.exit_code == 0 and "cmts1" in res.stdout and "cmts2" in res.stdout
    assert served.json("devices", "check", "cmts1")["reachable"] is True
    res = served.run("devices", "check", "ghost")
    assert res.exit_code == 6
    served.engine.sightings["00:11:22:33:44:55"] = [Sighting(
        device="cmts1", mac="00:11:22:33:44:55", verdict="forwarding", state="online",
        error=None)]
    res = served.run("where", "0011.2233.4455")
    assert res.exit_code == 0 and "cmts1" in res.stdout and "online" in res.stdout
    assert "not registered" in served.run("where", "00:11:22:33:44:99").stdout
    served.engine.plans[None] = [PlanRow(order_id="ord_a", device="cmts1",
                                         mac="00:11:22:33:44:55", kind="cable_modem",
                                         mechanism="deny", current_state="pending",
                                         action="apply")]
    assert served.json("plan")["targets"][0]["mechanism"] == "deny"
    assert "cmts1" in served.run("plan").stdout
    assert served.run("plan", "ord_nope").exit_code == 6


def test_users_add_and_audit_verify_are_local(served: Served) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["users", "add", "zoe", "--role", "approver",
                              "--expires-in-days", "7", "--config", str(served.config)])
    assert res.exit_code == 0, res.output + res.stderr
    token = res.stdout.strip().splitlines()[-1]
    user = served.store.authenticate(token)
    assert user is not None and user.name == "zoe" and user.expires_at is not None
    res = runner.invoke(app, ["users", "add", "zoe", "--role", "approver",
                              "--config", str(served.config)])
    assert res.exit_code == 8
    for reserved in ("engine", "Watcher", "escalation-system"):
        res = runner.invoke(app, ["users", "add", reserved, "--role", "engineer",
                                  "--config", str(served.config)])
        assert res.exit_code == 7 and "reserved" in res.stderr, res.output
    res = runner.invoke(app, ["audit", "verify", "--config", str(served.config)])
    assert res.exit_code == 0 and "audit chain OK" in res.stdout
    with served.store.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2"))
    # --full walks every entry; the default walks from the last verified checkpoint.
    res = runner.invoke(app, ["audit", "verify", "--full", "--json", "--config",
                              str(served.config)])
    assert res.exit_code == 11 and '"first_bad_seq": 2' in res.stdout
    head = served.store.audit_entries(limit=1000)[-1].seq
    with served.store.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET hash = :h WHERE seq = :s"),
                     {"h": "f" * 64, "s": head})
    res = runner.invoke(app, ["audit", "verify", "--json", "--config", str(served.config)])
    assert res.exit_code == 11 and f'"first_bad_seq": {head}' in res.stdout


def test_bad_config_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("nonsense_key: 1\n")
    res = CliRunner().invoke(app, ["audit", "verify", "--config", str(bad)])
    assert res.exit_code == 12 and "nonsense_key: unknown key" in res.stderr


def test_url_defaults_from_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("http: {listen: '0.0.0.0:9'}\n")
    res = CliRunner().invoke(app, ["orders", "list", "--config", str(cfg), "--token", "x"])
    assert res.exit_code == 3 and "http://127.0.0.1:9" in res.stderr
    monkeypatch.setenv("ENFORCER_URL", "http://127.0.0.1:7")
    res = CliRunner().invoke(app, ["orders", "list", "--token", "x"])
    assert "http://127.0.0.1:7" in res.stderr
