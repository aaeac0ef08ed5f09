"""the administrators' audit log, and one-time password-reset links

Revision ID: 0014_admin_audit_and_reset_links
Revises: 0013_assisting_departments
Create Date: 2026-12-04 20:20:00

`admin_events` keeps who changed which part of the set-up, from what to what. A staff account
keeps the hash of a reset link's token and when the link stops working. Nothing to fill in.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0014_admin_audit_and_reset_links"
down_revision: Union[str, Sequence[str], None] = "0013_assisting_departments"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "admin_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("target", sa.String(length=120), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_events")),
    )
    with op.batch_alter_table("admin_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_admin_events_action"), ["action"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_admin_events_created_at"), ["created_at"], unique=False
        )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reset_token_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("reset_expires_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_users_reset_token_hash"), ["reset_token_hash"]
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_users_reset_token_hash"), type_="unique")
        batch_op.drop_column("reset_expires_at")
        batch_op.drop_column("reset_token_hash")
    with op.batch_alter_table("admin_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_admin_events_created_at"))
        batch_op.drop_index(batch_op.f("ix_admin_events_action"))
    op.drop_table("admin_events")
