"""Run a lab as a subprocess for tests and demos: ``with running_lab(...) as lab:``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from enforcer.inventory.model import Inventory, load_inventory
from lab.topology import DEFAULT_TOPOLOGY, Topology, load_topology


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (for a daemon or server a test starts)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(base: str, proc: subprocess.Popen[bytes], log_path: Path,
               timeout: float = 30.0) -> None:
    """Wait until ``enforcer serve`` at ``base`` answers /readyz with 200; raise with the
    tail of its log if it exits or is not ready in time (the process is left running)."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError("enforcer serve exited:\n" + log_path.read_text()[-4000:])
        try:
            if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("enforcer serve not ready:\n" + log_path.read_text()[-4000:])
        time.sleep(0.1)


@dataclass
class LabHandle:
    process: subprocess.Popen[bytes]
    state_dir: Path
    inventory_path: Path
    inventory: Inventory
    control_url: str
    topology: Topology
    info: dict[str, Any]

    def _req(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        r = httpx.request(method, self.control_url + path, json=body, timeout=10)
        r.raise_for_status()
        return r.json()

    def truth(self, mac: str) -> dict[str, Any]:
        return dict(self._req("GET", f"/truth/{mac}"))

    def fault(self, device: str, **knobs: Any) -> dict[str, Any]:
        return dict(self._req("POST", f"/devices/{device}/faults", knobs))

    def clear_faults(self, device: str) -> None:
        self._req("POST", f"/devices/{device}/faults", {"clear": True})

    def reboot(self, device: str) -> None:
        self._req("POST", f"/devices/{device}/reboot")

    def move(self, mac: str, cmts: str, node: str) -> dict[str, Any]:
        return dict(self._req("POST", f"/modems/{mac}/move", {"cmts": cmts, "node": node}))

    def power(self, mac: str, on: bool) -> dict[str, Any]:
        return dict(self._req("POST", f"/modems/{mac}/power", {"on": on}))

    def rotate_host_key(self, device: str) -> dict[str, Any]:
        return dict(self._req("POST", f"/devices/{device}/rotate-host-key"))

    def devices(self) -> list[dict[str, Any]]:
        return list(self._req("GET", "/devices"))

    def sessions(self, device: str) -> dict[str, Any]:
        return dict(self._req("GET", f"/devices/{device}/sessions"))

    def clients(self, device: str) -> dict[str, Any]:
        return dict(self._req("GET", f"/devices/{device}/clients"))

    def seed(self, device: str, *, disable_forwarding: list[str] | None = None,
             deny: list[str] | None = None) -> dict[str, Any]:
        return dict(self._req("POST", f"/cmts/{device}/seed", {
            "disable_forwarding": disable_forwarding or [], "deny": deny or []}))

    def blocks(self, device: str) -> dict[str, Any]:
        return dict(self._req("GET", f"/cmts/{device}/blocks"))

    def device(self, name: str) -> dict[str, Any]:
        return next(d for d in self.devices() if d["name"] == name)

    def provision(self, account: str, mac: str, *, cmts: str, node: str,
                  kind: str = "cable_modem", ecm_mac: str | None = None,
                  deliver: bool = True) -> dict[str, Any]:
        return dict(self._req("POST", "/provisioning/devices", {
            "account": account, "mac": mac, "kind": kind, "cmts": cmts, "node": node,
            "ecm_mac": ecm_mac, "deliver": deliver}))

    def unlink(self, mac: str, *, deliver: bool = True) -> dict[str, Any]:
        return dict(self._req("POST", f"/provisioning/devices/{mac}/unlink",
                              {"deliver": deliver}))

    def provisioning_target(self, url: str, secret: str) -> None:
        self._req("POST", "/provisioning/target", {"url": url, "secret": secret})

    def links(self) -> dict[str, Any]:
        return dict(self._req("GET", "/provisioning/links"))

    def wait_truth(self, mac: str, pred: Any, timeout: float = 10.0) -> dict[str, Any]:
        """Poll ground truth until ``pred(truth)`` holds (bounded)."""
        deadline = time.monotonic() + timeout
        t = self.truth(mac)
        while not pred(t):
            if time.monotonic() > deadline:
                raise AssertionError(f"lab truth for {mac} never matched: {t}")
            time.sleep(0.05)
            t = self.truth(mac)
        return t


@contextmanager
def running_lab(topology: Path | None = None, *, state_dir: Path,
                timeout: float = 60.0) -> Iterator[LabHandle]:
    """Start ``enforcer-lab up`` on loopback with free ports; stop it afterwards."""
    topo_path = topology or DEFAULT_TOPOLOGY
    state_dir.mkdir(parents=True, exist_ok=True)
    inv = state_dir / "inventory.yaml"
    (state_dir / "lab.json").unlink(missing_ok=True)
    log = open(state_dir / "lab.log", "wb")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab.cli", "up", "--topology", str(topo_path),
         "--inventory-out", str(inv), "--state-dir", str(state_dir), "--snmp-base", "0",
         "--ssh-base", "0", "--control-port", "0"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "200"},
    )
    try:
        deadline = time.monotonic() + timeout
        info_path = state_dir / "lab.json"
        while not info_path.exists():
            if proc.poll() is not None:
                raise RuntimeError(f"lab exited: {(state_dir / 'lab.log').read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError("lab did not start in time")
            time.sleep(0.05)
        info = json.loads(info_path.read_text())
        yield LabHandle(process=proc, state_dir=state_dir, inventory_path=inv,
                        inventory=load_inventory(inv), control_url=info["control_url"],
                        topology=load_topology(topo_path), info=info)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
