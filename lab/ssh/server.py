"""One simulated device's SSH server: host key, users, fault knobs, session records.

Each ``SshDevice`` owns a listening socket on its own port and hands accepted
connections to asyncssh, so the fault knobs can act below SSH (``unreachable``
accepts TCP and closes it before the SSH banner; ``set_unreachable(refuse=True)``
closes the listener so connects are refused). Interactive shells (PTY or not) and
exec requests (``ssh host 'show cable modem'``) both run through ``lab.ssh.shell``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import socket
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from lab.model import Cmts, Headend
from lab.ssh.dialects import DIALECTS
from lab.ssh.dialects.base import Dialect
from lab.ssh.shell import Shell

log = logging.getLogger(__name__)


@dataclass
class CliFaults:
    """Fault knobs, read live by every connection and command."""

    unreachable: bool = False  # accept TCP, then close it before the SSH banner
    slow_s: float = 0.0  # delay before every response (not before echo)
    command_error: str | None = None  # regex: matching lines answer the dialect's error
    auth_fail: bool = False  # every password and key is refused


@dataclass
class SessionRecord:
    """One authenticated SSH connection. Times are wall-clock seconds."""

    peer: str  # "127.0.0.1:53122" or "[::1]:53122"
    username: str
    start: float
    end: float | None = None
    commands: int = 0


class _Auth(asyncssh.SSHServer):
    """Per-connection authentication and session accounting."""

    def __init__(self, dev: SshDevice) -> None:
        self._dev = dev
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._dev._session_ended(self._conn)

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        want = self._dev.users.get(username)
        return (not self._dev.faults.auth_fail and want is not None
                and hmac.compare_digest(want.encode(), password.encode()))

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return not self._dev.faults.auth_fail and any(
            key.public_data == k.public_data for k in self._dev.authorized_keys)

    def auth_completed(self) -> None:
        if self._conn is not None:
            self._dev._session_started(self._conn)


class SshDevice:
    """A device's SSH command line on 127.0.0.1:<port>."""

    def __init__(self, name: str, dialect: str | Dialect, *, backend: Cmts | Headend,
                 users: dict[str, str], authorized_keys: list[str] | None = None,
                 enable_secret: str | None = None, host_key_path: Path,
                 max_records: int = 1000) -> None:
        self.name = name
        if isinstance(dialect, str) and dialect not in DIALECTS:
            raise ValueError(f"{name}: no SSH CLI for dialect {dialect!r}; "
                             f"one of {', '.join(DIALECTS)}")
        self.dialect = DIALECTS[dialect] if isinstance(dialect, str) else dialect
        self.backend = backend
        self.users = dict(users)
        self.authorized_keys = [asyncssh.import_public_key(k) for k in authorized_keys or []]
        self.enable_secret = enable_secret
        self.host_key_path = Path(host_key_path)
        self.faults = CliFaults()
        self.host = "127.0.0.1"
        self.port = 0
        self.active_sessions = 0
        self.max_concurrent_sessions = 0
        self.sessions: deque[SessionRecord] = deque(maxlen=max_records)
        self.recent_commands: deque[tuple[float, str, str]] = deque(maxlen=max_records)
        self._live: dict[asyncssh.SSHServerConnection, SessionRecord] = {}
        self._key = self._load_or_create_key()
        self._lsock: socket.socket | None = None
        self._accepting: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._conns: set[asyncssh.SSHServerConnection] = set()

    # ---- host key --------------------------------------------------------------------

    def _load_or_create_key(self, *, fresh: bool = False) -> asyncssh.SSHKey:
        """The ed25519 host key, generated into host_key_path once and kept, so a
        restarted lab presents the key the enforcer pinned."""
        if self.host_key_path.exists() and not fresh:
            return asyncssh.read_private_key(self.host_key_path)
        key = asyncssh.generate_private_key("ssh-ed25519", comment=self.name)
        self.host_key_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.host_key_path.with_name(self.host_key_path.name + ".tmp")
        key.write_private_key(tmp)
        os.chmod(tmp, 0o600)
        tmp.replace(self.host_key_path)
        return key

    def host_key_fingerprint(self) -> str:
        """``SHA256:<base64>``, as ``ssh-keygen -lf`` and OpenSSH print it."""
        return self._key.get_fingerprint("sha256")

    def host_key_public(self) -> str:
        """The OpenSSH one-line public key, ``ssh-ed25519 AAAA...`` (no comment)."""
        return " ".join(self._key.export_public_key("openssh").decode().split()[:2])

    async def rotate_host_key(self) -> None:
        """Fault "SSH host key change": a new key in host_key_path, listener restarted
        on the same port. Sessions already open stay open."""
        self._key = self._load_or_create_key(fresh=True)
        if self._lsock is not None:
            await self._close_listener()
            self._listen(self.port)

    # ---- listening -------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on host:port (port 0: a free port, then in ``.port``)."""
        self.host = host
        self._listen(port)

    async def stop(self) -> None:
        """Stop listening and close every session."""
        await self._close_listener()
        for conn in list(self._conns):
            conn.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def set_unreachable(self, on: bool, *, refuse: bool = False) -> None:
        """``refuse``: close the listener (connects are refused) until turned off;
        otherwise accept TCP and close it at once (``faults.unreachable``)."""
        self.faults.unreachable = on and not refuse
        if on and refuse and self._lsock is not None:
            await self._close_listener()
        elif not on and self._lsock is None and self.port:
            self._listen(self.port)

    def _listen(self, port: int) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, port))
        sock.listen(128)
        sock.setblocking(False)
        self._lsock = sock
        self.port = sock.getsockname()[1]
        self._accepting = asyncio.get_running_loop().create_task(self._accept(sock))

    async def _close_listener(self) -> None:
        if self._accepting is not None:
            self._accepting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._accepting
            self._accepting = None
        if self._lsock is not None:
            self._lsock.close()
            self._lsock = None

    async def _accept(self, lsock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            sock, _ = await loop.sock_accept(lsock)
            if self.faults.unreachable:
                sock.close()
                continue
            task = loop.create_task(self._serve(sock))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _options(self) -> asyncssh.SSHServerConnectionOptions:
        return asyncssh.SSHServerConnectionOptions(
            server_host_keys=[self._key], server_factory=lambda: _Auth(self),
            process_factory=self._process, line_editor=False, encoding="utf-8",
            errors="replace", server_version=self.dialect.ssh_version, login_timeout=30,
            agent_forwarding=False, allow_scp=False, keepalive_interval=0)

    async def _serve(self, sock: socket.socket) -> None:
        try:
            conn = await asyncssh.run_server(sock, options=self._options())
        except (TimeoutError, OSError, asyncssh.Error) as e:
            log.debug("%s: SSH connection failed: %s", self.name, e)
            return
        self._conns.add(conn)
        try:
            await conn.wait_closed()
        finally:
            self._conns.discard(conn)

    # ---- sessions --------------------------------------------------------------------

    def _session_started(self, conn: asyncssh.SSHServerConnection) -> None:
        peer = conn.get_extra_info("peername") or ("?", 0)
        host = f"[{peer[0]}]" if ":" in str(peer[0]) else str(peer[0])
        rec = SessionRecord(peer=f"{host}:{peer[1]}",
                            username=conn.get_extra_info("username") or "", start=time.time())
        self._live[conn] = rec
        self.sessions.append(rec)
        self.active_sessions += 1
        self.max_concurrent_sessions = max(self.max_concurrent_sessions, self.active_sessions)

    def _session_ended(self, conn: asyncssh.SSHServerConnection) -> None:
        rec = self._live.pop(conn, None)
        if rec is not None:
            rec.end = time.time()
            self.active_sessions -= 1

    async def _process(self, process: asyncssh.SSHServerProcess[str]) -> None:
        rec = self._live.get(process.get_extra_info("connection"))

        def counted(line: str) -> None:
            if rec is not None:
                rec.commands += 1
            self.recent_commands.append((time.time(), rec.username if rec else "", line))

        shell = Shell(self.dialect, self.backend, self.name, enable_secret=self.enable_secret,
                      faults=self.faults, on_command=counted)
        try:
            if process.command is not None:
                shell.mode = self.dialect.exec_mode
                await self._send(process, shell.run(process.command), response=True)
                process.exit(shell.status)
                return
            await self._send(process, shell.greeting(), response=True)
            while not shell.closed:
                try:
                    data = await process.stdin.read(4096)
                except (asyncssh.TerminalSizeChanged, asyncssh.BreakReceived,
                        asyncssh.SignalReceived):
                    continue
                if not data:
                    break
                for chunk in shell.feed(data):
                    await self._send(process, chunk.text, response=chunk.response)
            process.exit(0)
        except (asyncssh.Error, OSError, BrokenPipeError) as e:
            log.debug("%s: session ended: %s", self.name, e)

    async def _send(self, process: asyncssh.SSHServerProcess[str], text: str, *,
                    response: bool) -> None:
        if response and self.faults.slow_s > 0:
            await asyncio.sleep(self.faults.slow_s)
        if text:
            process.stdout.write(text)
