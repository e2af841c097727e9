"""Helpers for the CLI tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from enforcer.api.testing import RecordingEngine
from enforcer.cli.main import app
from enforcer.store import Store


@dataclass
class Served:
    url: str
    store: Store
    engine: RecordingEngine
    tokens: dict[str, str]
    config: Path

    def run(self, *args: str, role: str | None = "engineer",
            env: dict[str, str] | None = None) -> Result:
        full = [*args, "--url", self.url]
        if role is not None:
            full += ["--token", self.tokens[role]]
        return CliRunner().invoke(app, full, env=env)

    def json(self, *args: str, role: str = "engineer") -> Any:
        res = self.run(*args, "--json", role=role)
        assert res.exit_code == 0, res.output + res.stderr
        return json.loads(res.stdout)
