"""How each dialect reports a registration record: one function per MIB column or CLI
column, so that SNMP views and CLI output always agree. Values follow
docsis-facts.md sections 1-3 ("network-access-disabled looks like ...")."""

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


def cisco_state(e: CmEntry) -> str:
    """MAC state column of cBR-8 ``show cable modem``."""
    if e.online:
        if not e.forwarding:
            return "online(d)"
        return "w-online(pt)" if e.modem.bpi_plus else "w-online"
    return {
        Phase.OFFLINE: "offline",
        Phase.RANGING: "init(r1)",
        Phase.DHCP: "init(d)",
        Phase.CONFIG: "init(o)",
        Phase.REGISTRATION: "init(i)",
        Phase.BPI_INIT: "online(pk)",
        Phase.REJECTED: "reject(pk)",
    }[e.phase]


def casa_state(e: CmEntry) -> str:
    if e.online:
        return "online" if e.forwarding else "online(d)"
    return {
        Phase.OFFLINE: "offline",
        Phase.RANGING: "ranging",
        Phase.DHCP: "init(d)",
        Phase.CONFIG: "init(o)",
        Phase.REGISTRATION: "init(r)",
        Phase.BPI_INIT: "online(pk)",
        Phase.REJECTED: "reject(pk)",
    }[e.phase]


def arris_state(e: CmEntry) -> str:
    """``State=`` of ARRIS ``show cable modem <mac> detail``."""
    if e.online:
        return "Operational" if e.forwarding else "Online-d"
    return {
        Phase.OFFLINE: "Offline",
        Phase.RANGING: "Ranging",
        Phase.DHCP: "DHCP",
        Phase.CONFIG: "TFTP",
        Phase.REGISTRATION: "Registration",
        Phase.BPI_INIT: "BPI-Init",
        Phase.REJECTED: "Reject-pk",
    }[e.phase]


def ipv4(e: CmEntry) -> str:
    ip = e.modem.ip
    return ".".join(str(b) for b in ip) if e.online else "---"
