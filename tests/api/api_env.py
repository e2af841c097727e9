"""Helpers for the API tests: signed webhook requests, tokens per role, audit and metric
look-ups."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import httpx
from prometheus_client import CollectorRegistry

from enforcer.api.signature import sign
from enforcer.api.testing import FakeClock, RecordingEngine
from enforcer.config import Settings
from enforcer.store import Store

KEY_OLD, KEY_NEW = b"o" * 32, b"n" * 32
SECRETS = ["whsec_" + base64.b64encode(k).decode() for k in (KEY_NEW, KEY_OLD)]


def order_body(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "ticket": "ESC-42", "account": "acct-9", "reason": "fraud", "node": "node-a",
        "devices": [{"mac": "0011.2233.4455", "kind": "cable_modem"}],
        "evidence": [{"kind": "call_recording", "ref": "https://rec/1", "offset": "00:01:02"},
                     "https://tickets/ESC-42"],
    }
    body.update(over)
    return body


@dataclass
class Env:
    client: httpx.AsyncClient
    store: Store
    engine: RecordingEngine
    clock: FakeClock
    registry: CollectorRegistry
    settings: Settings
    tokens: dict[str, str]

    def signed(self, body: dict[str, Any] | bytes, *, msg_id: str = "msg_1",
               key: bytes = KEY_NEW, ts: int | None = None) -> tuple[bytes, dict[str, str]]:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        stamp = str(ts if ts is not None else int(self.clock().timestamp()))
        return raw, {"webhook-id": msg_id, "webhook-timestamp": stamp,
                     "webhook-signature": sign(key, msg_id, stamp, raw),
                     "content-type": "application/json"}

    async def hook(self, body: dict[str, Any] | bytes, **kw: Any) -> httpx.Response:
        raw, headers = self.signed(body, **kw)
        return await self.client.post("/v1/hooks/escalation", content=raw, headers=headers)

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def refusals(self) -> list[dict[str, Any]]:
        return [e.payload for e in self.store.audit_entries(action="request.refused")]

    def sample(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        return self.registry.get_sample_value(name, labels or {})


def make_settings(**api: Any) -> Settings:
    return Settings(webhook={"secrets": SECRETS},
                    api={"intake_rate_per_s": 1000, "intake_burst": 1000, **api})


