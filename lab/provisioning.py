"""The lab as the operator's provisioning system: it knows which devices belong to which
account, keeps a full export of those links (``links.csv`` in the lab's state
directory, rewritten on every change), and, when told where the enforcer listens,
delivers signed ``device.linked`` / ``device.unlinked`` events (Standard Webhooks) as a
real provisioning system would.

``provision`` adds a new device to the running fleet (a modem, or a set-top with its
eCM and its DHCT on the headend), brings it online, links it to the account and
delivers the event; ``deliver=False`` plays a lost event (only the export knows).
"""

from __future__ import annotations

import base64
import csv
import io
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from enforcer.api.signature import sign


@dataclass
class LinkRecord:
    account: str
    mac: str
    kind: str
    ecm_mac: str | None = None


@dataclass
class ProvisioningSystem:
    export_path: Path
    links: dict[str, LinkRecord] = field(default_factory=dict)
    target_url: str | None = None
    secret: str | None = None
    delivered: list[dict[str, Any]] = field(default_factory=list)

    def write_export(self) -> None:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["account", "mac", "kind", "ecm_mac"])
        for link in sorted(self.links.values(), key=lambda x: (x.account, x.mac)):
            w.writerow([link.account, link.mac, link.kind, link.ecm_mac or ""])
        tmp = self.export_path.with_suffix(".tmp")
        tmp.write_text(buf.getvalue())
        tmp.replace(self.export_path)  # readers never see a half-written export

    def link(self, rec: LinkRecord) -> None:
        self.links[rec.mac] = rec
        self.write_export()

    def unlink(self, mac: str) -> LinkRecord | None:
        rec = self.links.pop(mac, None)
        self.write_export()
        return rec

    async def deliver(self, event: str, rec: LinkRecord) -> dict[str, Any]:
        """Send the signed event to the enforcer (if configured); the answer."""
        if self.target_url is None or self.secret is None:
            return {"delivered": False, "why": "no enforcer target configured"}
        body = json.dumps({"type": event, "data": {
            "account": rec.account, "mac": rec.mac, "kind": rec.kind,
            "ecm_mac": rec.ecm_mac, "at": datetime.now(UTC).isoformat()}}).encode()
        wid, ts = f"msg_lab_{uuid.uuid4().hex}", int(time.time())
        key = base64.b64decode(self.secret.removeprefix("whsec_"))
        headers = {"webhook-id": wid, "webhook-timestamp": str(ts),
                   "webhook-signature": sign(key, wid, ts, body),
                   "content-type": "application/json"}
        url = self.target_url.rstrip("/") + "/v1/hooks/provisioning"
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                r = await client.post(url, content=body, headers=headers)
        except httpx.HTTPError as e:
            out = {"delivered": False, "why": f"{type(e).__name__}: {e}"}
        else:
            out = {"delivered": r.status_code < 300, "status": r.status_code,
                   "answer": r.json() if r.headers.get("content-type", "").startswith(
                       "application/json") else r.text[:500], "webhook_id": wid}
        self.delivered.append({"event": event, "mac": rec.mac, **out})
        return out
