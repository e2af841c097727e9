"""device_state.host_key: the SSH host key line pinned by `enforcer devices trust`

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("device_state") as batch:
        batch.add_column(sa.Column("host_key", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("device_state") as batch:
        batch.drop_column("host_key")
