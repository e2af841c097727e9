"""What the engine remembers about each device: pinned SSH host key, reachability."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from enforcer.store import convert
from enforcer.store import schema as s
from enforcer.store.base import StoreBase
from enforcer.store.records import DeviceStateRecord

_UNSET: object = object()


class DevicesMixin(StoreBase):
    def set_device_state(self, name: str, *, actor: str = "engine",
                         reachable: bool | object | None = _UNSET,
                         last_seen: datetime | object | None = _UNSET,
                         last_error: str | object | None = _UNSET,
                         host_key_fingerprint: str | object | None = _UNSET,
                         host_key: str | object | None = _UNSET,
                         action: str = "device.state",
                         ) -> DeviceStateRecord:
        """Create or update a device's row; only the fields given change. Audited as
        ``device.state`` when reachability, error or pinned host key change (a bare
        ``last_seen`` refresh is not audited, so sweeps do not flood the log).
        ``action`` names the audit entry (``device.trusted`` for a host key pin)."""
        given = {k: v for k, v in {
            "reachable": reachable, "last_seen": last_seen, "last_error": last_error,
            "host_key_fingerprint": host_key_fingerprint,
            "host_key": host_key}.items() if v is not _UNSET}
        with self.write_session() as session:
            row = session.get(s.DeviceState, name)
            now = self.clock()
            if row is None:
                row = s.DeviceState(name=name, updated_at=now)
                session.add(row)
            changed = {k: v for k, v in given.items() if getattr(row, k) != v}
            for k, v in given.items():
                setattr(row, k, v)
            row.updated_at = now
            session.flush()
            notable = {k: v for k, v in changed.items() if k != "last_seen"}
            if notable:
                self.audit(session, actor, action, None, {"device": name, **notable})
            return convert.device_state(row)

    def get_device_state(self, name: str) -> DeviceStateRecord | None:
        with self.read_session() as session:
            row = session.get(s.DeviceState, name)
            return convert.device_state(row) if row else None

    def all_device_states(self) -> list[DeviceStateRecord]:
        with self.read_session() as session:
            rows = session.scalars(select(s.DeviceState).order_by(s.DeviceState.name))
            return [convert.device_state(r) for r in rows]
