"""Store errors, under ``enforcer.errors.StoreError``.

    StoreError
    +-- NotFound                  no such order, target, user or lift request
    +-- Conflict                  the change contradicts what is stored
        +-- IdempotencyConflict   same webhook id, different body
"""

from __future__ import annotations

from enforcer.errors import StoreError


class NotFound(StoreError):
    """No such order, target, user or lift request."""


class Conflict(StoreError):
    """The change contradicts what is stored (duplicate name, wrong state, ...)."""


class IdempotencyConflict(Conflict):
    """A webhook id was seen before with a different body."""

    def __init__(self, webhook_id: str, order_id: str) -> None:
        self.webhook_id = webhook_id
        self.order_id = order_id
        super().__init__(
            f"webhook-id {webhook_id!r} was already used for order {order_id} "
            "with a different body"
        )
