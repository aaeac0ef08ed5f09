"""One at a time: a transaction-scoped lock on a name, for decisions that read, then write
(two parts of one text, two posts of one form must not both open a case).

PostgreSQL: an advisory lock held until the transaction ends. SQLite writes one transaction at
a time already (`hotline.db`'s write gate), so nothing is needed there.
"""

from __future__ import annotations

import zlib

from sqlalchemy import text
from sqlalchemy.orm import Session


def one_at_a_time(session: Session, *, name: str) -> None:
    """Wait for, then hold until the transaction ends, the lock on `name`."""
    if session.connection().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": zlib.crc32(name.encode())}
        )
