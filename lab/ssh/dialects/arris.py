r"""arris-e6000: an ARRIS C4 / E6000 CER command line.

The deny list is ``configure cable modem deny <mac>`` (C4 exec one-liner; also ``cable
modem deny <mac>`` in config mode), removed with ``no``; delete is ``clear cable modem
delete <mac>`` (keyword first); ``show cable modem <mac> detail`` shows
``State=Operational`` / ``State=Online-d`` and ``Privacy=Ready  Ver=BPI Plus``; denied
modems are not listed. A deny takes effect when the modem next registers, so it must be
reset. Refusals are lines that begin ``Error: `` (``Error: Bad command``, ``Error:
Missing parameter``, ``Error: Ambiguous parameter``); a full deny list answers
``DENY_FULL``. Unknown MACs print nothing. Sources per command: lab/README.md
("Fidelity"); where none was found (the deny listing, the full-list text) it says so.

``show cable modem``: a timestamp line, the two header lines of ``HEADER``, one row per
modem, a blank line and the ``Total Oper Disable Init Offline`` counts::

    ^(?P<iface>\d+/\d+/\d+-\d+/\d+/\d+) +(?P<macdom>\d+) +(?P<bonded>\d+x\d+) +
    (?P<state>\S+) +(?P<docsis>\S+) +(?P<qos>\d+) +(?P<cpe>\d+) +
    (?P<mac>[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}) +(?P<ip>\S+)$

``show cable modem deny``::

    ^(?P<mac>[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}) +(?P<attempts>\d+)$
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from lab.model import CmEntry, DenyListFull
from lab.model.modem import Phase
from lab.model.render import arris_state, ipv4
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
from lab.ssh.dialects.common import at_columns, cmts_of, dotted, find, listed, num_cpe

if TYPE_CHECKING:
    from lab.ssh.shell import Shell

_PRIV = frozenset({PRIV})
_CONF = frozenset({CONFIG})
DENY_FULL = "Error: cable modem deny list is full ({capacity} entries)"
# Two header lines as the E6000 prints them (lab/README.md fidelity table); "Mac Dom" is
# the MAC domain, "Bonded" the DSxUS channel counts.
HEADER = "\n".join((
    at_columns((0, "Interface (DS-US)"), (22, "Mac"), (28, "Bonded")),
    at_columns((0, "S/C/CH-S/CG/CH"), (22, "Dom"), (28, "DSxUS"), (36, "State"), (50, "DOCSIS"),
               (57, "QoS"), (62, "CPE"), (67, "MAC address"), (83, "IP Address")),
))


def interface(e: CmEntry) -> str:
    """``<slot>/<connector>/<channel>-<slot>/<connector group>/<channel>`` (DS-US) from
    the modem's MAC domain, downstream and upstream."""
    m = e.modem
    slot = m.md_if % 16
    return f"{slot}/{(m.md_if // 16) % 8}/{m.ds_if % 32}-{slot}/{(m.md_if // 16) % 8}/{m.us_if % 8}"


def row(e: CmEntry) -> str:
    m = e.modem
    bonded = "8x4" if m.bonded and e.phase is not Phase.OFFLINE else "1x1"
    return (f"{interface(e):<21} {m.md_if % 64:<5} {bonded:<7} {arris_state(e):<13} "
            f"{'3.0':<6} {1:<4} {num_cpe(e):<4} {dotted(e.mac):<15} {ipv4(e)}").rstrip()


def summary(entries: list[CmEntry]) -> str:
    oper = sum(1 for e in entries if e.forwarding)
    disabled = sum(1 for e in entries if e.online and not e.forwarding)
    offline = sum(1 for e in entries if e.phase is Phase.OFFLINE)
    init = len(entries) - oper - disabled - offline
    return "\n".join((at_columns((0, "Total"), (8, "Oper"), (15, "Disable"), (24, "Init"),
                                  (31, "Offline")),
                      at_columns((0, str(len(entries))), (8, str(oper)), (15, str(disabled)),
                                 (24, str(init)), (31, str(offline)))))


def show_modems(sh: Shell, a: Args) -> str:
    c = cmts_of(sh)
    entries = listed(c)
    if a.macs:
        entries = [e for e in entries if e.mac == a.macs[0].packed]
        if not entries:
            return ""
    stamp = time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(c.wall_now()))
    return "\n".join([stamp, HEADER, *map(row, entries), "", summary(entries)])


def privacy(e: CmEntry) -> str:
    if not e.modem.bpi_plus:
        return "Privacy=Disabled"
    ready = "Ready" if e.phase is Phase.ONLINE else "Not Ready"
    return f"Privacy={ready}  Ver=BPI Plus"


def show_detail(sh: Shell, a: Args) -> str:
    e = find(cmts_of(sh), a.macs[0].packed)
    if e is None:
        return ""
    return "\n".join((
        f"MAC Address={dotted(e.mac)}  IP Address={ipv4(e)}",
        (f"Interface={interface(e)}  Prim Sid={e.status_index}  "
         f"Registrations={e.registrations}"),
        f"State={arris_state(e)}  DOCSIS=3.0",
        privacy(e),
        f"Num CPE={num_cpe(e)}",
    ))


def show_deny(sh: Shell, a: Args) -> str:
    c = cmts_of(sh)
    lines = [f"Deny list entries: {len(c.deny)} of {c.deny_capacity}",
             "MAC Address     Denied Attempts"]
    lines += [f"{dotted(bytes(t)):<15} {sum(c.deny[bytes(t)].attempts.values())}"
              for t in c.deny_macs]
    return "\n".join(lines)


def deny(sh: Shell, a: Args) -> str:
    c = cmts_of(sh)
    try:
        c.deny_add(a.macs[0].packed)
    except DenyListFull:
        sh.status = 1
        return DENY_FULL.format(capacity=c.deny_capacity)
    return ""


def undeny(sh: Shell, a: Args) -> str:
    cmts_of(sh).deny_remove(a.macs[0].packed)
    return ""


def configure_line(sh: Shell, a: Args) -> str:
    """``configure <config command>``: a config-mode command from privileged EXEC."""
    return sh.run_in(CONFIG, a.rest)


def clear_delete(sh: Shell, a: Args) -> str:
    cmts_of(sh).delete(a.macs[0].packed)
    return ""


def clear_reset(sh: Shell, a: Args) -> str:
    cmts_of(sh).reset(a.macs[0].packed)
    return ""


def show_running(sh: Shell, a: Args) -> str:
    c = cmts_of(sh)
    lines = ["#", f"hostname {sh.hostname}", "#", "ip ssh server enable"]
    lines += [f"cable modem deny {dotted(bytes(t))}" for t in c.deny_macs]
    return "\n".join([*lines, "end"])


def show_version(sh: Shell, a: Args) -> str:
    up = cmts_of(sh).uptime_ticks() // 100
    return (f"ARRIS E6000 Converged Edge Router (enforcer lab)\nSoftware version 12.0.1\n"
            f"System uptime: {up // 86400}d {up % 86400 // 3600}h {up % 3600 // 60}m")


def write_memory(sh: Shell, a: Args) -> str:
    return "Configuration saved."


DIALECT = Dialect(
    name="arris-e6000",
    prompts={USER: "{host}>", PRIV: "{host}#", CONFIG: "{host}(config)#"},
    login_mode=USER,
    errors=ErrorText(
        invalid="Error: Bad command\n",
        incomplete="Error: Missing parameter\n",
        ambiguous="Error: Ambiguous parameter\n",
        caret=False,
    ),
    commands=(
        *ios_common(configure="configure"),
        Command("configure terminal", ios_common(configure="configure")[-1].handler, _PRIV),
        Command("configure {rest}", configure_line, _PRIV),
        Command("enable", h_enable_open, EXEC_MODES),
        Command("no pagination", h_noop, EXEC_MODES),
        Command("show version", show_version, EXEC_MODES),
        Command("show running-config", show_running, _PRIV),
        Command("show cable modem", show_modems, EXEC_MODES),
        Command("show cable modem {mac}", show_modems, EXEC_MODES),
        Command("show cable modem {mac} detail", show_detail, EXEC_MODES),
        Command("show cable modem deny", show_deny, EXEC_MODES),
        Command("clear cable modem delete {mac}", clear_delete, _PRIV),
        Command("clear cable modem {mac} reset", clear_reset, _PRIV),
        Command("write memory", write_memory, _PRIV),
        Command("cable modem deny {mac}", deny, _CONF),
        Command("no cable modem deny {mac}", undeny, _CONF),
    ),
)
