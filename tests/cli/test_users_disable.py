"""`enforcer users disable` revokes a token at once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from enforcer.cli.main import app
from enforcer.store import Store


def test_disable_revokes_the_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENFORCER_STATE_DIR", str(tmp_path))
    runner = CliRunner()
    out = runner.invoke(app, ["users", "add", "mallory", "--role", "engineer", "--json"])
    assert out.exit_code == 0, out.output
    token = json.loads(out.output)["token"]
    store = Store.from_url(f"sqlite:///{tmp_path / 'enforcer.db'}")
    try:
        assert store.authenticate(token) is not None
        out = runner.invoke(app, ["users", "disable", "mallory"])
        assert out.exit_code == 0, out.output
        assert store.authenticate(token) is None
        assert any(e.action == "user.disabled" for e in store.audit_entries())
    finally:
        store.dispose()
    out = runner.invoke(app, ["users", "disable", "nobody"])
    assert out.exit_code == 6, out.output
