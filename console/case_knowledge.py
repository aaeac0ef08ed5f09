"""The knowledge base on the case page: the article attached to a case (or, for a consultation
without one, what retrieval suggests now), and the suggestion attached when the desk files a
case as a consultation."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.orm import Session

from cases.errors import InvalidInputError
from cases.knowledge_links import ARTICLE_SUGGESTED, answer_text, attach_article
from cases.models import ACTIVE_STATUSES, Case, CaseStatus, KnowledgeArticle
from cases.timeline import last_event
from hotline.wiring import current_wiring
from knowledge.retrieval import Suggestion

log = logging.getLogger("hotline.console")

CONSULTATION = "consultation"


@dataclass(frozen=True)
class ShownArticle:
    """An article as the case page shows it."""

    id: str
    title: str
    answer: str
    confidence: float | None
    attached: bool  # False: suggested on this page's render, not yet part of the case


def _suggest(session: Session, case: Case) -> Suggestion | None:
    """Retrieval's suggestion for the case's words, or None (also when retrieval fails: the
    case page must show whatever happens)."""
    words = case.transcript.text if case.transcript is not None else ""
    if not words.strip():
        return None
    try:
        return current_wiring().knowledge.suggest(session, words, case.locale)
    except Exception:  # a broken index costs the suggestion, never the page
        log.exception("knowledge suggestion failed", extra={"case_number": case.number})
        return None


def shown_article(session: Session, case: Case) -> ShownArticle | None:
    """The article attached to the case; for an open consultation without one, what the
    knowledge base suggests for its words now."""
    if case.article_id:
        row = session.get(KnowledgeArticle, case.article_id)
        if row is None:
            return None
        texts = row.texts or {}
        title = (texts.get(case.locale) or texts.get("zh-CN") or {}).get("title", row.id)
        suggested = last_event(case, ARTICLE_SUGGESTED)
        confidence = suggested.data.get("confidence") if suggested is not None else None
        return ShownArticle(
            id=row.id,
            title=str(title),
            answer=answer_text(row, case.locale),
            confidence=confidence,
            attached=True,
        )
    if case.category_code != CONSULTATION or case.status not in ACTIVE_STATUSES:
        return None
    suggestion = _suggest(session, case)
    if suggestion is None:
        return None
    text = suggestion.article.text(case.locale)
    return ShownArticle(
        id=suggestion.article.id,
        title=text.title,
        answer=text.answer,
        confidence=suggestion.confidence,
        attached=False,
    )


def attach_suggestion(session: Session, case: Case) -> None:
    """Attach the suggested article to a case the desk has just filed as a consultation."""
    if case.category_code != CONSULTATION or case.article_id is not None:
        return
    if case.status in (CaseStatus.RESOLVED, CaseStatus.CLOSED):
        return
    suggestion = _suggest(session, case)
    if suggestion is None:
        return
    try:
        attach_article(
            session, case=case, article_id=suggestion.article.id, confidence=suggestion.confidence
        )
    except InvalidInputError:
        # Retired since retrieval last rebuilt: the triage stands without a suggestion.
        log.info("suggested article gone", extra={"case_number": case.number})
