"""ARRIS E6000 / C4 view: standard DOCS-IF, DOCS-IF3 (incl. CM-CTRL) plus CADANT-CMTS-MAC-MIB
(docs/docsis.md section 2).

- cadCmDenyRowStatus.<mac>: createAndGo(4) adds, destroy(6) removes; capacity per device
  (1000 on C4); effective after a reset.
- cadCmDenyAttempts.<mac>.<ifIndex>
- cadMacResetCMMacAddress.0, cadMacDeleteMacAddress.0 (set to the MAC)
- cadIfCmtsCmStatusValue.<mac>
"""

from __future__ import annotations

from typing import Any

from enforcer.mib import oid
from lab.model.cmts import Cmts
from lab.model.render import cad_status
from lab.snmp.mibtree import OID, Column, ErrorStatus, MibTree, Scalar, SetError, Syntax, Table
from lab.views import common

CAD_CM_STATUS_ENTRY: OID = oid("cadIfCmtsCmStatusEntry")
CAD_DENY_ENTRY: OID = oid("cadCmDenyEntry")
CAD_DENY_ATTEMPTS_ENTRY: OID = oid("cadCmDenyStatusEntry")
CAD_RESET_MAC: OID = oid("cadMacResetCMMacAddress")
CAD_DELETE_MAC: OID = oid("cadMacDeleteMacAddress")
SYS_OBJECT_ID: OID = oid("enforcerLabE6000")  # ARRIS-like sysObjectID (lab)
DENY_ROW_STATUS = common.col("cadCmDenyRowStatus")


def build(c: Cmts, tree: MibTree) -> None:
    common.add_system(tree, c, "ARRIS E6000 CER (lab simulation)", SYS_OBJECT_ID)
    common.add_docs_if(tree, c)
    common.add_docs_if3(tree, c)
    # docsIf3CmtsCmCtrl is mandatory for a DOCSIS 3.0 CMTS (docs/docsis.md section 1).
    common.add_cm_ctrl(tree, c)

    def is_mac(i: OID) -> bool:
        return len(i) == 6 and all(x <= 255 for x in i)

    tree.add(Table(CAD_CM_STATUS_ENTRY, [
        Column(common.col("cadIfCmtsCmStatusValue"), Syntax.INTEGER,
               lambda i: cad_status(c.entries[bytes(i)])),
    ], lambda: c.macs, exists=lambda i: is_mac(i) and bytes(i) in c.entries, index_len=6))

    def check_status(index: OID, v: Any) -> None:
        common.check_mac_index(index)
        exists = bytes(index) in c.deny
        if v == common.ROW_CREATE_AND_GO:
            if exists:
                raise SetError(ErrorStatus.inconsistentValue, "already denied")
            if len(c.deny) >= c.deny_capacity:
                raise SetError(ErrorStatus.resourceUnavailable,
                               f"deny list full ({c.deny_capacity})")
        elif v == common.ROW_ACTIVE:
            if not exists:
                raise SetError(ErrorStatus.inconsistentValue, "no such deny entry")
        elif v != common.ROW_DESTROY:
            raise SetError(ErrorStatus.wrongValue, "createAndGo(4) or destroy(6)")

    def set_status(index: OID, v: Any) -> None:
        if v == common.ROW_DESTROY:
            c.deny_remove(bytes(index))

    def create(index: OID, values: dict[int, Any]) -> None:
        if values.get(DENY_ROW_STATUS) == common.ROW_CREATE_AND_GO:
            c.deny_add(bytes(index))

    tree.add(Table(CAD_DENY_ENTRY, [
        Column(DENY_ROW_STATUS, Syntax.INTEGER, lambda i: common.ROW_ACTIVE, set=set_status,
               validate=check_status, creates_row=True),
    ], lambda: c.deny_macs, exists=lambda i: is_mac(i) and bytes(i) in c.deny, create=create,
        index_len=6))

    cache: dict[str, Any] = {"rows": [], "key": None}

    def attempt_rows() -> list[OID]:
        key = tuple((m, tuple(sorted(r.attempts.items()))) for m, r in c.deny.items())
        if cache["key"] != key:
            cache["rows"] = sorted((*m, ifx) for m, r in c.deny.items() for ifx in r.attempts)
            cache["key"] = key
        rows: list[OID] = cache["rows"]
        return rows

    def attempts(i: OID) -> int:
        return c.deny[bytes(i[:6])].attempts.get(i[6], 0)

    tree.add(Table(CAD_DENY_ATTEMPTS_ENTRY, [
        Column(common.col("cadCmDenyAttempts"), Syntax.COUNTER32, attempts),
    ], attempt_rows, exists=lambda i: len(i) == 7 and is_mac(i[:6]) and bytes(i[:6]) in c.deny
        and i[6] in c.deny[bytes(i[:6])].attempts, index_len=7))

    def check_mac(v: Any) -> None:
        if len(v) != 6:
            raise SetError(ErrorStatus.wrongLength, "a MAC address is 6 octets")

    tree.add(Scalar(CAD_RESET_MAC, Syntax.OCTET_STRING, lambda: b"\x00" * 6,
                    set=lambda v: c.reset(bytes(v)), validate=check_mac))
    tree.add(Scalar(CAD_DELETE_MAC, Syntax.OCTET_STRING, lambda: b"\x00" * 6,
                    set=lambda v: c.delete(bytes(v)), validate=check_mac))
