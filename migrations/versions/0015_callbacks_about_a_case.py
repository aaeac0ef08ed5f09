"""a callback task may be about a case

Revision ID: 0015_callbacks_about_a_case
Revises: 0014_admin_audit_and_reset_links
Create Date: 2026-12-04 23:00:00

The dispatch desk asks for a call back from a case's page: the task keeps the case, so the
operator who calls sees what it is about and the case page links to its task. Tasks made by
the queue (a caller who hung up, asked, found no seat) have none. Nothing to fill in.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0015_callbacks_about_a_case"
down_revision: Union[str, Sequence[str], None] = "0014_admin_audit_and_reset_links"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("callback_tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("case_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_callback_tasks_case_id"), ["case_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_callback_tasks_case_id_cases"), "cases", ["case_id"], ["id"]
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("callback_tasks", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_callback_tasks_case_id_cases"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_callback_tasks_case_id"))
        batch_op.drop_column("case_id")
