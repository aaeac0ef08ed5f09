"""requests for more time (延期申请) waiting for the desk

Revision ID: 0012_extension_requests
Revises: 0011_work_order_text
Create Date: 2026-12-04 20:05:00

A case keeps the deadline its holding department asked for, and why, until the desk approves
or refuses it (the timeline keeps every request and ruling). Nothing to fill in: no request
was made before this revision.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0012_extension_requests"
down_revision: Union[str, Sequence[str], None] = "0011_work_order_text"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("extension_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("extension_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("extension_reason")
        batch_op.drop_column("extension_until")
