"""Standard MIB views shared by every CMTS dialect (docs/docsis.md section 1).

Objects (by name from mibs/, resolved when a view is built, never per request):
- SNMPv2-MIB system group
- DOCS-IF docsIfCmtsCmStatusTable (index: status index), docsIfCmtsMacToCmTable (CM MAC)
- DOCS-IF3 docsIf3CmtsCmRegStatusTable (index: reg id), docsIf3CmtsCmCtrl scalars
- DOCS-IETF-BPI2 docsBpi2CmtsProvisionedCmCertTable (CM MAC) and docsBpi2CmtsAuthTable
  (ifIndex + CM MAC)
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from enforcer.mib import oid
from lab.model.cmts import CmEntry, Cmts
from lab.model.modem import Phase
from lab.model.render import docsif_status, if3_state
from lab.model.states import BpiCertValid
from lab.snmp.mibtree import OID, Column, ErrorStatus, MibTree, Scalar, SetError, Syntax, Table

DOCS_IF_CM_STATUS_ENTRY: OID = oid("docsIfCmtsCmStatusEntry")
DOCS_IF_MAC_TO_CM_ENTRY: OID = oid("docsIfCmtsMacToCmEntry")
DOCS_IF3_REG_STATUS_ENTRY: OID = oid("docsIf3CmtsCmRegStatusEntry")
DOCS_IF3_CM_CTRL: OID = oid("docsIf3CmtsCmCtrl")
BPI2_AUTH_ENTRY: OID = oid("docsBpi2CmtsAuthEntry")
BPI2_PROV_CERT_ENTRY: OID = oid("docsBpi2CmtsProvisionedCmCertEntry")

ROW_ACTIVE, ROW_CREATE_AND_GO, ROW_CREATE_AND_WAIT, ROW_DESTROY = 1, 4, 5, 6


def col(name: str) -> int:
    """The column number (last sub-identifier) of a table column or scalar of mibs/."""
    return oid(name)[-1]


def mac_of(index: OID) -> bytes:
    return bytes(index[-6:])


def check_mac_index(index: OID) -> None:
    if len(index) != 6 or any(x > 255 for x in index):
        raise SetError(ErrorStatus.noCreation, "index is not a MAC address")


def date_and_time(epoch: float) -> bytes:
    """SNMPv2-TC DateAndTime, 8-octet UTC form."""
    t = dt.datetime.fromtimestamp(epoch, tz=dt.UTC)
    return (t.year.to_bytes(2, "big")
            + bytes([t.month, t.day, t.hour, t.minute, t.second, t.microsecond // 100000]))


def add_system(tree: MibTree, c: Cmts, descr: str, object_id: OID) -> None:
    tree.add(Scalar(oid("sysDescr"), Syntax.OCTET_STRING, lambda: descr.encode()))
    tree.add(Scalar(oid("sysObjectID"), Syntax.OBJECT_IDENTIFIER, lambda: object_id))
    tree.add(Scalar(oid("sysUpTime"), Syntax.TIMETICKS, c.uptime_ticks))
    tree.add(Scalar(oid("sysName"), Syntax.OCTET_STRING, lambda: c.name.encode()))


def add_docs_if(tree: MibTree, c: Cmts) -> None:
    def row(index: OID) -> CmEntry:
        return c.by_status[index[0]]

    def ip(index: OID) -> bytes:
        e = row(index)
        return e.modem.ip if e.online else b"\x00\x00\x00\x00"

    tree.add(Table(DOCS_IF_CM_STATUS_ENTRY, [
        Column(col("docsIfCmtsCmStatusMacAddress"), Syntax.OCTET_STRING, lambda i: row(i).mac),
        Column(col("docsIfCmtsCmStatusIpAddress"), Syntax.IP_ADDRESS, ip),
        Column(col("docsIfCmtsCmStatusDownChannelIfIndex"), Syntax.INTEGER,
               lambda i: row(i).modem.ds_if),
        Column(col("docsIfCmtsCmStatusUpChannelIfIndex"), Syntax.INTEGER,
               lambda i: row(i).modem.us_if),
        Column(col("docsIfCmtsCmStatusValue"), Syntax.INTEGER, lambda i: docsif_status(row(i))),
        Column(col("docsIfCmtsCmStatusInetAddressType"), Syntax.INTEGER, lambda i: 1),  # ipv4
        Column(col("docsIfCmtsCmStatusInetAddress"), Syntax.OCTET_STRING, ip),
    ], lambda: c.status_indexes, exists=lambda i: len(i) == 1 and i[0] in c.by_status,
        index_len=1))
    # docsIfCmtsMacToCmTable: for point look-ups (GET by MAC), walkable like the real one.
    tree.add(Table(DOCS_IF_MAC_TO_CM_ENTRY, [
        Column(col("docsIfCmtsCmPtr"), Syntax.INTEGER, lambda i: c.entries[bytes(i)].status_index),
    ], lambda: c.macs, exists=lambda i: len(i) == 6 and _is_mac_listed(c, i), index_len=6))


def _is_mac_listed(c: Cmts, index: OID) -> bool:
    return all(0 <= x <= 255 for x in index) and bytes(index) in c.entries


def add_docs_if3(tree: MibTree, c: Cmts) -> None:
    def row(index: OID) -> CmEntry:
        return c.by_reg_id[index[0]]

    def ipv4(index: OID) -> bytes:
        e = row(index)
        return e.modem.ip if e.online else b"\x00\x00\x00\x00"

    def last_reg(index: OID) -> bytes | None:
        e = row(index)
        return date_and_time(e.last_reg_time) if e.last_reg_time else None

    tree.add(Table(DOCS_IF3_REG_STATUS_ENTRY, [
        Column(col("docsIf3CmtsCmRegStatusMacAddr"), Syntax.OCTET_STRING, lambda i: row(i).mac),
        # InetAddressIPv4: four octets (an OCTET STRING, not an IpAddress)
        Column(col("docsIf3CmtsCmRegStatusIPv4Addr"), Syntax.OCTET_STRING, ipv4),
        Column(col("docsIf3CmtsCmRegStatusValue"), Syntax.INTEGER, lambda i: if3_state(row(i))),
        Column(col("docsIf3CmtsCmRegStatusMdIfIndex"), Syntax.INTEGER,
               lambda i: row(i).modem.md_if),
        Column(col("docsIf3CmtsCmRegStatusLastRegTime"), Syntax.OCTET_STRING, last_reg),
    ], lambda: c.reg_ids, exists=lambda i: len(i) == 1 and i[0] in c.by_reg_id, index_len=1))


def add_cm_ctrl(tree: MibTree, c: Cmts) -> None:
    """docsIf3CmtsCmCtrl: CmdMacAddr, MuteUsChId, MuteInterval, DisableForwarding,
    Commit. Commit acts on the values written so far (commit last in the PDU)."""
    ctrl = c.cm_ctrl

    def set_mac(v: Any) -> None:
        c.cm_ctrl.cmd_mac = v

    def check_mac(v: Any) -> None:
        if len(v) != 6:
            raise SetError(ErrorStatus.wrongLength, "CmdMacAddr is 6 octets")

    def set_field(name: str) -> Any:
        return lambda v: setattr(c.cm_ctrl, name, v)

    def check_truth(v: Any) -> None:
        if v not in (1, 2):
            raise SetError(ErrorStatus.wrongValue, "TruthValue is true(1) or false(2)")

    def check_commit(v: Any) -> None:
        if v not in (1, 2, 3):
            raise SetError(ErrorStatus.wrongValue, "mute(1) cmReinit(2) disableForwarding(3)")

    def commit(v: Any) -> None:
        c.cm_ctrl.commit = v
        mac = c.cm_ctrl.cmd_mac
        if v == 2:
            c.reset(mac)
        elif v == 3:
            c.disable_forwarding(mac, c.cm_ctrl.disable_forwarding == 1)
        # mute(1): RF muting is not modelled beyond recording the request.

    del ctrl
    tree.add(Scalar(oid("docsIf3CmtsCmCtrlCmdMacAddr"), Syntax.OCTET_STRING,
                    lambda: c.cm_ctrl.cmd_mac, set=set_mac, validate=check_mac))
    tree.add(Scalar(oid("docsIf3CmtsCmCtrlCmdMuteUsChId"), Syntax.UNSIGNED32,
                    lambda: c.cm_ctrl.mute_us_ch, set=set_field("mute_us_ch")))
    tree.add(Scalar(oid("docsIf3CmtsCmCtrlCmdMuteInterval"), Syntax.UNSIGNED32,
                    lambda: c.cm_ctrl.mute_interval, set=set_field("mute_interval")))
    tree.add(Scalar(oid("docsIf3CmtsCmCtrlCmdDisableForwarding"), Syntax.INTEGER,
                    lambda: c.cm_ctrl.disable_forwarding, set=set_field("disable_forwarding"),
                    validate=check_truth))
    tree.add(Scalar(oid("docsIf3CmtsCmCtrlCmdCommit"), Syntax.INTEGER, lambda: c.cm_ctrl.commit,
                    set=commit, validate=check_commit))


def add_bpi2(tree: MibTree, c: Cmts) -> None:
    """BPI+ auth table (read-only view of registered BPI+ modems, plus CmReset) and the
    provisioned-certificate table (the hotlist) with RowStatus creation."""
    cache: dict[str, Any] = {"version": -1, "rows": []}

    def auth_rows() -> list[OID]:
        if cache["version"] != c.version:
            rows = sorted((e.modem.md_if, *e.mac) for e in c.entries.values()
                          if e.modem.bpi_plus)
            cache["rows"], cache["version"] = rows, c.version
        rows_: list[OID] = cache["rows"]
        return rows_

    def auth_entry(index: OID) -> CmEntry:
        return c.entries[mac_of(index)]

    def cert_valid(index: OID) -> int:
        e = auth_entry(index)
        if e.phase is Phase.REJECTED:
            return int(BpiCertValid.INVALID_CM_UNTRUSTED)
        return int(BpiCertValid.VALID_CM_CHAINED if e.online else BpiCertValid.UNKNOWN)

    def auth_exists(index: OID) -> bool:
        return len(index) == 7 and all(x <= 255 for x in index[1:]) and \
            mac_of(index) in c.entries and c.entries[mac_of(index)].modem.md_if == index[0]

    def check_reset(index: OID, v: Any) -> None:
        if v not in (1, 2, 3, 4):
            raise SetError(ErrorStatus.wrongValue, "noResetRequested(1)..invalidateTeks(4)")

    tree.add(Table(BPI2_AUTH_ENTRY, [
        Column(col("docsBpi2CmtsAuthCmReset"), Syntax.INTEGER, lambda i: 1,
               set=lambda i, v: c.reauthorize(mac_of(i)) if v in (2, 3, 4) else None,
               validate=check_reset),
        Column(col("docsBpi2CmtsAuthBpkmCmCertValid"), Syntax.INTEGER, cert_valid),
        Column(col("docsBpi2CmtsAuthBpkmCmCert"), Syntax.OCTET_STRING,
               lambda i: auth_entry(i).modem.cert),
    ], auth_rows, exists=auth_exists, index_len=7))

    trust, source = col("docsBpi2CmtsProvisionedCmCertTrust"), col(
        "docsBpi2CmtsProvisionedCmCertSource")
    status, cert = col("docsBpi2CmtsProvisionedCmCertStatus"), col("docsBpi2CmtsProvisionedCmCert")

    def prov(index: OID) -> Any:
        return c.hotlist[bytes(index)]

    def check_status(index: OID, v: Any) -> None:
        check_mac_index(index)
        exists = bytes(index) in c.hotlist
        if v == ROW_CREATE_AND_WAIT:
            raise SetError(ErrorStatus.wrongValue, "createAndWait is not supported")
        if v == ROW_CREATE_AND_GO and exists:
            raise SetError(ErrorStatus.inconsistentValue, "row exists")
        if v not in (ROW_ACTIVE, ROW_CREATE_AND_GO, ROW_DESTROY):
            raise SetError(ErrorStatus.wrongValue, "RowStatus value not allowed")
        if v == ROW_ACTIVE and not exists:
            raise SetError(ErrorStatus.inconsistentValue, "row does not exist")

    def set_status(index: OID, v: Any) -> None:
        if v == ROW_DESTROY:
            c.hotlist_remove(bytes(index))

    def create(index: OID, values: dict[int, Any]) -> None:
        if values.get(status) == ROW_DESTROY:
            return
        # Cert and Trust may come in the same PDU; DEFVAL trust is untrusted(2).
        c.hotlist_add(bytes(index), cert=values.get(cert, b""), trust=values.get(trust, 2),
                      source=1)

    def check_trust(index: OID, v: Any) -> None:
        if v not in (1, 2):
            raise SetError(ErrorStatus.wrongValue, "trusted(1) or untrusted(2)")

    def check_cert(index: OID, v: Any) -> None:
        if len(v) > 4096:
            raise SetError(ErrorStatus.wrongLength, "certificate is at most 4096 octets")

    def set_trust(index: OID, v: Any) -> None:
        c.hotlist[bytes(index)].trust = v

    def set_cert(index: OID, v: Any) -> None:
        c.hotlist[bytes(index)].cert = v

    tree.add(Table(BPI2_PROV_CERT_ENTRY, [
        Column(trust, Syntax.INTEGER, lambda i: prov(i).trust, set=set_trust,
               validate=check_trust),
        Column(source, Syntax.INTEGER, lambda i: prov(i).source),
        Column(status, Syntax.INTEGER, lambda i: ROW_ACTIVE, set=set_status, validate=check_status,
               creates_row=True),
        Column(cert, Syntax.OCTET_STRING, lambda i: prov(i).cert or b"", set=set_cert,
               validate=check_cert),
    ], lambda: c.hotlist_macs, exists=lambda i: len(i) == 6 and all(x <= 255 for x in i)
        and bytes(i) in c.hotlist, create=create, index_len=6))
