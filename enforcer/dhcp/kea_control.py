"""Kea's control channel: JSON commands over the server's unix control socket.

Kea 2.x (``Dhcp4.control-socket``: ``socket-type: unix``, ``socket-name: PATH``)
answers one command per connection with ``{"result": N, "text": ..., "arguments":
...}`` and closes it. Result 0 is success, 1 an error, 2 an unsupported command, 3
"empty" (e.g. no lease found). Commands used: ``list-commands``, ``config-get``,
``config-test``, ``config-set``, ``config-write``, and, when the lease_cmds hook is
loaded, ``lease4-get-by-hw-address`` / ``lease4-del``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any, Protocol

from enforcer.errors import DeviceUnreachable, DriverError, TransportError

SUCCESS, ERROR, UNSUPPORTED, EMPTY = 0, 1, 2, 3
MAX_ANSWER = 64 * 1024 * 1024  # a large config-get is a few MB


class KeaCommandError(DriverError):
    """Kea answered a command with a non-zero result."""

    def __init__(self, command: str, result: int, text: str) -> None:
        self.command, self.result, self.text = command, result, text
        super().__init__(f"kea {command}: result {result}: {text}")


class KeaControl(Protocol):
    """One Kea server's control channel."""

    async def call(self, command: str, arguments: dict[str, Any] | None = None,
                   *, empty_ok: bool = False) -> Any:
        """The answer's ``arguments`` (a map, or a list for list-commands; ``{}`` when
        absent); a non-zero result raises
        KeaCommandError, except EMPTY with ``empty_ok``."""
        ...


class UnixKeaControl:
    """KeaControl over the unix socket at ``path``."""

    def __init__(self, device: str, path: str, *, timeout_s: float = 5.0) -> None:
        self.device = device
        self.path = path
        self.timeout_s = timeout_s

    async def call(self, command: str, arguments: dict[str, Any] | None = None,
                   *, empty_ok: bool = False) -> Any:
        msg: dict[str, Any] = {"command": command}
        if arguments is not None:
            msg["arguments"] = arguments
        try:
            answer = await asyncio.wait_for(self._exchange(json.dumps(msg).encode()),
                                            self.timeout_s)
        except TimeoutError:
            raise DeviceUnreachable(f"no answer to {command} within {self.timeout_s}s",
                                    device=self.device, detail=self.path) from None
        except OSError as e:
            raise DeviceUnreachable(f"cannot reach the control socket for {command}",
                                    device=self.device,
                                    detail=f"{self.path}: {e.strerror or e}") from e
        if isinstance(answer, list):  # the control agent wraps answers in a list
            answer = answer[0] if answer else {}
        if not isinstance(answer, dict) or not isinstance(answer.get("result"), int):
            raise TransportError(f"malformed answer to {command}", device=self.device)
        result = int(answer["result"])
        if result != SUCCESS and not (empty_ok and result == EMPTY):
            raise KeaCommandError(command, result, str(answer.get("text", "")))
        args = answer.get("arguments")
        return args if isinstance(args, dict | list) else {}

    async def _exchange(self, request: bytes) -> Any:
        reader, writer = await asyncio.open_unix_connection(self.path)
        try:
            writer.write(request)
            await writer.drain()
            buf = b""
            decoder = json.JSONDecoder()
            while len(buf) < MAX_ANSWER:
                chunk = await reader.read(65536)
                if chunk:
                    buf += chunk
                text = buf.decode("utf-8", errors="replace").strip()
                if text.endswith(("}", "]")) or (text and not chunk):
                    try:
                        value, _ = decoder.raw_decode(text)
                        return value
                    except json.JSONDecodeError:
                        if not chunk:
                            raise TransportError("truncated answer", device=self.device,
                                                 detail=self.path) from None
                if not chunk:
                    raise TransportError("connection closed without an answer",
                                         device=self.device, detail=self.path)
            raise TransportError("answer too large", device=self.device, detail=self.path)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
