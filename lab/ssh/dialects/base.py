"""What a CLI dialect is made of: data (prompts, error texts, a command table) and a
token matcher with IOS-style unique abbreviations.

A command's syntax is a space-separated token list. Literal tokens are keywords;
placeholders take a value:

``{mac}``  a MAC address in any notation (``enforcer.domain.mac.Mac``)
``{word}`` any one token
``{int}``  a decimal integer
``{rest}`` the rest of the line (one token or more); must be last
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from enforcer.domain.mac import Mac
from enforcer.errors import MacError

if TYPE_CHECKING:
    from lab.ssh.shell import Shell

USER = "user"  # user EXEC: "host>"
PRIV = "priv"  # privileged EXEC: "host#"
CONFIG = "config"  # global configuration: "host(config)#"
EXEC_MODES = frozenset({USER, PRIV})
ALL_MODES = frozenset({USER, PRIV, CONFIG})


@dataclass
class Args:
    """Values a command line gave for the placeholders, in order of appearance."""

    macs: list[Mac] = field(default_factory=list)
    words: list[str] = field(default_factory=list)
    ints: list[int] = field(default_factory=list)
    rest: str = ""

    def copy(self) -> Args:
        return Args(list(self.macs), list(self.words), list(self.ints), self.rest)


Handler = Callable[["Shell", Args], str]


@dataclass(frozen=True)
class Command:
    """One row of a dialect's command table."""

    syntax: str
    handler: Handler
    modes: frozenset[str] = EXEC_MODES

    @property
    def tokens(self) -> list[str]:
        return self.syntax.split()


@dataclass(frozen=True)
class ErrorText:
    """How a dialect refuses a line. Templates may use ``{line}``, ``{cmd}`` (first
    word) and ``{word}`` (the offending token). ``caret`` prints IOS's ``^`` marker
    line under the offending token before ``invalid``."""

    invalid: str
    incomplete: str
    ambiguous: str
    caret: bool = True
    status: int = 0  # exit status of an exec request refused this way


@dataclass(frozen=True)
class Dialect:
    """A vendor CLI as data: prompts per mode, login mode, banner, errors, commands."""

    name: str
    prompts: Mapping[str, str]  # mode -> template with {host}
    commands: tuple[Command, ...]
    errors: ErrorText
    login_mode: str = USER
    exec_mode: str = PRIV  # mode an exec request ("ssh host 'cmd'") runs in
    banner: str = ""
    abbreviations: bool = True
    case_sensitive: bool = False
    ctrl_z_ends_config: bool = True
    do_in_config: bool = True  # IOS "do <exec command>" from config mode
    pipes: bool = True  # "<command> | include <regex>" output filters
    ssh_version: str = "OpenSSH_8.0"  # sent as "SSH-2.0-<ssh_version>"


@dataclass(frozen=True)
class Matched:
    """The result of matching a line against a command table."""

    command: Command | None
    args: Args
    error: str | None = None  # "invalid" | "incomplete" | "ambiguous"
    at: int = 0  # index of the offending token


_PLACEHOLDERS = ("{mac}", "{word}", "{int}", "{rest}")


def match(commands: Sequence[Command], tokens: Sequence[str], *, abbreviate: bool = True,
          case_sensitive: bool = False) -> Matched:
    """Find the command ``tokens`` names. Keywords beat placeholders; with ``abbreviate``
    a keyword may be shortened to any prefix that is unique at its position."""
    alive: list[tuple[Command, Args, int]] = [(c, Args(), 0) for c in commands]
    done: list[tuple[Command, Args, int]] = []  # matched through a {rest}
    for i, tok in enumerate(tokens):
        key = tok if case_sensitive else tok.lower()
        lits = {c.tokens[i] for c, _, _ in alive
                if i < len(c.tokens) and c.tokens[i] not in _PLACEHOLDERS}
        chosen: str | None = key if key in lits else None
        ambiguous = False
        if chosen is None and abbreviate and key:
            prefixed = sorted(w for w in lits if w.startswith(key))
            if len(prefixed) == 1:
                chosen = prefixed[0]
            ambiguous = len(prefixed) > 1
        nxt: list[tuple[Command, Args, int]] = []
        for cmd, args, score in alive:
            toks = cmd.tokens
            if i >= len(toks):
                continue
            spec = toks[i]
            if spec == chosen:
                nxt.append((cmd, args, score + 2))
            elif spec == "{rest}":
                a = args.copy()
                a.rest = " ".join(tokens[i:])
                done.append((cmd, a, score))
            elif spec == "{word}":
                a = args.copy()
                a.words.append(tok)
                nxt.append((cmd, a, score + 1))
            elif spec == "{int}" and tok.isdigit():
                a = args.copy()
                a.ints.append(int(tok))
                nxt.append((cmd, a, score + 1))
            elif spec == "{mac}":
                try:
                    mac = Mac(tok)
                except MacError:
                    continue
                a = args.copy()
                a.macs.append(mac)
                nxt.append((cmd, a, score + 1))
        if not nxt and not done:
            return Matched(None, Args(), "ambiguous" if ambiguous else "invalid", i)
        if not nxt:
            alive = []
            break
        alive = nxt
    complete = [(c, a, s) for c, a, s in alive if len(c.tokens) == len(tokens)] + done
    if not complete:
        return Matched(None, Args(), "incomplete", len(tokens))
    best = max(complete, key=lambda t: (t[2], -len(t[0].tokens)))
    return Matched(best[0], best[1])


def parse_mac(text: str) -> Mac | None:
    """A MAC typed on the CLI, or None when it is not one."""
    try:
        return Mac(text)
    except MacError:
        return None


# ---- handlers every IOS-like dialect shares --------------------------------------

def h_noop(sh: Shell, a: Args) -> str:
    """Accepted and without visible effect (terminal settings, paging)."""
    return ""


def h_enable_open(sh: Shell, a: Args) -> str:
    """``enable`` without a password."""
    sh.mode = PRIV
    return ""


def h_disable(sh: Shell, a: Args) -> str:
    sh.mode = USER
    return ""


def h_exit(sh: Shell, a: Args) -> str:
    """``exit``: leaves config mode, or ends the session from EXEC."""
    if sh.mode == CONFIG:
        sh.mode = PRIV
    else:
        sh.close()
    return ""


def h_end(sh: Shell, a: Args) -> str:
    sh.mode = PRIV
    return ""


def ios_common(*, configure: str = "configure terminal",
               configure_text: str = "") -> tuple[Command, ...]:
    """Session commands of IOS-like dialects (terminal, disable, exit, end, config)."""

    def h_configure(sh: Shell, a: Args) -> str:
        sh.mode = CONFIG
        return configure_text

    return (
        Command("terminal length {int}", h_noop, EXEC_MODES),
        Command("terminal width {int}", h_noop, EXEC_MODES),
        Command("terminal no monitor", h_noop, EXEC_MODES),
        Command("disable", h_disable, frozenset({PRIV})),
        Command("exit", h_exit, ALL_MODES),
        Command("logout", h_exit, EXEC_MODES),
        Command("end", h_end, frozenset({CONFIG})),
        Command(configure, h_configure, frozenset({PRIV})),
    )
