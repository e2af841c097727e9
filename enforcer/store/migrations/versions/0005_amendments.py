"""orders.layers (an amended order's own layer list) and lift_requests.amendment (a
downgrade waiting for consent)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("layers", sa.JSON(), nullable=True))
    with op.batch_alter_table("lift_requests") as batch:
        batch.add_column(sa.Column("amendment", sa.JSON(), nullable=True))
    op.create_index("ix_order_devices_ecm_mac", "order_devices", ["ecm_mac"])


def downgrade() -> None:
    op.drop_index("ix_order_devices_ecm_mac", "order_devices")
    with op.batch_alter_table("lift_requests") as batch:
        batch.drop_column("amendment")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("layers")
