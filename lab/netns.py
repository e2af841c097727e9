"""``enforcer-lab up --netns``: every device on its own address, standard ports.

A network namespace ``enflab-<pid>`` is created with a veth pair into it. The root side
gets ``198.18.<k>.1/24`` (RFC 2544 benchmarking range); inside, device *i* gets
``198.18.<k>.<10+i>`` with SNMP on udp/161 and SSH on tcp/22, and the control API
listens on ``198.18.<k>.2``. The lab then runs inside the namespace. Traffic to those
addresses never leaves the machine: the only route to them is the veth pair, which is
checked before the lab is declared ready. The namespace (and the veth pair with it) is
removed on exit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from lab.topology import load_topology

NET_PREFIX = "198.18"


def _ip(*args: str, ns: str | None = None) -> None:
    cmd = ["ip", *(["-n", ns] if ns else []), *args]
    subprocess.run(cmd, check=True, capture_output=True, text=True)


def plan_addresses(k: int, n: int) -> tuple[str, str, list[str]]:
    """(root-side address, control address, device addresses) for subnet k."""
    if not 0 <= k <= 255 or n > 200:
        raise ValueError("subnet index 0..255 and at most 200 devices")
    base = f"{NET_PREFIX}.{k}"
    return f"{base}.1", f"{base}.2", [f"{base}.{10 + i}" for i in range(n)]


def route_is_ours(addr: str, dev: str) -> bool:
    """True when the kernel would send traffic for ``addr`` through our veth."""
    out = subprocess.run(["ip", "route", "get", addr], capture_output=True, text=True)
    return out.returncode == 0 and f" dev {dev} " in out.stdout + " "


def reexec_in_netns(topology: Path, inventory_out: Path, state_dir: Path,
                    control_port: int) -> None:
    if os.geteuid() != 0:
        raise SystemExit("--netns needs root (ip netns, veth)")
    topo = load_topology(topology)
    n = len(topo.expanded_devices())
    pid = os.getpid()
    k = 100 + pid % 100
    ns, host_if, ns_if = f"enflab-{pid}", f"efl{pid}h"[:15], f"efl{pid}n"[:15]
    root_addr, control_addr, addrs = plan_addresses(k, n)
    _ip("netns", "add", ns)
    try:
        _ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        _ip("link", "set", ns_if, "netns", ns)
        _ip("addr", "add", f"{root_addr}/24", "dev", host_if)
        _ip("link", "set", host_if, "up")
        _ip("link", "set", "lo", "up", ns=ns)
        for a in [control_addr, *addrs]:
            _ip("addr", "add", f"{a}/24", "dev", ns_if, ns=ns)
        _ip("link", "set", ns_if, "up", ns=ns)
        if not all(route_is_ours(a, host_if) for a in [control_addr, *addrs]):
            raise SystemExit("refusing to start: lab addresses are not routed via our veth")
        cmd = ["ip", "netns", "exec", ns, sys.executable, "-m", "lab.cli", "up",
               "--topology", str(topology), "--inventory-out", str(inventory_out),
               "--state-dir", str(state_dir), "--control-port", str(control_port or 8480),
               "--hosts", ",".join(addrs), "--control-host", control_addr]
        proc = subprocess.Popen(cmd)

        def _stop(signum: int, frame: object) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, _stop)
        try:
            proc.wait()
        except KeyboardInterrupt:
            proc.terminate()
            proc.wait(10)
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
