"""the knowledge base: articles and their revisions, the case's suggested article, speech heard

Revision ID: 0007_knowledge_base
Revises: 0006_call_endings
Create Date: 2026-12-03 18:10:00

The articles themselves are loaded by `flask init` (knowledge.store.seed_articles), not here:
a migration moves no data it does not own. `cases.article_id` is a plain indexed column: a case
may name an article that is later retired, and cases opened before the seed exist.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0007_knowledge_base"
down_revision: Union[str, Sequence[str], None] = "0006_call_endings"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "knowledge_articles",
        sa.Column("id", sa.String(length=80), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("department", sa.String(length=40), nullable=True),
        sa.Column("reviewed", sa.Date(), nullable=False),
        sa.Column("texts", sa.JSON(), nullable=False),
        sa.Column("retired", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=80), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_articles")),
    )
    with op.batch_alter_table("knowledge_articles", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_knowledge_articles_department"), ["department"], unique=False
        )
        # knowledge_version() reads max(updated_at) on every suggestion.
        batch_op.create_index(
            batch_op.f("ix_knowledge_articles_updated_at"), ["updated_at"], unique=False
        )

    op.create_table(
        "knowledge_revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.String(length=80), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.Column("editor", sa.String(length=80), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["knowledge_articles.id"],
            name=op.f("fk_knowledge_revisions_article_id_knowledge_articles"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_revisions")),
        sa.UniqueConstraint(
            "article_id", "revision", name=op.f("uq_knowledge_revisions_article_id")
        ),
    )

    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("article_id", sa.String(length=80), nullable=True))
        batch_op.create_index(batch_op.f("ix_cases_article_id"), ["article_id"], unique=False)

    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("speech_heard", sa.Boolean(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_column("speech_heard")

    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cases_article_id"))
        batch_op.drop_column("article_id")

    op.drop_table("knowledge_revisions")
    with op.batch_alter_table("knowledge_articles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_knowledge_articles_updated_at"))
        batch_op.drop_index(batch_op.f("ix_knowledge_articles_department"))
    op.drop_table("knowledge_articles")
