"""What the check after a report decides from its live transcript, as a pure decision: put the
caller through to an emergency service, ask whether someone is in danger, offer an answer
from the knowledge base, or read the case number back.

The emergency verdict comes from `routing.emergency.assess_emergency`, the suggestion from the
knowledge base (`wiring.knowledge.suggest`); this module only orders them: an emergency comes
before everything, and a report that may be one is never answered from the knowledge base.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.orm import Session

from routing.emergency import EmergencyVerdict

# The checks the report step runs on the live transcript, named in `check_skipped` events.
CHECKS = ["emergency", "knowledge"]


class ArticleLike(Protocol):
    """What the call needs of a suggested article (`knowledge.articles.Article`)."""

    @property
    def id(self) -> str:
        """The article's id."""


class SuggestionLike(Protocol):
    """What the call needs of a suggestion (`knowledge.retrieval.Suggestion`)."""

    @property
    def article(self) -> ArticleLike:
        """The suggested article."""

    @property
    def confidence(self) -> float:
        """How sure retrieval is that the article answers the words."""


class Suggester(Protocol):
    """The knowledge base as the call uses it (`knowledge.base.KnowledgeBase`)."""

    def suggest(self, session: Session, text: str, locale: str) -> SuggestionLike | None:
        """The best article for the words, or None (always None for a complaint)."""


class Next(enum.StrEnum):
    """What the call does after the check."""

    EMERGENCY = "emergency"  # put through to 110/119/120 now
    ASK_DANGER = "ask_danger"  # "is someone in danger right now? press 1"
    ANSWER = "answer"  # say the article's answer, then 1 answered / 2 keep the case
    CASE = "case"  # read the case number back


@dataclass(frozen=True)
class Decision:
    """The check's decision, with what it rests on."""

    next: Next
    emergency: EmergencyVerdict | None = None
    suggestion: SuggestionLike | None = None


def is_confident(suggestion: SuggestionLike) -> bool:
    """Whether the suggestion is good enough to say its answer in a call: retrieval's own rule
    (`knowledge.retrieval.is_confident`, threshold `ANSWER_CONFIDENCE`)."""
    from knowledge import retrieval  # imported here: the knowledge base loads only if it is used

    return bool(retrieval.is_confident(suggestion))  # type: ignore[arg-type]


def decide(
    emergency: EmergencyVerdict, suggestion: SuggestionLike | None, *, confident: bool
) -> Decision:
    """Order the verdicts: a clear emergency, then a borderline one (ask), then a confident
    answer; anything else reads the number back (with the suggestion, if any, for the desk)."""
    if emergency.certainty == "clear" and emergency.kind is not None:
        return Decision(Next.EMERGENCY, emergency=emergency)
    if emergency.certainty == "borderline" and emergency.kind is not None:
        return Decision(Next.ASK_DANGER, emergency=emergency, suggestion=suggestion)
    if suggestion is not None and confident:
        return Decision(Next.ANSWER, emergency=emergency, suggestion=suggestion)
    return Decision(Next.CASE, emergency=emergency, suggestion=suggestion)
