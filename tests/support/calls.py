"""Fixtures for tests that place calls: prompts to compare against, and look-ups by CallSid."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cases.locales import LOCALES
from cases.models import Call, CallbackTask, Case, QueueEntry, Recording, Transcript
from hotline.config import CONFIG_DIR
from hotline.db import Database
from ivr.prompts import Prompts, load_prompts
from tests.conftest import AUDIO

# The keys that make the Mandarin greeting greet again in a locale (none for Mandarin itself).
GREET_IN: dict[str, list[str | None]] = {"zh-CN": [], "en-US": ["2"], "ko-KR": ["3"]}
VOICE = {
    "zh-CN": ("cmn-CN", "Polly.Zhiyu"),
    "en-US": ("en-US", "Polly.Joanna"),
    "ko-KR": ("ko-KR", "Polly.Seoyeon"),
}
SPEECH = (AUDIO / "ko_streetlight.wav").read_bytes()


@pytest.fixture(scope="session")
def prompts() -> dict[str, Prompts]:
    return load_prompts(CONFIG_DIR / "prompts", LOCALES)


class Lookups:
    """Reads the database the way a person checking the outcome would.

    Each read first commits what the app has queued: the voice entry writes a call's first
    row behind its answer, within 20 ms (`tests/ivr/test_voice_webhook.py` checks that it does
    so unprompted), and a test that reads right after the answer must not race that.
    """

    def __init__(self, database: Database) -> None:
        self.database = database

    def _session(self) -> Session:
        self.database.group_commit.flush()
        return self.database.session()

    def cases_of(self, call_sid: str) -> list[Case]:
        with self._session() as session:
            cases = session.scalars(
                select(Case).join(Call, Case.call_id == Call.id).where(Call.call_sid == call_sid)
            ).all()
            for case in cases:  # load what the tests read, before the session closes
                _ = case.recordings, case.events, case.call
            return list(cases)

    def case_of(self, call_sid: str) -> Case:
        cases = self.cases_of(call_sid)
        assert len(cases) == 1, f"expected one case for {call_sid}, found {len(cases)}"
        return cases[0]

    def call(self, call_sid: str) -> Call | None:
        with self._session() as session:
            return session.scalars(select(Call).where(Call.call_sid == call_sid)).one_or_none()

    def recordings_of(self, call_sid: str) -> list[Recording]:
        with self._session() as session:
            return list(
                session.scalars(
                    select(Recording)
                    .join(Call, Recording.call_id == Call.id)
                    .where(Call.call_sid == call_sid)
                ).all()
            )

    def transcript_of(self, call_sid: str) -> Transcript | None:
        with self._session() as session:
            return session.scalars(
                select(Transcript)
                .join(Call, Transcript.call_id == Call.id)
                .where(Call.call_sid == call_sid)
            ).one_or_none()

    def queue_entry(self, call_sid: str) -> QueueEntry | None:
        with self._session() as session:
            return session.scalars(
                select(QueueEntry).where(QueueEntry.call_sid == call_sid)
            ).one_or_none()

    def callback_of(self, call_sid: str) -> CallbackTask | None:
        """The callback task this call made (a number with one open already makes none)."""
        with self._session() as session:
            return session.scalars(
                select(CallbackTask).where(CallbackTask.call_sid == call_sid)
            ).one_or_none()

    def count_calls(self, call_sid: str) -> int:
        with self._session() as session:
            return int(
                session.scalar(
                    select(func.count()).select_from(Call).where(Call.call_sid == call_sid)
                )
                or 0
            )


@pytest.fixture
def lookups(database: Database) -> Lookups:
    return Lookups(database)


def fresh_mobile_number() -> str:
    """A Chinese mobile number no other test calls from: callbacks are one per number."""
    return "+86139" + "".join(random.choices("0123456789", k=8))
