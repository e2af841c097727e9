"""Fixtures for the SSH CLI tests: a small fleet, its SshDevices served from an asyncio
loop in a background thread (netmiko is synchronous), a client key and a strict
known_hosts file. Imported by ``test_ssh_cli.py``."""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncssh
import pytest

from lab.model import Cmts, Dhct, Fleet, Headend, Modem, Timings
from lab.ssh import SshDevice

T = TypeVar("T")
USER, PASSWORD, SECRET = "lab", "lab-pass", "en-secret"
TIMINGS = Timings(reset_offline_s=0.1, ranging_s=0.02, dhcp_s=0.02, config_s=0.02,
                  registration_s=0.02, bpi_init_s=0.02, retry_s=0.2, stb_check_s=0.3)
NETMIKO_TYPES = {"cisco-cbr8": "cisco_xe", "arris-e6000": "arris_cer",
                 "casa-c100g": "casa_cmts", "dncs-headend": "linux"}


class LoopThread:
    """An asyncio loop running forever in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], T]) -> T:
        async def wrap() -> T:
            return fn()
        return self.run(wrap())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


def mac(i: int, prefix: str = "0011.22") -> bytes:
    return bytes.fromhex(prefix.replace(".", "") + f"{i:06x}")


@dataclass
class SshLab:
    fleet: Fleet
    loop: LoopThread
    tmp: Path
    client_key: Path
    devices: dict[str, SshDevice] = field(default_factory=dict)

    def known_hosts(self, *names: str) -> Path:
        """A known_hosts file pinning the named devices' current host keys."""
        path = self.tmp / f"known_hosts-{'-'.join(names)}-{time.monotonic_ns()}"
        path.write_text("".join(f"[127.0.0.1]:{self.devices[n].port} "
                                f"{self.devices[n].host_key_public()}\n" for n in names))
        return path

    def netmiko(self, name: str, **extra: Any) -> dict[str, Any]:
        """ConnectHandler arguments with strict host-key checking."""
        dev = self.devices[name]
        return {"device_type": NETMIKO_TYPES[dev.dialect.name], "host": "127.0.0.1",
                "port": dev.port, "username": USER, "password": PASSWORD, "secret": SECRET,
                "ssh_strict": True, "system_host_keys": False, "alt_host_keys": True,
                "alt_key_file": str(self.known_hosts(name)), "conn_timeout": 10, **extra}

    def openssh(self, name: str, command: str, *, known_hosts: Path | None = None,
                timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """``ssh`` with the client key, BatchMode and a strict known_hosts, exec mode."""
        kh = known_hosts or self.known_hosts(name)
        argv = ["ssh", "-F", "/dev/null", "-p", str(self.devices[name].port),
                "-i", str(self.client_key), "-o", "BatchMode=yes",
                "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes",
                "-o", f"UserKnownHostsFile={kh}", "-o", "GlobalKnownHostsFile=/dev/null",
                "-o", "ConnectTimeout=10", f"{USER}@127.0.0.1", command]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)

    def tick(self) -> None:
        self.loop.call(self.fleet.sched.run_due)

    def settle(self, seconds: float) -> None:
        """Let simulated time pass, running due registration steps on the loop."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(0.02)
            self.tick()


def build_fleet() -> Fleet:
    f = Fleet(TIMINGS)
    for n, (name, dialect) in enumerate((("cbr8-1", "cisco-cbr8"), ("e6k-1", "arris-e6000"),
                                         ("CASA-C10G", "casa-c100g"),
                                         ("cbr8-rot", "cisco-cbr8"))):
        f.add_cmts(name, dialect)
        for i in range(1, 5):
            f.add_modem(Modem(mac=mac(n * 16 + i), cmts=name, node=f"node-{n}", md_if=n + 2,
                              us_if=i, ds_if=i, ip=bytes([10, n, 0, i]), bpi_plus=i != 4))
    f.add_cmts("e6k-full", "arris-e6000", deny_capacity=1)
    f.add_modem(Modem(mac=mac(0x90), cmts="e6k-full", node="n", md_if=9, us_if=1, ds_if=1,
                      ip=bytes([10, 9, 0, 1])))
    h = f.add_headend("dncs-1")
    for i in range(1, 3):
        h.add(Dhct(mac=bytes.fromhex(f"0002de4a11{i:02x}"), ecm_mac=mac(0xA0 + i),
                   account=f"ACC{i}"))
    return f


@pytest.fixture(scope="module")
def ssh_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshLab]:
    tmp = tmp_path_factory.mktemp("ssh")
    key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = tmp / "id_ed25519"
    key.write_private_key(client_key)
    client_key.chmod(0o600)
    pub = key.export_public_key("openssh").decode()
    fleet = build_fleet()
    lab = SshLab(fleet, LoopThread(), tmp, client_key)
    backends: list[tuple[str, str, Cmts | Headend]] = [
        *((n, c.dialect, c) for n, c in fleet.cmtses.items()),
        *((n, "dncs-headend", h) for n, h in fleet.headends.items())]
    for name, dialect, backend in backends:
        dev = SshDevice(name, dialect, backend=backend, users={USER: PASSWORD},
                        authorized_keys=[pub], enable_secret=SECRET,
                        host_key_path=tmp / "keys" / f"{name}.key")
        lab.loop.run(dev.start("127.0.0.1", 0))
        lab.devices[name] = dev
    yield lab
    for dev in lab.devices.values():
        lab.loop.run(dev.stop())
    lab.loop.close()
