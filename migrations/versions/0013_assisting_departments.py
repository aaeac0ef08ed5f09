"""departments assisting with a case (协办) beside the one holding it (主办)

Revision ID: 0013_assisting_departments
Revises: 0012_extension_requests
Create Date: 2026-12-04 20:10:00

One row per assisting department and case: what the desk asked of it, and its reply once its
part is done. Nothing to fill in: no case was co-handled before this revision.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0013_assisting_departments"
down_revision: Union[str, Sequence[str], None] = "0012_extension_requests"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "case_assists",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("department_code", sa.String(length=40), nullable=False),
        sa.Column("task", sa.Text(), nullable=False),
        sa.Column("reply", sa.Text(), nullable=True),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replied_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_assists_case_id_cases")
        ),
        sa.ForeignKeyConstraint(
            ["department_code"],
            ["departments.code"],
            name=op.f("fk_case_assists_department_code_departments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_assists")),
        sa.UniqueConstraint("case_id", "department_code", name=op.f("uq_case_assists_case_id")),
    )
    with op.batch_alter_table("case_assists", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_assists_case_id"), ["case_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_case_assists_department_code"), ["department_code"], unique=False
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("case_assists", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_assists_department_code"))
        batch_op.drop_index(batch_op.f("ix_case_assists_case_id"))
    op.drop_table("case_assists")
