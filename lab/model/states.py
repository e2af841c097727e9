"""State enumerations the lab reports, from the MIB modules (docs/docsis.md section 1-2)."""

from __future__ import annotations

from enum import IntEnum


class DocsIfStatus(IntEnum):
    """docsIfCmtsCmStatusValue (DOCS-IF-MIB, RFC 4546). There is no 'offline' value."""

    OTHER = 1
    RANGING = 2
    RANGING_ABORTED = 3
    RANGING_COMPLETE = 4
    IP_COMPLETE = 5
    REGISTRATION_COMPLETE = 6
    ACCESS_DENIED = 7
    OPERATIONAL = 8
    REGISTERED_BPI_INITIALIZING = 9


class CmtsRegState(IntEnum):
    """CmtsCmRegState (DOCS-IF3-MIB), CMTS side. The CM-side numbers differ."""

    OTHER = 1
    INITIAL_RANGING = 2
    RANGING_AUTO_ADJ_COMPLETE = 4
    DHCPV4_COMPLETE = 5
    REGISTRATION_COMPLETE = 6
    OPERATIONAL = 8
    BPI_INIT = 9
    START_EAE = 10
    START_DHCPV4 = 11
    START_DHCPV6 = 12
    DHCPV6_COMPLETE = 13
    START_CONFIG_FILE_DOWNLOAD = 14
    CONFIG_FILE_DOWNLOAD_COMPLETE = 15
    START_REGISTRATION = 16
    FORWARDING_DISABLED = 17
    RF_MUTE_ALL = 18


class CdxStatus(IntEnum):
    """cdxCmtsCmStatusValue (CISCO-DOCS-EXT-MIB), the values the lab uses."""

    OFFLINE = 1
    OTHERS = 2
    INIT_RANGING_RCVD = 3
    INIT_DHCP_REQ_RCVD = 4
    ONLINE_NET_ACCESS_DISABLED = 5
    KEK_REJECTED = 10
    ONLINE = 12
    INIT_TFTP_PACKET_RCVD = 13


class CadStatus(IntEnum):
    """cadIfCmtsCmStatusValue (CADANT-CMTS-MAC-MIB): DOCS-IF3 numbers plus vendor values.
    The facts give forwardingDisabled=17 and netAccessDisabled=20."""

    OTHER = 1
    INITIAL_RANGING = 2
    OPERATIONAL = 8
    BPI_INIT = 9
    FORWARDING_DISABLED = 17
    NET_ACCESS_DISABLED = 20


class BpiCertValid(IntEnum):
    """docsBpi2CmtsAuthBpkmCmCertValid (RFC 4131)."""

    UNKNOWN = 0
    VALID_CM_CHAINED = 1
    VALID_CM_TRUSTED = 2
    INVALID_CM_UNTRUSTED = 3
    INVALID_CA_UNTRUSTED = 4
