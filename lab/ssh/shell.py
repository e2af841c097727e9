"""A line-oriented device shell, sans I/O: bytes typed in, text to send back out.

The engine does what a real box's terminal line does (docs/docsis.md section 4, "what
netmiko needs from an SSH server"): echoes input, treats CR, LF and CRLF each as one
Enter, handles backspace, Ctrl-C, Ctrl-Z (leaves config mode, as Casa and IOS do) and
arrow-key escape sequences, prompts per mode, asks for secrets without echo, and runs
each line through the dialect's command table (``lab.ssh.dialects``). Output lines end
with ``\\r\\n``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from lab.model import Cmts, Headend
from lab.ssh.dialects.base import CONFIG, PRIV, Dialect, match

_TOKEN = re.compile(r"\S+")


class FaultView(Protocol):
    """The part of the device's fault knobs the shell consults."""

    command_error: str | None


@dataclass(frozen=True)
class Chunk:
    """Text for the client. ``response`` marks command output and prompts (the slow
    fault delays those), as opposed to the echo of typed characters."""

    text: str
    response: bool


def crlf(text: str) -> str:
    """Normalise line ends to CRLF; non-empty output ends with one."""
    if not text:
        return ""
    t = text.replace("\r\n", "\n").replace("\n", "\r\n")
    return t if t.endswith("\r\n") else t + "\r\n"


class Shell:
    """One CLI session on one device."""

    def __init__(self, dialect: Dialect, backend: Cmts | Headend, hostname: str, *,
                 enable_secret: str | None = None, faults: FaultView | None = None,
                 on_command: Callable[[str], None] | None = None) -> None:
        self.dialect = dialect
        self.backend = backend
        self.hostname = hostname
        self.enable_secret = enable_secret
        self.mode = dialect.login_mode
        self.closed = False
        self.status = 0  # exit status of the last line (exec requests return it)
        self.last_status = 0  # the one before (a Unix shell's "$?")
        self._faults = faults
        self._on_command = on_command
        self._buf: list[str] = []
        self._after_cr = False
        self._esc = 0  # 1: after ESC, 2: inside a CSI/SS3 sequence
        self._secret: tuple[str, Callable[[str], str]] | None = None

    # ---- state used by handlers -------------------------------------------------

    def prompt(self) -> str:
        if self._secret is not None:
            return self._secret[0]
        return self.dialect.prompts[self.mode].format(host=self.hostname)

    def greeting(self) -> str:
        """What the client sees on login: the banner, then the first prompt."""
        return crlf(self.dialect.banner) + self.prompt()

    def close(self) -> None:
        self.closed = True

    def ask_secret(self, prompt: str, answer: Callable[[str], str]) -> None:
        """Prompt for a line that is not echoed (``Password: ``); ``answer`` gets it and
        returns the output to show."""
        self._secret = (prompt, answer)

    # ---- input ----------------------------------------------------------------------

    def feed(self, data: str) -> list[Chunk]:
        """Process typed characters; return echo and responses in order."""
        out: list[Chunk] = []
        echo: list[str] = []

        def flush() -> None:
            if echo:
                out.append(Chunk("".join(echo), False))
                echo.clear()

        for ch in data:
            if self.closed:
                break
            if self._after_cr and ch == "\n":
                self._after_cr = False
                continue
            self._after_cr = ch == "\r"
            if self._esc:
                self._esc = 2 if self._esc == 1 and ch in "[O" else (
                    0 if self._esc == 1 or ch.isalpha() or ch == "~" else 2)
                continue
            if ch == "\x1b":
                self._esc = 1
            elif ch in "\r\n":
                echo.append("\r\n")
                flush()
                line = "".join(self._buf)
                self._buf.clear()
                out.append(Chunk(self._enter(line), True))
            elif ch in "\x08\x7f":
                if self._buf:
                    self._buf.pop()
                    if self._secret is None:
                        echo.append("\b \b")
            elif ch == "\x03":
                self._buf.clear()
                self._secret = None
                echo.append("^C\r\n")
                flush()
                out.append(Chunk(self.prompt(), True))
            elif ch == "\x1a":
                if self.dialect.ctrl_z_ends_config and self.mode == CONFIG:
                    self._buf.clear()
                    self.mode = PRIV
                    echo.append("^Z\r\n")
                    flush()
                    out.append(Chunk(self.prompt(), True))
            elif ch >= " ":
                self._buf.append(ch)
                if self._secret is None:
                    echo.append(ch)
        flush()
        return out

    def _enter(self, line: str) -> str:
        if self._secret is not None:
            answer = self._secret[1]
            self._secret = None
            text = crlf(answer(line))
        else:
            text = self.run(line, interactive=True)
        return text if self.closed else text + self.prompt()

    # ---- running a line -------------------------------------------------------------

    def run(self, line: str, *, interactive: bool = False) -> str:
        """Run one command line in the current mode; return its CRLF output. Counts the
        command and applies the ``command_error`` fault."""
        text = line.strip()
        if not text:
            return ""
        self.last_status, self.status = self.status, 0
        if self._on_command is not None:
            self._on_command(text)
        indent = len(self.prompt()) if interactive else 0
        pattern = self._faults.command_error if self._faults is not None else None
        if pattern and re.search(pattern, text):
            return self._refuse("invalid", line, 0, indent)
        return self.dispatch(line, indent=indent)

    def dispatch(self, line: str, *, indent: int = 0) -> str:
        """Match ``line`` against the current mode's commands and run the handler.
        ``<command> | include|exclude|begin <regex>`` filters the output by line, as
        IOS-like CLIs do (``Dialect.pipes``); the regex runs to the end of the line, so it
        may hold ``|`` itself (``^hostname|^cable``); surrounding quotes are dropped."""
        if self.dialect.pipes and " | " in line:
            head, _, tail = line.partition(" | ")
            verb, _, regex = tail.strip().partition(" ")
            kind = next((k for k in ("include", "exclude", "begin")
                         if verb and k.startswith(verb.lower())), None)
            regex = regex.strip()
            if len(regex) > 1 and regex[0] == regex[-1] == '"':
                regex = regex[1:-1]
            try:
                rx = re.compile(regex) if kind and regex else None
            except re.error:
                rx = None
            if rx is None:
                return self._refuse("invalid" if regex else "incomplete", line,
                                    len(head) + 3, indent, word=verb)
            out = self.dispatch(head, indent=indent)
            if self.status:
                return out
            lines = out.replace("\r\n", "\n").split("\n")
            if kind == "include":
                kept = [ln for ln in lines if rx.search(ln)]
            elif kind == "exclude":
                kept = [ln for ln in lines if ln and not rx.search(ln)]
            else:
                start = next((i for i, ln in enumerate(lines) if rx.search(ln)), len(lines))
                kept = lines[start:]
            return crlf("\n".join(kept) + ("\n" if kept else ""))
        spans = [(m.start(), m.group()) for m in _TOKEN.finditer(line)]
        tokens = [t for _, t in spans]
        if not tokens:
            return ""
        d = self.dialect
        if (d.do_in_config and self.mode == CONFIG and len(tokens) > 1
                and tokens[0].lower() == "do"):
            return self.run_in(PRIV, line.split(None, 1)[1])
        table = [c for c in d.commands if self.mode in c.modes]
        m = match(table, tokens, abbreviate=d.abbreviations, case_sensitive=d.case_sensitive)
        if m.command is None:
            at = min(m.at, len(spans) - 1)
            return self._refuse(m.error or "invalid", line, spans[at][0], indent,
                                word=spans[at][1])
        return crlf(m.command.handler(self, m.args))

    def run_in(self, mode: str, line: str) -> str:
        """Run ``line`` as if typed in ``mode`` and come back (IOS ``do``, ARRIS
        ``configure <config command>`` one-liners)."""
        here, self.mode = self.mode, mode
        try:
            return self.dispatch(line)
        finally:
            if not self.closed and self.mode == mode:
                self.mode = here

    def _refuse(self, kind: str, line: str, col: int, indent: int, word: str = "") -> str:
        errors = self.dialect.errors
        self.status = errors.status
        fields = {"line": line.strip(), "cmd": (line.split() or [""])[0], "word": word}
        if kind == "incomplete":
            return crlf(errors.incomplete.format(**fields))
        if kind == "ambiguous":
            return crlf(errors.ambiguous.format(**fields))
        text = errors.invalid.format(**fields)
        if errors.caret:
            text = " " * (indent + col) + "^\n" + text
        return crlf(text)
