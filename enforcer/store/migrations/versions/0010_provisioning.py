"""Provisioning feed: account <-> device links (current and history) and account-level
orders (orders.all_devices)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("all_devices", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    op.create_table(
        "device_links",
        sa.Column("mac", sa.String(17), primary_key=True),
        sa.Column("account", sa.String(200), nullable=False, index=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("ecm_mac", sa.String(17), nullable=True),
        sa.Column("linked", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(10), nullable=False),
        sa.Column("event_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "link_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("account", sa.String(200), nullable=False, index=True),
        sa.Column("mac", sa.String(17), nullable=False, index=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("ecm_mac", sa.String(17), nullable=True),
        sa.Column("event", sa.String(20), nullable=False),
        sa.Column("event_at", sa.DateTime(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("source", sa.String(10), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("webhook_id", sa.String(200), nullable=True, unique=True),
        sa.Column("body_sha256", sa.String(64), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("link_events")
    op.drop_table("device_links")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("all_devices")
