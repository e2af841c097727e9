"""dncs-headend: the operator shell of a Cisco/SA DNCS conditional-access controller.

A plain Unix-like shell (netmiko ``device_type="linux"``): prompt ``dncs@<name>:~$ ``,
no paging, exit status per command (``echo $?``), unknown commands answer
``-bash: <cmd>: command not found`` (status 127). MACs are accepted as
``00:02:DE:4A:11:92`` or ``0002DE4A1192`` (docs/docsis.md section 5; any notation
``enforcer.domain.mac.Mac`` parses works) and printed as ``00:02:DE:4A:11:92``.

``modDhctCfg <op>... <MAC>`` (facts section 5) with ops ``-p<pkg>`` / ``+p<pkg>``
(remove / add package), ``-dms`` / ``+dms`` (digital service). All ops are checked
before any is applied. Output, one line::

    modDhctCfg: transaction <n> OK for DHCT <MAC>: <change>[; <change>...]
    modDhctCfg: ERROR DHCT <MAC> not found                     (status 1)
    modDhctCfg: ERROR unknown operation '<op>'                 (status 1)
    modDhctCfg: ERROR invalid MAC address '<text>'             (status 1)
    usage: modDhctCfg {-p<pkg>|+p<pkg>|-dms|+dms}... <MAC>     (status 2)

``showDhct <MAC>`` prints ``Key: value`` lines, always in this order::

    MAC: 00:02:DE:4A:11:92
    eCM MAC: 00:02:DE:4A:11:93
    Account: <account or ->
    Packages: BASIC,HD,SDA              (sorted, comma-separated; "-" when none)
    DigitalService: enabled|disabled
    ServiceDisconnect: yes|no           (Headend.service_disconnected: the box has run
                                         its once-a-check-interval SDA check without
                                         the SDA package and shows the barker)
    Decoding: yes|no

An unknown box answers ``showDhct: ERROR DHCT <MAC> not found`` (status 1).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from lab.ssh.dialects.base import USER, Args, Command, Dialect, ErrorText, h_exit, parse_mac
from lab.ssh.dialects.common import headend_of

if TYPE_CHECKING:
    from lab.ssh.shell import Shell

_U = frozenset({USER})
_OP = re.compile(r"^(?:[+-]p\S+|[+-]dms)$")
USAGE = "usage: modDhctCfg {-p<pkg>|+p<pkg>|-dms|+dms}... <MAC>"


def _mac_text(mac: bytes) -> str:
    return mac.hex(":").upper()


def mod_dhct_cfg(sh: Shell, a: Args) -> str:
    args = a.rest.split()
    if len(args) < 2:
        sh.status = 2
        return USAGE
    *ops, mac_text = args
    mac = parse_mac(mac_text)
    if mac is None:
        sh.status = 1
        return f"modDhctCfg: ERROR invalid MAC address '{mac_text}'"
    bad = [op for op in ops if not _OP.match(op)]
    if bad:
        sh.status = 1
        return f"modDhctCfg: ERROR unknown operation '{bad[0]}'"
    h = headend_of(sh)
    if h.get(mac.packed) is None:
        sh.status = 1
        return f"modDhctCfg: ERROR DHCT {_mac_text(mac.packed)} not found"
    changes = h.mod_cfg(mac.packed, ops)
    return (f"modDhctCfg: transaction {h.transactions} OK for DHCT {_mac_text(mac.packed)}: "
            + "; ".join(changes))


def mod_usage(sh: Shell, a: Args) -> str:
    sh.status = 2
    return USAGE


def show_dhct(sh: Shell, a: Args) -> str:
    words = a.rest.split()
    mac = parse_mac(words[0]) if len(words) == 1 else None
    if mac is None:
        sh.status = 2
        return "usage: showDhct <MAC>"
    h = headend_of(sh)
    d = h.get(mac.packed)
    if d is None:
        sh.status = 1
        return f"showDhct: ERROR DHCT {_mac_text(mac.packed)} not found"
    return "\n".join((
        f"MAC: {_mac_text(d.mac)}",
        f"eCM MAC: {_mac_text(d.ecm_mac)}",
        f"Account: {d.account or '-'}",
        f"Packages: {','.join(sorted(d.packages)) or '-'}",
        f"DigitalService: {'enabled' if d.dms else 'disabled'}",
        f"ServiceDisconnect: {'yes' if h.service_disconnected(d) else 'no'}",
        f"Decoding: {'yes' if h.decoding(d) else 'no'}",
    ))


def show_usage(sh: Shell, a: Args) -> str:
    sh.status = 2
    return "usage: showDhct <MAC>"


def echo(sh: Shell, a: Args) -> str:
    return a.rest.replace("$?", str(sh.last_status))


def hostname(sh: Shell, a: Args) -> str:
    return sh.hostname


def true(sh: Shell, a: Args) -> str:
    return ""


DIALECT = Dialect(
    name="dncs-headend",
    prompts={USER: "dncs@{host}:~$ "},
    login_mode=USER,
    exec_mode=USER,
    ssh_version="Sun_SSH_1.1",
    banner="DNCS operator shell (enforcer lab)",
    abbreviations=False,
    case_sensitive=True,
    ctrl_z_ends_config=False,
    do_in_config=False,
    pipes=False,
    errors=ErrorText(
        invalid="-bash: {cmd}: command not found",
        incomplete="-bash: {cmd}: command not found",
        ambiguous="-bash: {cmd}: command not found",
        caret=False,
        status=127,
    ),
    commands=(
        Command("modDhctCfg {rest}", mod_dhct_cfg, _U),
        Command("modDhctCfg", mod_usage, _U),
        Command("showDhct {rest}", show_dhct, _U),
        Command("showDhct", show_usage, _U),
        Command("echo {rest}", echo, _U),
        Command("echo", true, _U),
        Command("hostname", hostname, _U),
        Command("true", true, _U),
        Command("exit", h_exit, _U),
        Command("logout", h_exit, _U),
    ),
)
