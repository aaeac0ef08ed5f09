"""how each call ended, the desk's follow-up of calls without a report, E.164 phone numbers

Revision ID: 0006_call_endings
Revises: 0006_throttles (chained after the other 0006 so `upgrade head` has one head; the lead may re-chain)
Create Date: 2026-12-03 15:10:00

Phone numbers already stored are rewritten in E.164 here, once (a keyed callback number was
kept as `13912345678`), so every later comparison is an exact, indexed one. A number without
a country code is read in `PHONE_DEFAULT_REGION` (CN by default), as the app reads it; text
that is no phone number is left as it was.
"""

import os
from typing import Sequence, Union

import phonenumbers
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006_call_endings"
down_revision: Union[str, Sequence[str], None] = "0006_throttles"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def _e164(raw: str | None, region: str) -> str | None:
    try:
        parsed = phonenumbers.parse((raw or "").strip(), region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _normalise(table: str, column: str, region: str) -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(f"SELECT id, {column} FROM {table} WHERE {column} IS NOT NULL")
    ).all()
    for row_id, raw in rows:
        number = _e164(raw, region)
        if number is not None and number != raw:
            bind.execute(
                sa.text(f"UPDATE {table} SET {column} = :number WHERE id = :id"),
                {"number": number, "id": row_id},
            )


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("duration_seconds", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("ending", sa.String(length=30), nullable=True))
        batch_op.add_column(sa.Column("served", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("follow_up", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("followed_up_by", sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column("followed_up_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("live_decoding", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.create_index(batch_op.f("ix_calls_ended_at"), ["ended_at"], unique=False)

    region = (os.environ.get("PHONE_DEFAULT_REGION") or "CN").strip().upper()
    _normalise("calls", "callback_number", region)
    _normalise("cases", "caller_number", region)


def downgrade() -> None:
    """Downgrade schema (numbers already rewritten stay in E.164)."""
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_calls_ended_at"))
        batch_op.drop_column("live_decoding")
        batch_op.drop_column("followed_up_at")
        batch_op.drop_column("followed_up_by")
        batch_op.drop_column("follow_up")
        batch_op.drop_column("served")
        batch_op.drop_column("ending")
        batch_op.drop_column("duration_seconds")
        batch_op.drop_column("ended_at")
