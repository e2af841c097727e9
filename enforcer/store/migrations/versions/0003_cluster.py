"""instances, device leases and per-device order scans (several instances, one database)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "instances",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("url", sa.String(length=300), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_instances_heartbeat_at", "instances", ["heartbeat_at"])
    op.create_table(
        "device_leases",
        sa.Column("device", sa.String(length=200), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("acquired_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("device"),
    )
    op.create_table(
        "order_scans",
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("device", sa.String(length=200), nullable=False),
        sa.Column("phase", sa.String(length=10), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("scanned_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("order_id", "device"),
    )
    op.create_index("ix_order_scans_device_phase", "order_scans", ["device", "phase", "ok"])
    op.create_index("ix_orders_updated_at", "orders", ["updated_at"])
    op.create_index("ix_orders_node", "orders", ["node"])
    op.create_index("ix_targets_device", "targets", ["device", "state"])


def downgrade() -> None:
    op.drop_index("ix_targets_device", table_name="targets")
    op.drop_index("ix_orders_node", table_name="orders")
    op.drop_index("ix_orders_updated_at", table_name="orders")
    op.drop_index("ix_order_scans_device_phase", table_name="order_scans")
    op.drop_table("order_scans")
    op.drop_table("device_leases")
    op.drop_index("ix_instances_heartbeat_at", table_name="instances")
    op.drop_table("instances")
