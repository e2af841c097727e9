"""casa-c100g: a Casa C-series command line.

From docsis-facts.md sections 3-4: prompts ``CASA-C10G>`` / ``#`` / ``(config)#``;
``page-off``; ``config`` enters configuration and Ctrl-Z leaves it; ``show cable
modem`` has the column header below and ends with ``online cm N ; offline cm N ;
ranging cm N``; ``clear cable modem <mac> reset``. No deny or hotlist command exists
(none found), so those are errors.

Sessions start in privileged mode (``#``): netmiko's ``casa_cmts`` driver never sends
``enable`` (facts section 4: "no enable") yet enters ``config`` and expects ``#`` after
Ctrl-Z. ``enable`` / ``disable`` still work. The error text is ``ERROR``
[inference: no Casa error text was found].

Row regex (fields are single tokens separated by two or more spaces)::

    ^(?P<mac>[0-9a-f]{4}\\.[0-9a-f]{4}\\.[0-9a-f]{4}) +(?P<ip>\\S+) +(?P<us>\\S+) +
    (?P<ds>\\S+) +(?P<state>\\S+) +(?P<sid>\\d+) +(?P<rxpwr>\\S+) +(?P<timing>\\d+) +
    (?P<cpe>\\d+) +(?P<bpi>yes|no)$
    summary: ^online cm (\\d+) ; offline cm (\\d+) ; ranging cm (\\d+)$
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lab.model import CmEntry
from lab.model.render import casa_state, ipv4
from lab.ssh.dialects.base import (
    CONFIG,
    EXEC_MODES,
    PRIV,
    USER,
    Args,
    Command,
    Dialect,
    ErrorText,
    h_enable_open,
    h_noop,
    ios_common,
)
from lab.ssh.dialects.common import (
    cmts_of,
    counts,
    dotted,
    listed,
    num_cpe,
    rx_power,
    timing_offset,
)

if TYPE_CHECKING:
    from lab.ssh.shell import Shell

_PRIV = frozenset({PRIV})
HEADER = ("MAC Address  IP Address  US Intf  DS Intf  MAC Status  Prim Sid  RxPwr  "
          "Timing Offset  Num CPEs  BPI Enb")


def row(e: CmEntry) -> str:
    m = e.modem
    us = f"{m.md_if % 16}/{m.us_if % 8}.0"
    ds = f"{m.md_if % 16}/{m.ds_if % 8}/0"
    rx = rx_power(e)[:-1] or "-"  # one decimal on Casa
    return (f"{dotted(e.mac)}  {ipv4(e):<15}  {us:<7}  {ds:<7}  {casa_state(e):<10}  "
            f"{e.status_index:<8}  {rx:<5}  {timing_offset(e):<13}  {num_cpe(e):<8}  "
            f"{'yes' if m.bpi_plus else 'no'}")


def summary(entries: list[CmEntry]) -> str:
    on, off, ranging = counts(entries)
    return f"online cm {on} ; offline cm {off} ; ranging cm {ranging}"


def show_modems(sh: Shell, a: Args) -> str:
    entries = listed(cmts_of(sh))
    if a.macs:
        entries = [e for e in entries if e.mac == a.macs[0].packed]
        if not entries:
            return ""
    return "\n".join([HEADER, *map(row, entries), summary(entries)])


def clear_reset(sh: Shell, a: Args) -> str:
    cmts_of(sh).reset(a.macs[0].packed)
    return ""


def show_version(sh: Shell, a: Args) -> str:
    up = cmts_of(sh).uptime_ticks() // 100
    return (f"Casa Systems C100G (enforcer lab)\nSoftware version 8.4.2\n"
            f"Uptime: {up // 86400} days {up % 86400 // 3600} hours {up % 3600 // 60} minutes")


def show_running(sh: Shell, a: Args) -> str:
    return f"hostname {sh.hostname}\n!\nline vty\n  transport input ssh\n!\nend"


def write_memory(sh: Shell, a: Args) -> str:
    return "Configuration saved."


DIALECT = Dialect(
    name="casa-c100g",
    prompts={USER: "{host}>", PRIV: "{host}#", CONFIG: "{host}(config)#"},
    login_mode=PRIV,
    errors=ErrorText(
        invalid="ERROR: Invalid command '{line}'",
        incomplete="ERROR: Incomplete command '{line}'",
        ambiguous="ERROR: Ambiguous command '{line}'",
        caret=False,
    ),
    commands=(
        *ios_common(configure="config"),
        Command("enable", h_enable_open, EXEC_MODES),
        Command("page-off", h_noop, EXEC_MODES),
        Command("show version", show_version, EXEC_MODES),
        Command("show running-config", show_running, _PRIV),
        Command("show cable modem", show_modems, EXEC_MODES),
        Command("show cable modem {mac}", show_modems, EXEC_MODES),
        Command("clear cable modem {mac} reset", clear_reset, _PRIV),
        Command("write memory", write_memory, _PRIV),
        Command("copy running-config startup-config", write_memory, _PRIV),
    ),
)
