"""CLI fixtures: the real app served by uvicorn on 127.0.0.1 (port 0) in a thread."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from prometheus_client import CollectorRegistry

from enforcer.api import create_app
from enforcer.api.testing import RecordingEngine
from enforcer.config import Settings
from enforcer.domain.model import Role
from enforcer.store import Store, upgrade
from tests.cli.cli_env import Served


@pytest.fixture(autouse=True)
def _plain_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    for key in ("ENFORCER_URL", "ENFORCER_TOKEN", "ENFORCER_CONFIG"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    secret = "whsec_" + base64.b64encode(b"s" * 32).decode()
    path = tmp_path / "enforcer.yaml"
    path.write_text(f"state_dir: {tmp_path / 'state'}\n"
                    f"webhook: {{secrets: ['{secret}']}}\n")
    return path


@pytest.fixture
def served(config_file: Path) -> Iterator[Served]:
    from enforcer.config import load_settings

    settings: Settings = load_settings(config_file)
    url = settings.resolved_database_url()
    upgrade(url)
    from enforcer.store.auditkey import load_keyring

    # The configured audit keys, as the daemon (and the local CLI commands) use them.
    store = Store.from_url(url, audit_keys=load_keyring(settings.audit_key_dir()))
    engine = RecordingEngine()
    app = create_app(settings=settings, store=store, engine=engine,
                     registry=CollectorRegistry())
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    # The built-in policy's ordinary reasons need two members of lift-approvers.
    tokens = {r.value: store.add_user(
        f"u-{r.value}", r, groups=("lift-approvers",) if r is Role.APPROVER else ())[1]
        for r in Role}
    try:
        yield Served(f"http://127.0.0.1:{port}", store, engine, tokens, config_file)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        store.dispose()
