"""The README's "Using it" commands, run in order in a clean clone, work as written: the
lab, an engineer's token, the daemon, the story's ban, the board of three lifting it,
the audit chain and the evidence bundle. Each ``&`` line runs in the background; the
test then waits for it as a reader would (the lab's inventory, the daemon's /readyz).
It uses the README's fixed ports, so it is skipped when they are taken (never in CI)."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.lab, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
#: The lab's SNMP (UDP) and SSH (TCP) ports for its devices, its control API, the daemon.
TCP_PORTS = [8470, 8480, *range(12200, 12210)]
UDP_PORTS = list(range(16100, 16110))

WAITS = {
    "enforcer-lab up": "for _ in $(seq 300); do [ -s .lab/inventory.yaml ] && [ -s .lab/lab.json ]"
                       " && break; sleep 0.1; done; [ -s .lab/inventory.yaml ]",
    "enforcer serve": "for _ in $(seq 300); do python -c \"import httpx,sys; sys.exit("
                      "httpx.get('http://127.0.0.1:8470/readyz').status_code != 200)\" "
                      "2>/dev/null && break; sleep 0.2; done",
}


def using_it() -> list[str]:
    """The shell lines of the README's "Using it" section, continuation lines joined."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Using it", 1)[1].split("\n## ", 1)[0]
    lines: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", section, flags=re.S):
        for raw in block.replace("\\\n", " ").splitlines():
            if raw.strip():
                lines.append(raw.rstrip())
    return lines


def _busy() -> list[str]:
    taken = []
    for port, kind in [(p, socket.SOCK_STREAM) for p in TCP_PORTS] + [
            (p, socket.SOCK_DGRAM) for p in UDP_PORTS]:
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                taken.append(f"{port}/{'tcp' if kind == socket.SOCK_STREAM else 'udp'}")
    return taken


def test_readme_commands_work_in_order_on_a_clean_clone(tmp_path: Path) -> None:
    busy = _busy()
    if busy and os.environ.get("CI") != "true":
        pytest.skip(f"the README's ports are taken here: {', '.join(busy[:5])}")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(clone)], check=True)
    # The README's own changes when run from a working tree (the clone has the commit).
    shutil.copy(ROOT / "README.md", clone / "README.md")
    (clone / ".venv").symlink_to(ROOT / ".venv")
    script = ["set -euo pipefail", "trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT"]
    for line in using_it():
        script.append(f"echo '+ {line[:60]}' >&2")
        script.append(line)
        for what, wait in WAITS.items():
            if what in line and line.rstrip().endswith("&"):
                script.append(wait)
    script.append("ENFORCER_TOKEN=$ALICE enforcer orders show $ORDER --json > order.json")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ENFORCER_", "VIRTUAL_ENV"))}
    p = subprocess.run(["bash", "-c", "\n".join(script)], cwd=clone, env=env,
                       capture_output=True, text=True, timeout=600, check=False)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-4000:]
    assert "verified in" in out and "audit chain OK" in out, out[-4000:]
    assert "approve recorded" in out and "lifting" in out, out[-4000:]
    assert (clone / "evidence.json").exists()  # and verify_bundle exited 0 (set -e)
    assert "Traceback" not in out, out[-4000:]
    order = json.loads((clone / "order.json").read_text())
    assert order["state"] in ("lifting", "lifted")
    [lift] = order["lift_requests"]
    assert lift["state"] == "approved" and lift["electorate"] == ["alice", "bob", "carol"]
