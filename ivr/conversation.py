"""The words of a caller put through to a person, for the operator's page.

The streams process hears the conversation's stream (`<Start><Stream>` before `<Enqueue>`) and
writes the words so far to the caller's queue entry (`cases.seats.hear_live`), at most a few
times a second; the console reads them from there (web and streams are separate processes,
so the database is where they meet). A clear emergency in the words lights the page's banner
for the operator to transfer with one click: nothing interrupts a conversation by itself.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from cases import seats
from routing.emergency import find_emergency

log = logging.getLogger("hotline.ivr.conversation")

# How often the words are written at most (seconds): live enough to read along, and one
# small UPDATE per call per interval.
WRITE_INTERVAL = 0.4


class ConversationListener:
    """One conversation's words, written behind the decoder: the latest text wins."""

    def __init__(
        self,
        *,
        call_sid: str,
        session: Callable[[], AbstractContextManager[Session]],
        emergency_numbers: Mapping[str, str],
        executor: concurrent.futures.Executor,
    ) -> None:
        self.call_sid = call_sid
        self._session = session
        self._numbers = emergency_numbers
        self._executor = executor
        self._lock = threading.Lock()
        self._latest: str | None = None
        self._pending = False
        self._emergency: dict[str, str] | None = None

    def heard(self, text: str) -> None:
        """The words so far (on the decoding thread): queue a write unless one is pending."""
        if self._emergency is None:
            match = find_emergency(text)
            if match is not None:
                self._emergency = {"kind": match.kind, "number": self._numbers.get(match.kind, "")}
        with self._lock:
            self._latest = text
            if self._pending:
                return
            self._pending = True
        self._executor.submit(self._write)

    def _write(self) -> None:
        time.sleep(WRITE_INTERVAL)  # gather what is heard meanwhile into one write
        with self._lock:
            text, self._pending = self._latest or "", False
        try:
            with self._session() as session, session.begin():
                seats.hear_live(
                    session, call_sid=self.call_sid, text=text, emergency=self._emergency
                )
        except SQLAlchemyError:
            # Only the operator's read-along misses a moment; the next words try again.
            log.exception("could not store the live words", extra={"call_sid": self.call_sid})
