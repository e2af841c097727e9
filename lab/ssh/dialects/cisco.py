r"""cisco-cbr8: an IOS-XE command line in the style of the Cisco cBR-8.

Commands: ``show cable modem [<mac>]`` (three header lines as recorded on a uBR10k,
rows in the genieparser cBR-8 golden format), ``clear cable modem <mac> reset|delete``,
in config mode ``[no] cable privacy hotlist cm <mac>`` (a BPI+ hotlist row added by
MAC, so it matches any certificate), ``show running-config`` with ``| include`` and
friends (the enforcer's hotlist read-back is filtered). ``show cable modem <mac>`` for
an unknown MAC prints nothing. State words follow the situation
(``lab.model.render.cisco_state``). A CMTS with topology ``layout: rphy`` (serving
Remote PHY devices) lists modems with three more columns, MAC domain, device class and
RPHY node (``RPHY_HEADER``; no public recording of that view was found). Sources per
command: lab/README.md ("Fidelity").

Row regex (one listed modem)::

    ^(?P<mac>[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}) +(?P<ip>\S+) +(?P<iface>C\S+) +
    (?P<state>\S+) +(?P<sid>\d+) +(?P<rxpwr>-?\d+\.\d+)? +(?P<timing>\d+) +
    (?P<cpe>\d+) +(?P<dip>[YN])$
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from lab.model import CmEntry
from lab.model.render import cisco_state, ipv4
from lab.ssh.dialects.base import (
    CONFIG,
    EXEC_MODES,
    PRIV,
    USER,
    Args,
    Command,
    Dialect,
    ErrorText,
    ios_common,
)
from lab.ssh.dialects.common import (
    at_columns,
    cmts_of,
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
_CONF = frozenset({CONFIG})


# Three header lines as on the uBR10k recording (lab/README.md fidelity table), with the
# columns where the cBR-8 golden rows put them (its MAC State column is wider).
_TOP = ((0, "MAC Address"), (15, "IP Address"), (31, "I/F"), (45, "MAC"), (63, "Prim"),
        (68, "RxPwr"), (74, "Timing"), (81, "Num"), (87, "I"))
_BOTTOM = ((45, "State"), (63, "Sid"), (67, "(dBmv)"), (74, "Offset"), (81, "CPE"), (87, "P"))
HEADER = "\n".join((at_columns((87, "D")), at_columns(*_TOP), at_columns(*_BOTTOM)))
# The Remote PHY view (topology ``layout: rphy``): the same columns, then MAC domain,
# device class and the RPD (RPHY node) the modem sits behind. No public recording of
# this view was found: the column set is the one lab/README.md "Fidelity" names, the
# positions are ours.
RPHY_HEADER = "\n".join((
    at_columns((87, "D")),
    at_columns(*_TOP, (90, "MAC"), (103, "Dev"), (109, "RPHY")),
    at_columns(*_BOTTOM, (90, "Dom"), (103, "Class"), (109, "Node")),
))


def interface(e: CmEntry, state: str | None = None) -> str:
    """cBR-8 upstream name from the modem's MAC domain and upstream ifIndex:
    ``C<slot>/0/<port>/UB`` when bonded (a ``w-``/``p-`` state), else ``.../U<n>``."""
    m = e.modem
    base = f"C{m.md_if % 10}/0/{(m.md_if // 10) % 8}"
    word = state if state is not None else cisco_state(e)
    return f"{base}/UB" if word.startswith(("w-", "p-")) else f"{base}/U{m.us_if % 4}"


def mac_domain(e: CmEntry) -> str:
    """The modem's MAC domain interface, ``Cable<slot>/0/<port>``."""
    m = e.modem
    return f"Cable{m.md_if % 10}/0/{(m.md_if // 10) % 8}"


def row(e: CmEntry, progress: float = 1.0, *, layout: str = "classic") -> str:
    """``d4b9.2f6e.f2b0 101.113.1.15    C2/0/0/UB     w-online(pt)      1     15.00  1407
    0   N`` (one line); the Remote PHY view adds ``Cable2/0/0    CM    node-a1``."""
    state = cisco_state(e, progress)
    line = (f"{dotted(e.mac):<14} {ipv4(e):<15} {interface(e, state):<13} {state:<17} "
            f"{e.status_index:<5} {rx_power(e):>5}{timing_offset(e):>6}{num_cpe(e):>4}"
            f"{'N':>4}")
    if layout == "rphy":
        line += f"  {mac_domain(e):<12} {device_class(e):<5} {e.modem.node}"
    return line


def show_modems(sh: Shell, a: Args) -> str:
    c = cmts_of(sh)
    entries = listed(c)
    if a.macs:
        entries = [e for e in entries if e.mac == a.macs[0].packed]
        if not entries:
            return ""
    header = RPHY_HEADER if c.layout == "rphy" else HEADER
    return "\n".join([header, *(row(e, c.progress(e), layout=c.layout)
                                for e in entries)]) + "\n"


def clear_reset(sh: Shell, a: Args) -> str:
    cmts_of(sh).reset(a.macs[0].packed)
    return ""


def clear_delete(sh: Shell, a: Args) -> str:
    cmts_of(sh).delete(a.macs[0].packed)
    return ""


def hotlist_add(sh: Shell, a: Args) -> str:
    cmts_of(sh).hotlist_add(a.macs[0].packed, cert=None)
    return ""


def hotlist_remove(sh: Shell, a: Args) -> str:
    cmts_of(sh).hotlist_remove(a.macs[0].packed)
    return ""


def _cert(cert: bytes | None) -> str:
    return "any" if cert is None else "sha256:" + hashlib.sha256(cert).hexdigest()[:16]


def show_hotlist(sh: Shell, a: Args) -> str:
    c = cmts_of(sh)
    lines = [f"Total hotlist entries: {len(c.hotlist)}", "Type  MAC Address     Certificate"]
    lines += [f"CM    {dotted(bytes(t)):<15} {_cert(c.hotlist[bytes(t)].cert)}"
              for t in c.hotlist_macs]
    return "\n".join(lines)


def running_config(sh: Shell) -> str:
    body = [
        "!", "version 16.12", "service timestamps debug datetime msec",
        "service password-encryption", f"hostname {sh.hostname}", "!",
        "enable secret 9 <removed>" if sh.enable_secret else "no enable password", "!",
        "cable privacy accept-self-signed-certificate",
    ]
    body += [f"cable privacy hotlist cm {dotted(bytes(t))}" for t in cmts_of(sh).hotlist_macs]
    body += ["!", "ip ssh version 2", "!", "line vty 0 15", " transport input ssh", "!", "end"]
    text = "\n".join(body)
    return f"Building configuration...\n\nCurrent configuration : {len(text)} bytes\n{text}\n"


def show_running(sh: Shell, a: Args) -> str:
    return running_config(sh)


def show_version(sh: Shell, a: Args) -> str:
    up = cmts_of(sh).uptime_ticks() // 100
    return "\n".join((
        "Cisco IOS XE Software, Version 16.12.01z",
        ("Cisco IOS Software [Gibraltar], cBR Software (X86_64_LINUX_IOSD-UNIVERSALK9-M), "
         "Version 16.12.1z, RELEASE SOFTWARE (fc2)"),
        "Copyright (c) 1986-2019 by Cisco Systems, Inc.",
        "",
        (f"{sh.hostname} uptime is {up // 86400} days, {up % 86400 // 3600} hours, "
         f"{up % 3600 // 60} minutes"),
        "cisco cBR-8 (enforcer lab) processor with 16777216K bytes of memory.",
        "Configuration register is 0x2102",
    ))


def write_memory(sh: Shell, a: Args) -> str:
    return "Building configuration...\n[OK]"


def enable(sh: Shell, a: Args) -> str:
    """``enable``: asks ``Password: `` when an enable secret is set; three tries, then
    ``% Bad secrets`` (IOS behaviour)."""
    secret = sh.enable_secret
    if secret is None or sh.mode == PRIV:
        sh.mode = PRIV
        return ""

    def attempt(tries: int) -> None:
        def answer(given: str) -> str:
            if given == secret:
                sh.mode = PRIV
                return ""
            if tries >= 3:
                return "% Bad secrets\n"
            attempt(tries + 1)
            return ""

        sh.ask_secret("Password: ", answer)

    attempt(1)
    return ""


DIALECT = Dialect(
    name="cisco-cbr8",
    prompts={USER: "{host}>", PRIV: "{host}#", CONFIG: "{host}(config)#"},
    login_mode=USER,
    ssh_version="Cisco-1.25",
    errors=ErrorText(
        invalid="% Invalid input detected at '^' marker.\n\n",
        incomplete="% Incomplete command.\n\n",
        ambiguous='% Ambiguous command:  "{line}"\n',
    ),
    commands=(
        *ios_common(configure="configure terminal", configure_text=(
            "Enter configuration commands, one per line.  End with CNTL/Z.")),
        Command("enable", enable, EXEC_MODES),
        Command("show version", show_version, EXEC_MODES),
        Command("show cable modem", show_modems, EXEC_MODES),
        Command("show cable modem {mac}", show_modems, EXEC_MODES),
        Command("show cable privacy hotlist", show_hotlist, _PRIV),
        Command("show running-config", show_running, _PRIV),
        Command("clear cable modem {mac} reset", clear_reset, _PRIV),
        Command("clear cable modem {mac} delete", clear_delete, _PRIV),
        Command("write memory", write_memory, _PRIV),
        Command("copy running-config startup-config", write_memory, _PRIV),
        Command("cable privacy hotlist cm {mac}", hotlist_add, _CONF),
        Command("no cable privacy hotlist cm {mac}", hotlist_remove, _CONF),
    ),
)

__all__ = ["DIALECT", "HEADER", "RPHY_HEADER", "interface", "mac_domain", "row"]
