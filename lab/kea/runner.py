"""A Kea DHCPv4 server and lab modems, each in its own network namespace.

``dhcp_namespaces()`` creates a server namespace and a client ("cm") namespace joined
by a veth pair (server side 10.77.0.1/24, client side 10.77.0.2/24, which the client
also uses as a relay address) and deletes both on exit, whatever happens. DHCP
broadcasts therefore only ever travel on that veth pair. ``running_kea()`` starts
``kea-dhcp4 -c CONFIG`` inside the server namespace, tracks its PID, waits until its
control socket answers, and stops it on exit.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lab.kea.config import KeaLabConfig


@dataclass(frozen=True)
class DhcpNet:
    server_ns: str
    client_ns: str
    server_if: str
    client_if: str
    server_addr: str = "10.77.0.1"
    client_addr: str = "10.77.0.2"
    prefix: int = 24


def netns_available() -> str | None:
    """Why namespaces cannot be used here (None when they can)."""
    if os.geteuid() != 0:
        return "needs root (ip netns, veth)"
    if shutil.which("ip") is None:
        return "iproute2 (ip) is not installed"
    if subprocess.run(["ip", "netns", "list"], capture_output=True).returncode != 0:
        return "ip netns is not available"
    return None


def kea_binary() -> str | None:
    """Where kea-dhcp4 is (Debian installs it in /usr/sbin, not always on PATH)."""
    found = shutil.which("kea-dhcp4")
    if found is None and os.access("/usr/sbin/kea-dhcp4", os.X_OK):
        found = "/usr/sbin/kea-dhcp4"
    return found


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


@contextmanager
def dhcp_namespaces(tag: str | None = None) -> Iterator[DhcpNet]:
    tag = tag or f"{os.getpid() % 100000}"
    net = DhcpNet(server_ns=f"enfkea-{tag}", client_ns=f"enfcm-{tag}",
                  server_if=f"eks{tag}"[:15], client_if=f"ekc{tag}"[:15])
    created: list[str] = []
    try:
        for ns in (net.server_ns, net.client_ns):
            _ip("netns", "add", ns)
            created.append(ns)
        _ip("-n", net.server_ns, "link", "add", net.server_if, "type", "veth", "peer", "name",
            net.client_if, "netns", net.client_ns)
        for ns, dev, addr in ((net.server_ns, net.server_if, net.server_addr),
                              (net.client_ns, net.client_if, net.client_addr)):
            _ip("-n", ns, "addr", "add", f"{addr}/{net.prefix}", "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        yield net
    finally:
        for ns in reversed(created):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


def control_call(path: Path, command: str, timeout: float = 2.0) -> dict[str, object]:
    """One synchronous control-channel command (readiness checks)."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        s.sendall(json.dumps({"command": command}).encode())
        buf = b""
        while len(buf) < 16 * 1024 * 1024:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    answer = json.loads(buf)
    return answer if isinstance(answer, dict) else {}


@dataclass
class KeaProcess:
    process: subprocess.Popen[bytes]
    config: KeaLabConfig

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        try:
            return self.config.log_file.read_text()
        except OSError:
            return ""


@contextmanager
def running_kea(net: DhcpNet, cfg: KeaLabConfig, *, start_timeout: float = 15.0
                ) -> Iterator[KeaProcess]:
    """``kea-dhcp4`` in the server namespace; PID and lock files in ``cfg.work``."""
    env = {**os.environ, "KEA_PIDFILE_DIR": str(cfg.work), "KEA_LOCKFILE_DIR": str(cfg.work)}
    out = (cfg.work / "kea-dhcp4.out").open("wb")
    binary = kea_binary()
    if binary is None:
        out.close()
        raise RuntimeError("kea-dhcp4 is not installed (apt-get install kea-dhcp4-server)")
    proc = subprocess.Popen(["ip", "netns", "exec", net.server_ns, binary, "-c",
                             str(cfg.config_path)], env=env, stdout=out, stderr=out)
    handle = KeaProcess(proc, cfg)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"kea-dhcp4 exited ({proc.returncode}): "
                                   f"{(cfg.work / 'kea-dhcp4.out').read_text()[-2000:]}"
                                   f"{handle.log()[-2000:]}")
            try:
                if control_call(cfg.socket_path, "list-commands").get("result") == 0:
                    break
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"kea-dhcp4 not ready in {start_timeout}s: "
                                   f"{handle.log()[-2000:]}")
            time.sleep(0.1)
        yield handle
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        out.close()


def in_netns(ns: str, module: str, *args: str, timeout: float = 30.0
             ) -> subprocess.CompletedProcess[str]:
    """``python -m module args`` inside namespace ``ns`` (this interpreter, this repo)."""
    root = Path(__file__).resolve().parents[2]
    return subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-m", module, *args],
                          capture_output=True, text=True, timeout=timeout, cwd=root)
