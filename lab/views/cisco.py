"""Cisco cBR-8 view: standard MIBs plus CISCO-DOCS-EXT-MIB (docs/docsis.md section 2).

- cdxCmCpeResetNow.<mac> = true(1) kicks the modem
- cdxCmCpeDeleteNow.<mac> = true(1) removes it from the CMTS tables; a repeat finds no
  row (v1 noSuchName, v2c noCreation: already gone)
- cdxCmtsCmStatusValue.<status index>
"""

from __future__ import annotations

from typing import Any

from enforcer.mib import oid
from lab.model.cmts import Cmts
from lab.model.render import cdx_status
from lab.snmp.mibtree import OID, Column, ErrorStatus, MibTree, SetError, Syntax, Table
from lab.views import common

CDX_CM_CPE_ENTRY: OID = oid("cdxCmCpeEntry")
CDX_CMTS_CM_STATUS_ENTRY: OID = oid("cdxCmtsCmStatusEntry")
SYS_OBJECT_ID: OID = oid("enforcerLabCbr8")  # a cBR-8-like sysObjectID (lab)


def build(c: Cmts, tree: MibTree) -> None:
    common.add_system(tree, c, "Cisco IOS XE Software, cBR-8 (lab simulation)", SYS_OBJECT_ID)
    common.add_docs_if(tree, c)
    common.add_docs_if3(tree, c)
    common.add_cm_ctrl(tree, c)
    common.add_bpi2(tree, c)

    def check_truth(index: OID, v: Any) -> None:
        if v not in (1, 2):
            raise SetError(ErrorStatus.wrongValue, "TruthValue is true(1) or false(2)")

    def reset(index: OID, v: Any) -> None:
        if v == 1:
            c.reset(bytes(index))

    def delete(index: OID, v: Any) -> None:
        if v == 1:
            c.delete(bytes(index))

    tree.add(Table(CDX_CM_CPE_ENTRY, [
        Column(common.col("cdxCmCpeResetNow"), Syntax.INTEGER, lambda i: 2, set=reset,
               validate=check_truth),
        Column(common.col("cdxCmCpeDeleteNow"), Syntax.INTEGER, lambda i: 2, set=delete,
               validate=check_truth),
    ], lambda: c.macs, exists=lambda i: len(i) == 6 and all(x <= 255 for x in i)
        and bytes(i) in c.entries, index_len=6))
    tree.add(Table(CDX_CMTS_CM_STATUS_ENTRY, [
        Column(common.col("cdxCmtsCmStatusValue"), Syntax.INTEGER,
               lambda i: cdx_status(c.by_status[i[0]])),
    ], lambda: c.status_indexes, exists=lambda i: len(i) == 1 and i[0] in c.by_status,
        index_len=1))
