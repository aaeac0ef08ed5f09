"""throttle failures per (subject, address) pair and server-side staff sessions

Revision ID: 0006_throttles
Revises: 0005
Create Date: 2026-12-03 15:10:00.000000

"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006_throttles"
down_revision: Union[str, Sequence[str], None] = "0005"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    # Written to match the models, then checked with autogenerate. login_attempts held only
    # failures of the last hour, counted per account or per address (the lock-out that let
    # anyone lock anyone out); they are not carried over: the new throttle starts afresh.
    op.create_table(
        "throttle_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("subject", sa.String(length=80), nullable=False),
        sa.Column("remote_addr", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_throttle_failures")),
    )
    with op.batch_alter_table("throttle_failures", schema=None) as batch_op:
        batch_op.create_index(
            "ix_throttle_failures_pair",
            ["kind", "subject", "remote_addr", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_throttle_failures_address", ["kind", "remote_addr", "created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_throttle_failures_created_at"), ["created_at"], unique=False
        )

    # Every session signed in before this revision ends: their cookies carry an account id,
    # not a session token, and are no longer believed.
    op.create_table(
        "staff_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_staff_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_staff_sessions_token_hash")),
    )
    with op.batch_alter_table("staff_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_staff_sessions_user_id"), ["user_id"], unique=False)

    with op.batch_alter_table("login_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_login_attempts_username"))
        batch_op.drop_index(batch_op.f("ix_login_attempts_remote_addr"))
        batch_op.drop_index(batch_op.f("ix_login_attempts_created_at"))
    op.drop_table("login_attempts")


def downgrade() -> None:
    """Downgrade schema."""
    op.create_table(
        "login_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=80), nullable=False),
        sa.Column("remote_addr", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_attempts")),
    )
    with op.batch_alter_table("login_attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_login_attempts_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_login_attempts_remote_addr"), ["remote_addr"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_login_attempts_username"), ["username"], unique=False)

    with op.batch_alter_table("staff_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_sessions_user_id"))
    op.drop_table("staff_sessions")

    with op.batch_alter_table("throttle_failures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_throttle_failures_created_at"))
        batch_op.drop_index("ix_throttle_failures_address")
        batch_op.drop_index("ix_throttle_failures_pair")
    op.drop_table("throttle_failures")
