"""Named fakes for calls heard live: a recognizer that hears given words, and the knowledge base
the call asks for an answer (`wiring.knowledge`)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from knowledge.articles import Article
from knowledge.retrieval import Suggestion
from transcription.models import LoadedModel
from transcription.recognizer import Transcript


class Hears:
    """A live recognizer (`ivr.streams.LiveRecognizer`) that hears `words`, after `delay`
    seconds of decoding at the end, or once `released` is set. The small Korean model cannot
    make out espeak-ng's synthetic speech well enough for a question; this stands in for a
    caller's real voice. Everything else is real: the socket, the stop, the store, the check."""

    words = ""
    delay = 0.0
    released: threading.Event | None = None

    def __init__(self, model: LoadedModel) -> None:
        self.model_name, self.frames = model.name, 0

    def put_mulaw(self, payload: bytes) -> None:
        self.frames += 1

    def close(self, timeout: float | None = 60.0) -> Transcript:
        if self.released is not None:
            self.released.wait(timeout)
        time.sleep(self.delay)
        return Transcript(self.words, (), self.frames * 0.02, "vosk 0.3.45", self.model_name, 0.01)


def hearing(
    words: str, *, delay: float = 0.0, released: threading.Event | None = None
) -> type[Hears]:
    """A recognizer class that hears these words (and takes `delay` seconds to finish, or
    finishes when `released` is set: a decode late by as long as the test needs)."""
    return type("HearsThese", (Hears,), {"words": words, "delay": delay, "released": released})


@dataclass
class FakeKnowledge:
    """The knowledge base as the call uses it (`suggest`): it knows the articles of the texts it
    was given, at the confidence given, and nothing else: a complaint gets no article, as
    `knowledge.retrieval` promises. `asked` keeps what it was asked."""

    answers: dict[str, tuple[Article, float]]
    asked: list[str] = field(default_factory=list)

    def suggest(self, session: Session, text: str, locale: str) -> Suggestion | None:
        self.asked.append(text)
        found = self.answers.get(text)
        return Suggestion(article=found[0], confidence=found[1], locale=locale) if found else None
