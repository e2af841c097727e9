"""Casa C100G view: standard MIBs incl. CM-CTRL, plus CASA-CABLE-CMCPE-MIB resets
(docs/docsis.md section 2). Casa has no delete and no deny object.

- casaCmtsCmCpeResetNow.<mac> = 1
- casaCmtsCmResetByMacAddr.0 = 6-octet MAC
"""

from __future__ import annotations

from typing import Any

from enforcer.mib import oid
from lab.model.cmts import Cmts
from lab.snmp.mibtree import OID, Column, ErrorStatus, MibTree, Scalar, SetError, Syntax, Table
from lab.views import common

CASA_CM_CPE_ENTRY: OID = oid("casaCmtsCmCpeEntry")
CASA_RESET_BY_MAC: OID = oid("casaCmtsCmResetByMacAddr")
SYS_OBJECT_ID: OID = oid("enforcerLabC100g")  # Casa-like sysObjectID (lab)


def build(c: Cmts, tree: MibTree) -> None:
    common.add_system(tree, c, "Casa Systems C100G (lab simulation)", SYS_OBJECT_ID)
    common.add_docs_if(tree, c)
    common.add_docs_if3(tree, c)
    common.add_cm_ctrl(tree, c)

    def check_one(index: OID, v: Any) -> None:
        if v not in (0, 1):
            raise SetError(ErrorStatus.wrongValue, "write 1 to reset")

    def reset(index: OID, v: Any) -> None:
        if v == 1:
            c.reset(bytes(index))

    tree.add(Table(CASA_CM_CPE_ENTRY, [
        Column(common.col("casaCmtsCmCpeResetNow"), Syntax.INTEGER, lambda i: 0, set=reset,
               validate=check_one),
    ], lambda: c.macs, exists=lambda i: len(i) == 6 and all(x <= 255 for x in i)
        and bytes(i) in c.entries, index_len=6))

    def check_mac(v: Any) -> None:
        if len(v) != 6:
            raise SetError(ErrorStatus.wrongLength, "a MAC address is 6 octets")

    tree.add(Scalar(CASA_RESET_BY_MAC, Syntax.OCTET_STRING, lambda: b"\x00" * 6,
                    set=lambda v: c.reset(bytes(v)), validate=check_mac))
