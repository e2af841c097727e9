"""SSH CLI sessions over netmiko, with pinned host keys.

netmiko is blocking: every call runs in a worker thread (``asyncio.to_thread``), one
at a time per session. Host keys are never auto-accepted (docs/architecture.md, principles):
the inventory's pinned key is written to a private known_hosts file and netmiko
connects with ``ssh_strict=True, system_host_keys=False, alt_host_keys=True``.

Errors (enforcer/errors.py): unknown or changed host key -> HostKeyError with the
presented key's SHA256 fingerprint; authentication -> SshError; no TCP answer or no
prompt in time -> DeviceUnreachable; output matching the profile's error patterns
(``% Invalid input`` ...) -> CliCommandError. Messages never carry secrets.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import paramiko
from netmiko import ConnectHandler
from netmiko.exceptions import (
    NetmikoAuthenticationException,
    NetmikoTimeoutException,
    ReadTimeout,
)

from enforcer.errors import (
    CliCommandError,
    DeviceUnreachable,
    EnforcerError,
    HostKeyError,
    SshError,
)
from enforcer.transport.base import NoMetrics, TransportMetrics
from enforcer.transport.params import SshLogin, SshTerminal


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH-style ``SHA256:<base64, no padding>`` of the key blob."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def fingerprint_of_line(key_line: str) -> str:
    """Fingerprint of an OpenSSH public key line ``type base64 [comment]``."""
    blob = base64.b64decode(key_line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def fetch_host_key(host: str, port: int, *, timeout: float = 5.0) -> tuple[str, str]:
    """Read the server's host key without authenticating (for ``devices trust``):
    ``("ssh-ed25519 AAAA...", "SHA256:...")``."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as e:
        raise DeviceUnreachable(f"no SSH answer from {host}:{port}",
                                detail=type(e).__name__) from e
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=timeout)
        key = transport.get_remote_server_key()
        return f"{key.get_name()} {key.get_base64()}", fingerprint(key)
    except (paramiko.SSHException, EOFError, OSError) as e:
        raise SshError(f"SSH handshake with {host}:{port} failed",
                       detail=type(e).__name__) from e
    finally:
        transport.close()


def known_hosts_name(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


def write_known_hosts(path: Path, host: str, port: int, key_line: str) -> Path:
    """A private (0600) known_hosts file holding exactly the pinned key."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    ktype, blob = key_line.split()[:2]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"{known_hosts_name(host, port)} {ktype} {blob}\n")
    return path


class NetmikoSession:
    """A CliSession for one device. Use :meth:`open`, then ``close`` (or
    ``async with``)."""

    def __init__(self, device: str, conn: Any, spec: SshTerminal,
                 metrics: TransportMetrics) -> None:
        self.device = device
        self._conn = conn
        self._spec = spec
        self._lock = asyncio.Lock()
        self._metrics = metrics

    @classmethod
    async def open(cls, device: str, host: str, port: int, creds: SshLogin,
                   spec: SshTerminal, *, host_key: str | None, known_hosts: Path,
                   metrics: TransportMetrics | None = None,
                   source_address: str | None = None) -> NetmikoSession:
        if not host_key:
            _, fp = await asyncio.to_thread(fetch_host_key, host, port)
            raise HostKeyError(f"no pinned host key; the device presents {fp} "
                               "(check it, then `enforcer devices trust`)", device=device,
                               reason="unknown", presented=fp)
        write_known_hosts(known_hosts, host, port, host_key)
        params: dict[str, Any] = {
            **spec.conn_args, "device_type": spec.device_type, "host": host, "port": port,
            "username": creds.username, "ssh_strict": True, "system_host_keys": False,
            "alt_host_keys": True, "alt_key_file": str(known_hosts), "allow_agent": False,
        }
        if creds.password is not None:
            params["password"] = creds.password.reveal()
        if creds.key_file is not None:
            params.update(use_keys=True, key_file=str(creds.key_file))
        if creds.enable_secret is not None:
            params["secret"] = creds.enable_secret.reveal()
        start = time.monotonic()
        try:
            if source_address:
                # Connect from the configured management address (CMTS ACLs often
                # allow only that); netmiko/paramiko then run over this socket.
                params["sock"] = await asyncio.to_thread(
                    socket.create_connection, (host, port),
                    timeout=float(spec.conn_args.get("conn_timeout", 10)),
                    source_address=(source_address, 0))
            conn = await asyncio.to_thread(_connect, params, spec.enable)
        except Exception as e:
            raise await _translate_connect(e, device, host, port, host_key) from e
        finally:
            (metrics or NoMetrics()).request(device, "ssh.connect", time.monotonic() - start)
        return cls(device, conn, spec, metrics or NoMetrics())

    async def send_command(self, command: str) -> str:
        out = await self._call("ssh.command", command,
                               lambda: self._conn.send_command(command, read_timeout=30))
        return out

    async def send_config(self, lines: Sequence[str]) -> str:
        def run() -> str:
            out = str(self._conn.send_config_set(list(lines)))
            if self._spec.save_after_config:
                out += "\n" + str(self._conn.save_config())
            return out
        return await self._call("ssh.config", " / ".join(lines), run)

    async def _call(self, op: str, what: str, fn: Any) -> str:
        start = time.monotonic()
        async with self._lock:
            try:
                out = str(await asyncio.to_thread(fn))
            except ReadTimeout as e:
                raise DeviceUnreachable(f"no prompt after {what!r}", device=self.device) from e
            except (OSError, EOFError, paramiko.SSHException) as e:
                raise SshError(f"session lost during {what!r}", device=self.device,
                               detail=type(e).__name__) from e
            finally:
                self._metrics.request(self.device, op, time.monotonic() - start)
        # The whole line that matched: "% Error: deny list is full" says more than the
        # pattern "^% Error" alone (and lets profiles match on it).
        line = self._spec.refusal(out)
        if line is not None:
            raise CliCommandError(f"device rejected {what!r}: {line[:300]}",
                                  device=self.device)
        return out

    async def close(self) -> None:
        async with self._lock:
            # the session is gone either way
            with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
                await asyncio.to_thread(self._conn.disconnect)

    async def __aenter__(self) -> NetmikoSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _connect(params: dict[str, Any], enable: bool) -> Any:
    conn = ConnectHandler(**params)
    try:
        if enable and params.get("secret"):
            conn.enable()
    except Exception:
        conn.disconnect()  # half-opened: clean up before re-raising (docs/architecture.md §P8)
        raise
    return conn


async def _translate_connect(e: Exception, device: str, host: str, port: int,
                             pinned: str) -> EnforcerError:
    chain: list[BaseException] = []
    cur: BaseException | None = e
    while cur is not None and len(chain) < 8:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    for c in chain:
        if isinstance(c, paramiko.BadHostKeyException):
            return HostKeyError(
                f"host key changed: presented {fingerprint(c.key)}, pinned "
                f"{fingerprint_of_line(pinned)}; not accepted", device=device,
                reason="changed", presented=fingerprint(c.key))
        if isinstance(c, paramiko.SSHException) and "known_hosts" in str(c):
            try:
                _, fp = await asyncio.to_thread(fetch_host_key, host, port)
            except EnforcerError:
                fp = "(unreadable)"
            return HostKeyError(f"host key not pinned for {known_hosts_name(host, port)}: "
                                f"presented {fp}; not accepted", device=device,
                                reason="unknown", presented=fp)
    if isinstance(e, NetmikoAuthenticationException):
        return SshError("SSH authentication failed", device=device)
    if isinstance(e, NetmikoTimeoutException | ReadTimeout | TimeoutError):
        return DeviceUnreachable(f"no SSH session with {host}:{port}", device=device,
                                 detail=type(e).__name__)
    if isinstance(e, ValueError) and "enable" in str(e).lower():
        return SshError("enable mode refused (check enable_secret)", device=device)
    return SshError(f"SSH connection to {host}:{port} failed", device=device,
                    detail=type(e).__name__)
