"""How each dialect reports a registration record: one function per MIB column or CLI
column, so that SNMP views and CLI output always agree. Values follow
docs/docsis.md sections 1-3 ("network-access-disabled looks like ...")."""

from __future__ import annotations

from lab.model.cmts import CmEntry
from lab.model.modem import Phase
from lab.model.states import CadStatus, CdxStatus, CmtsRegState, DocsIfStatus

_IF3 = {
    Phase.OFFLINE: CmtsRegState.OTHER,
    Phase.RANGING: CmtsRegState.INITIAL_RANGING,
    Phase.DHCP: CmtsRegState.START_DHCPV4,
    Phase.CONFIG: CmtsRegState.START_CONFIG_FILE_DOWNLOAD,
    Phase.REGISTRATION: CmtsRegState.START_REGISTRATION,
    Phase.BPI_INIT: CmtsRegState.BPI_INIT,
    Phase.REJECTED: CmtsRegState.OTHER,  # [inference] no reject value in CmtsCmRegState
}

_DOCSIF = {
    Phase.OFFLINE: DocsIfStatus.OTHER,  # no "offline" value exists
    Phase.RANGING: DocsIfStatus.RANGING,
    Phase.DHCP: DocsIfStatus.RANGING_COMPLETE,
    Phase.CONFIG: DocsIfStatus.IP_COMPLETE,
    Phase.REGISTRATION: DocsIfStatus.IP_COMPLETE,
    Phase.BPI_INIT: DocsIfStatus.REGISTERED_BPI_INITIALIZING,
    Phase.REJECTED: DocsIfStatus.ACCESS_DENIED,
}


def if3_state(e: CmEntry) -> int:
    """docsIf3CmtsCmRegStatusValue."""
    if e.online:
        return int(CmtsRegState.OPERATIONAL if e.forwarding else CmtsRegState.FORWARDING_DISABLED)
    return int(_IF3[e.phase])


def docsif_status(e: CmEntry) -> int:
    """docsIfCmtsCmStatusValue. A forwarding-disabled modem is still registered."""
    if e.online:
        return int(DocsIfStatus.OPERATIONAL if e.forwarding
                   else DocsIfStatus.REGISTRATION_COMPLETE)
    return int(_DOCSIF[e.phase])


def cdx_status(e: CmEntry) -> int:
    """cdxCmtsCmStatusValue (Cisco)."""
    if e.online:
        return int(CdxStatus.ONLINE if e.forwarding else CdxStatus.ONLINE_NET_ACCESS_DISABLED)
    return int({
        Phase.OFFLINE: CdxStatus.OFFLINE,
        Phase.RANGING: CdxStatus.INIT_RANGING_RCVD,
        Phase.DHCP: CdxStatus.INIT_DHCP_REQ_RCVD,
        Phase.CONFIG: CdxStatus.INIT_TFTP_PACKET_RCVD,
        Phase.REGISTRATION: CdxStatus.OTHERS,
        Phase.BPI_INIT: CdxStatus.OTHERS,
        Phase.REJECTED: CdxStatus.KEK_REJECTED,
    }[e.phase])


def cad_status(e: CmEntry) -> int:
    """cadIfCmtsCmStatusValue (ARRIS): netAccessDisabled(20) for a config-file ban,
    forwardingDisabled(17) for CM-CTRL."""
    if e.online:
        if e.net_access_disabled:
            return int(CadStatus.NET_ACCESS_DISABLED)
        return int(CadStatus.FORWARDING_DISABLED if e.fwd_disabled else CadStatus.OPERATIONAL)
    return if3_state(e)


# Cisco and Casa share the MAC-state words (public glossaries: lab/README.md fidelity
# table): init(..) while registering, online / online(pk) / online(pt) registered (pk:
# BPI+ key-encryption key assigned, pt: traffic key too), a trailing "d" when network
# access is disabled (config file NetworkAccess=0 or CM-CTRL), reject(pk) when BPI+
# authorisation is refused (hotlisted certificate).
_INIT = {
    Phase.RANGING: ("init(r1)", "init(r2)"),  # initial ranging sent, then ranging
    Phase.DHCP: ("init(rc)", "init(d)", "init(i)"),  # ranging done, DHCP seen, IP given
    Phase.CONFIG: ("init(t)", "init(o)"),  # time of day, then config file download
    Phase.REGISTRATION: ("init(o)",),  # registration request after the config file
}


def _sub(words: tuple[str, ...], progress: float) -> str:
    return words[min(len(words) - 1, int(progress * len(words)))]


def mac_state(e: CmEntry, progress: float = 1.0) -> str:
    """The Cisco / Casa MAC state word without the wideband prefix."""
    if e.online or e.phase is Phase.BPI_INIT:
        keys = ""
        if e.modem.bpi_plus:
            keys = "pt" if e.online else "pk"  # TEK established once fully online
        if not (e.modem.network_access and not e.fwd_disabled):
            return f"online({keys}d)"
        return f"online({keys})" if keys else "online"
    if e.phase is Phase.OFFLINE:
        return "offline"
    if e.phase is Phase.REJECTED:
        return "reject(pk)"
    return _sub(_INIT[e.phase], progress)


def cisco_state(e: CmEntry, progress: float = 1.0) -> str:
    """MAC state column of cBR-8 ``show cable modem``: ``w-`` for a bonded modem, ``p-``
    for one in partial service, on online and reject states."""
    word = mac_state(e, progress)
    if word.startswith(("online", "reject")):
        if e.modem.partial:
            return "p-" + word
        if e.modem.bonded:
            return "w-" + word
    return word


def casa_state(e: CmEntry, progress: float = 1.0) -> str:
    """MAC Status column of Casa ``show cable modem`` (bonding shows on the interfaces)."""
    return mac_state(e, progress)


def arris_state(e: CmEntry) -> str:
    """State column of ARRIS ``show cable modem`` and ``State=`` of its detail view."""
    if e.online:
        return "Operational" if e.forwarding else "Online-d"
    return {
        Phase.OFFLINE: "Offline",
        Phase.RANGING: "Ranging",
        Phase.DHCP: "Ranged",
        Phase.CONFIG: "DhcpV4Done",
        Phase.REGISTRATION: "DhcpV4Done",
        Phase.BPI_INIT: "Registered",
        Phase.REJECTED: "Rejected",  # not reachable: the CER lab has no hotlist
    }[e.phase]


def ipv4(e: CmEntry) -> str:
    ip = e.modem.ip
    return ".".join(str(b) for b in ip) if e.online else "---"
