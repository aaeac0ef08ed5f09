"""when audio, text and photos were purged after the retention period

Revision ID: 0010_retention_purges
Revises: 0009_every_channel_and_merging
Create Date: 2026-12-04 03:45:50

Recordings, transcripts and attachments learn when the retention job (cases.retention) deleted
their audio, words or file; the rows themselves stay with the case. Nothing to fill in: no row
has been purged before this revision.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0010_retention_purges"
down_revision: Union[str, Sequence[str], None] = "0009_every_channel_and_merging"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

TABLES = ("attachments", "recordings", "transcripts")


def upgrade() -> None:
    """Upgrade schema."""
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    for table in reversed(TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("purged_at")
