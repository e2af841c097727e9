"""The engine's typed results (enforcer/engine/contract.py) and the HTTP response models
that declare them (enforcer/api/responses.py) are written twice, once per layer: this
keeps their field names equal, so neither can drift from the other unnoticed."""

from __future__ import annotations

from typing import Any, is_typeddict

import pytest
from pydantic import BaseModel

from enforcer.api import responses as r
from enforcer.engine import contract as c

PAIRS: list[tuple[Any, type[BaseModel]]] = [
    (c.Sighting, r.Sighting),
    (c.PlanRow, r.PlanRow),
    (c.PreviewRow, r.PreviewRow),
    (c.DeviceRow, r.DeviceView),
    (c.TrustResult, r.TrustResult),
    (c.ReconcileSummary, r.ReconcileResult),
    (c.InstanceStatus, r.InstanceView),
    (c.LeaseStatus, r.LeaseView),
    (c.ClusterStatus, r.ClusterStatus),
]


@pytest.mark.parametrize(("engine", "http"), PAIRS, ids=lambda x: x.__name__)
def test_engine_result_and_response_model_name_the_same_fields(
        engine: Any, http: type[BaseModel]) -> None:
    assert is_typeddict(engine)
    keys = set(engine.__required_keys__) | set(engine.__optional_keys__)
    fields = {f.alias or name for name, f in http.model_fields.items()}  # "self" is self_
    assert keys == fields, (engine.__name__, http.__name__)
