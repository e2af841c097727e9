"""SNMP views of the lab's state model, one builder per dialect (a registry by name)."""

from __future__ import annotations

from collections.abc import Callable

from enforcer.mib import oid
from lab.model.cmts import Cmts
from lab.snmp.mibtree import MibTree
from lab.views import arris, casa, cisco, common

Builder = Callable[[Cmts, MibTree], None]


def _generic(c: Cmts, tree: MibTree) -> None:
    common.add_system(tree, c, "Generic DOCSIS 3.0 CMTS (lab)", oid("enforcerLabGenericCmts"))
    common.add_docs_if(tree, c)
    common.add_docs_if3(tree, c)
    common.add_cm_ctrl(tree, c)
    common.add_bpi2(tree, c)


def builders() -> dict[str, Builder]:
    """Dialect name -> function adding that dialect's MIB view to a tree."""
    return {
        "cisco-cbr8": cisco.build,
        "arris-e6000": arris.build,
        "casa-c100g": casa.build,
        "docsis3-generic": _generic,
    }


def build_tree(c: Cmts) -> MibTree:
    try:
        build = builders()[c.dialect]
    except KeyError:
        raise ValueError(f"no SNMP view for dialect {c.dialect!r}") from None
    tree = MibTree()
    build(c, tree)
    return tree
