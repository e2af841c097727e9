r"""casa-c100g: a Casa C-series command line.

Prompts ``<host>>`` / ``#`` / ``(config)#``; ``page-off``; ``config`` enters
configuration and Ctrl-Z leaves it; ``clear cable modem <mac> reset``. No deny or
hotlist command exists (none found), so those are refused. Sessions start in privileged
mode (``#``): netmiko's ``casa_cmts`` driver never sends ``enable`` yet enters
``config`` and expects ``#`` after Ctrl-Z. Refusals are IOS-style (``% Invalid input
detected at '^' marker.``). Sources per command: lab/README.md ("Fidelity").

``show cable modem``: two header lines, one row per modem (an IPv6 address on a
continuation line under the IP column), then ``online cm N ; offline cm N ; ranging cm
N``. Interfaces read ``<slot>/<port>.<channel>/<logical>`` (upstream) and
``<slot>/<port>/<channel>`` (downstream), with ``*`` for a bonded modem and ``#`` for one
in partial service; offline rows show ``0.0.0.0``::

    ^(?P<mac>[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}) +(?P<ip>\d+\.\d+\.\d+\.\d+ +)?
    (?P<us>\d+/\d+\.\d+/\d+[*#]?) +(?P<ds>\d+/\d+/\d+[*#]?) +(?P<state>\S+) +
    (?P<sid>\d+) +(?P<rxpwr>\S+) +(?P<timing>\d+) +(?P<cpe>\d+) +(?P<bpi>yes|no)$
    summary: ^online cm (\d+) ; offline cm (\d+) ; ranging cm (\d+)$

A CMTS with topology ``layout: vccap`` (a vCCAP) adds MAC domain, device class and RPHY
node columns to each row (``VCCAP_HEADER``; no public recording of that view was found).
"""

from __future__ import annotations

import ipaddress
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
    at_columns,
    cmts_of,
    counts,
    device_class,
    dotted,
    listed,
    num_cpe,
    rx_power,
    timing_offset,
)

if TYPE_CHECKING:
    from lab.ssh.shell import Shell

_PRIV = frozenset({PRIV})
_TOP = ((0, "MAC Address"), (16, "IP Address"), (33, "US"), (45, "DS"), (57, "MAC"),
        (70, "Prim"), (76, "RxPwr"), (83, "Timing"), (91, "Num"), (96, "BPI"))
_BOTTOM = ((33, "Intf"), (45, "Intf"), (57, "Status"), (70, "Sid"), (76, "(dBmV)"),
           (83, "Offset"), (91, "CPEs"), (96, "Enb"))
HEADER = "\n".join((at_columns(*_TOP), at_columns(*_BOTTOM)))
# The vCCAP view (topology ``layout: vccap``): the same columns, then MAC domain, device
# class and RPHY node. No public recording of this view was found: the column set is
# the one lab/README.md "Fidelity" names, the positions are ours.
VCCAP_HEADER = "\n".join((
    at_columns(*_TOP, (101, "MAC"), (106, "Dev"), (113, "RPHY")),
    at_columns(*_BOTTOM, (101, "Dom"), (106, "Class"), (113, "Node")),
))


def _ipv4(e: CmEntry) -> str:
    return ipv4(e) if e.online else "0.0.0.0"  # noqa: S104 (a listed address, not a bind)


def row(e: CmEntry, progress: float = 1.0, *, layout: str = "classic") -> str:
    m = e.modem
    mark = "#" if m.partial else "*" if m.bonded else ""
    us = f"{m.md_if % 16}/{m.us_if % 8}.0/0{mark}"
    ds = f"{m.md_if % 16}/{m.ds_if % 8}/0{mark}"
    rx = rx_power(e)[:-1] or "0.0"  # one decimal on Casa
    line = (f"{dotted(e.mac)}  {_ipv4(e):<15}  {us:<10}  {ds:<10}  "
            f"{casa_state(e, progress):<11}  {e.status_index:<4}  {rx:<5}  "
            f"{timing_offset(e):<6}  {num_cpe(e):<3}  {'yes' if m.bpi_plus else 'no'}")
    if layout == "vccap":  # MAC domain, device class, RPHY node
        line += f"{'' if m.bpi_plus else ' '}  {m.md_if % 16 + 1:<3}  {device_class(e):<5}  " \
                f"{m.node}"
    if m.ipv6 is not None and e.online:
        line += "\n" + " " * 16 + str(ipaddress.IPv6Address(m.ipv6))
    return line


def summary(entries: list[CmEntry]) -> str:
    on, off, ranging = counts(entries)
    return f"online cm {on} ; offline cm {off} ; ranging cm {ranging}"


def show_modems(sh: Shell, a: Args) -> str:
    c = cmts_of(sh)
    entries = listed(c)
    if a.macs:
        entries = [e for e in entries if e.mac == a.macs[0].packed]
        if not entries:
            return ""
    header = VCCAP_HEADER if c.layout == "vccap" else HEADER
    return "\n".join([header, *(row(e, c.progress(e), layout=c.layout) for e in entries),
                      summary(entries)])


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
        invalid="% Invalid input detected at '^' marker.\n",
        incomplete="% Incomplete command.\n",
        ambiguous='% Ambiguous command:  "{line}"\n',
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
