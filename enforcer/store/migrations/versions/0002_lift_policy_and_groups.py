"""user groups; lift requests carry the policy's rule and electorate

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_groups",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("group_name", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "group_name", name="uq_user_groups_user_group"),
    )
    with op.batch_alter_table("user_groups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_groups_user_id"), ["user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_user_groups_group_name"), ["group_name"],
                              unique=False)
    with op.batch_alter_table("lift_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("on_behalf_of", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("policy_group", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("rule", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("needed", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("electorate", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("order_state_before", sa.String(length=20),
                                      nullable=True))
        batch_op.add_column(sa.Column("decided_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("lift_requests", schema=None) as batch_op:
        for col in ("decided_at", "order_state_before", "electorate", "needed", "rule",
                    "policy_group", "on_behalf_of"):
            batch_op.drop_column(col)
    with op.batch_alter_table("user_groups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_groups_group_name"))
        batch_op.drop_index(batch_op.f("ix_user_groups_user_id"))
    op.drop_table("user_groups")
