"""the work order (诉求内容): the problem in the desk's words

Revision ID: 0011_work_order_text
Revises: 0010_retention_purges
Create Date: 2026-12-04 19:45:00

Cases learn the text the desk writes while listening to a call (or the operator's summary at
a seat). Cases opened at a seat before this revision kept that summary only in their
`opened_at_seat` event; it is copied into the new column, so every work order written so far
is where departments now read it.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0011_work_order_text"
down_revision: Union[str, Sequence[str], None] = "0010_retention_purges"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("work_order", sa.Text(), nullable=True))
    cases = sa.table("cases", sa.column("id", sa.Integer), sa.column("work_order", sa.Text))
    events = sa.table(
        "case_events",
        sa.column("case_id", sa.Integer),
        sa.column("kind", sa.String),
        sa.column("data", sa.JSON),
    )
    connection = op.get_bind()
    written = connection.execute(
        sa.select(events.c.case_id, events.c.data).where(events.c.kind == "opened_at_seat")
    ).all()
    for case_id, data in written:
        summary = (data or {}).get("summary")
        if summary:
            connection.execute(
                sa.update(cases).where(cases.c.id == case_id).values(work_order=summary)
            )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("work_order")
