"""The real app less one thing: its first webhook's call row is discarded, not written.

Only for `bench/webhooks.py --breakdown`: run beside the real app, it shows what the call's
write costs under load, apart from everything else the webhook does (Flask or the voice
entry's lane, the form, the signature check, the TwiML). The app is built as it is served; only
its database's group commit is replaced, by one that writes nothing. Never serve it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Executable

from hotline.db import GroupCommit
from hotline.wiring import wiring_of
from hotline.wsgi import app


class DiscardingGroupCommit(GroupCommit):
    """A group commit that takes every write and keeps none."""

    def execute(self, statement: Executable, parameters: Mapping[str, Any]) -> None:
        """Discard the write."""

    def submit(self, statement: Executable, parameters: Mapping[str, Any], *, label: str) -> None:
        """Discard the write."""


database = wiring_of(app).database
database.group_commit.close()
database.group_commit = DiscardingGroupCommit(database.engine)

__all__ = ["app"]
