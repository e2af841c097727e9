"""``enforcer dhcp``: bans read from the daemon page by page; clear failures (nothing
is sniffed or sent here: the interface does not exist)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from enforcer.cli import dhcp as dhcp_cli
from enforcer.cli.main import app
from enforcer.dhcp.bans import IN_FORCE, bans_from_orders
from enforcer.domain.mac import Mac


class FakeClient:
    def __init__(self, orders: dict[str, list[dict[str, Any]]]) -> None:
        self.orders = orders
        self.calls: list[tuple[str, int]] = []

    def __enter__(self) -> FakeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def get(self, path: str, **params: Any) -> Any:
        assert path == "/v1/orders"
        state, limit, offset = params["state"], params["limit"], params["offset"]
        self.calls.append((state, offset))
        rows = self.orders.get(state, [])
        return {"orders": rows[offset:offset + limit]}


def test_orders_in_force_are_read_page_by_page(monkeypatch: pytest.MonkeyPatch) -> None:
    many = [{"state": "verified", "devices": [
        {"mac": str(Mac(bytes([0, 0x1D, 0xCF, 0, i // 256, i % 256]))), "kind": "cable_modem"}]}
        for i in range(1, 1502)]
    fake = FakeClient({"verified": many, "lift_pending": many[:1]})
    monkeypatch.setattr(dhcp_cli, "client", lambda *a: fake)
    orders = dhcp_cli._orders(None, None, None)
    assert len(orders) == 1502
    assert ("verified", 1000) in fake.calls and {s for s, _ in fake.calls} == set(IN_FORCE)
    assert len(bans_from_orders(orders).macs) == 1501


def test_sentinel_refuses_a_missing_interface(tmp_path: Path) -> None:
    bans = tmp_path / "bans"
    bans.write_text("00:1d:cf:4a:12:7e\n")
    res = CliRunner().invoke(app, ["dhcp", "sentinel", "--interface", "enf-nope0",
                                   "--bans-file", str(bans), "--duration", "1"])
    assert res.exit_code == 1 and "cannot read enf-nope0" in res.output


def test_sentinel_refuses_a_bad_ban_file(tmp_path: Path) -> None:
    bans = tmp_path / "bans"
    bans.write_text("not-a-mac\n")
    res = CliRunner().invoke(app, ["dhcp", "sentinel", "--interface", "enf-nope0",
                                   "--bans-file", str(bans)])
    assert res.exit_code == 7 and "bans:1" in res.output
