"""Indexes for the device loops' passes: orders by scope (a CMTS's full pass reads its
own nodes' orders, the footprint ones and those it holds, not every order) and failed
scans by time (the poller's stale-scan check, every second)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_orders_scope", "orders", ["scope"])
    op.create_index("ix_order_scans_failed", "order_scans", ["ok", "scanned_at"])


def downgrade() -> None:
    op.drop_index("ix_order_scans_failed", table_name="order_scans")
    op.drop_index("ix_orders_scope", table_name="orders")
