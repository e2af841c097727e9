"""Sequences the consent model (test_consent_model.py) found failing, replayed step by
step so they stay fixed whatever Hypothesis draws next."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from enforcer.domain.model import Reason
from tests.unit import test_consent_model as cm


class _Drawn:
    """Stands in for Hypothesis's ``data``: every draw is the given order id."""

    def __init__(self, value: str) -> None:
        self.value = value

    def draw(self, strategy: Any) -> str:
        return self.value


def test_an_upgrade_re_blocks_what_a_consented_downgrade_released() -> None:
    """Order A's consented downgrade (footprint -> node) released its blocks outside the
    node; a later upgrade back to footprint (with a downgrade part waiting for consent)
    must block them again: the removed target is planned and pushed again."""
    with tempfile.TemporaryDirectory() as d:
        inv = Path(d) / "inventory.yaml"
        inv.write_text(cm.INVENTORY)
        cm.ConsentMachine.inv_path = inv
        m = cm.ConsentMachine()
        m1, m2, m3 = cm.MACS
        m.file_order(footprint=True, macs={m1}, node="n2", reason=Reason.FRAUD)
        a = next(iter(m.model))
        m.amend(add=m2, data=_Drawn(a), drop=True, reason=Reason.NON_PAYMENT,
                widen=True)
        m.forwards_only_with_consent()
        m.decide(data=_Drawn(a), who="bob", yes=True)
        m.file_order(footprint=True, macs={m3, m1}, node="n2", reason=Reason.FRAUD)
        b = list(m.model)[1]
        m.decide(data=_Drawn(a), who="carol", yes=True)
        m.forwards_only_with_consent()  # approved: A is a node ban on n2 now
        m.request_lift(data=_Drawn(b))
        m.amend(add=m1, data=_Drawn(a), drop=True,
                reason=Reason.THREAT_OF_VIOLENCE, widen=True)
        m.forwards_only_with_consent()  # footprint again: m2 blocked on c1 again
        m.teardown()
