"""reports from every channel and merged reports

Revision ID: 0009_every_channel_and_merging
Revises: 0008_seats_queue_callbacks
Create Date: 2026-12-04 02:37:22

Cases learn how they came in (voice, SMS, web, Open311), a written report's words and place,
and 并单: the case a repeat report joined and how many people reported a problem. Cases from
before are voice cases with one reporter. New tables: texts in, opt-outs, attachments, phone
verifications and Open311 keys.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0009_every_channel_and_merging"
down_revision: Union[str, Sequence[str], None] = "0008_seats_queue_callbacks"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "open311_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_open311_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_open311_keys_key_hash")),
        sa.UniqueConstraint("name", name=op.f("uq_open311_keys_name")),
    )
    op.create_table(
        "phone_verifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("code_hash", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_phone_verifications")),
    )
    with op.batch_alter_table("phone_verifications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_phone_verifications_number"), ["number"], unique=False)

    op.create_table(
        "text_opt_outs",
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("opted_out_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_text_opt_outs")),
    )
    op.create_table(
        "attachments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("content_type", sa.String(length=80), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("path", sa.String(length=400), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_attachments_case_id_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachments")),
    )
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_attachments_case_id"), ["case_id"], unique=False)

    op.create_table(
        "inbound_texts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_sid", sa.String(length=64), nullable=False),
        sa.Column("from_number", sa.String(length=40), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("reply_key", sa.String(length=60), nullable=True),
        sa.Column("reply_locale", sa.String(length=10), nullable=True),
        sa.Column("reply_values", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_inbound_texts_case_id_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_texts")),
        sa.UniqueConstraint("message_sid", name=op.f("uq_inbound_texts_message_sid")),
    )
    with op.batch_alter_table("inbound_texts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inbound_texts_case_id"), ["case_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_inbound_texts_from_number"), ["from_number"], unique=False
        )

    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("intake", sa.String(length=10), nullable=False, server_default="voice")
        )
        batch_op.add_column(sa.Column("report_text", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("address", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("lat", sa.Double(), nullable=True))
        batch_op.add_column(sa.Column("long", sa.Double(), nullable=True))
        batch_op.add_column(sa.Column("merged_into_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("merged_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("reporters", sa.Integer(), nullable=False, server_default="1")
        )
        batch_op.add_column(sa.Column("open311_client", sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column("open311_token", sa.String(length=40), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_cases_merged_into_id"), ["merged_into_id"], unique=False
        )
        batch_op.create_unique_constraint(batch_op.f("uq_cases_open311_token"), ["open311_token"])
        batch_op.create_foreign_key(
            batch_op.f("fk_cases_merged_into_id_cases"), "cases", ["merged_into_id"], ["id"]
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_cases_merged_into_id_cases"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("uq_cases_open311_token"), type_="unique")
        batch_op.drop_index(batch_op.f("ix_cases_merged_into_id"))
        batch_op.drop_column("open311_token")
        batch_op.drop_column("open311_client")
        batch_op.drop_column("reporters")
        batch_op.drop_column("merged_at")
        batch_op.drop_column("merged_into_id")
        batch_op.drop_column("long")
        batch_op.drop_column("lat")
        batch_op.drop_column("address")
        batch_op.drop_column("report_text")
        batch_op.drop_column("intake")

    with op.batch_alter_table("inbound_texts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbound_texts_from_number"))
        batch_op.drop_index(batch_op.f("ix_inbound_texts_case_id"))

    op.drop_table("inbound_texts")
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attachments_case_id"))

    op.drop_table("attachments")
    op.drop_table("text_opt_outs")
    with op.batch_alter_table("phone_verifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_phone_verifications_number"))

    op.drop_table("phone_verifications")
    op.drop_table("open311_keys")
