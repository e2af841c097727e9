"""The lab's state model: modems, CMTSes and a headend controller.

One state model per device; its SNMP view (``lab.views``) and its SSH CLI (``lab.ssh``)
both read and change it, so what the CLI shows and what SNMP answers always agree.
"""

from lab.model.cmts import CmEntry, Cmts, DenyListFull
from lab.model.fleet import Fleet
from lab.model.headend import Dhct, Headend
from lab.model.modem import Modem, Phase, Timings
from lab.model.states import CmtsRegState, DocsIfStatus

__all__ = [
    "CmEntry",
    "Cmts",
    "CmtsRegState",
    "DenyListFull",
    "Dhct",
    "DocsIfStatus",
    "Fleet",
    "Headend",
    "Modem",
    "Phase",
    "Timings",
]
