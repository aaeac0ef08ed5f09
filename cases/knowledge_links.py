"""A case and the knowledge base: the article suggested for a consultation, and a case the
article answered at once (当即解答).

The article is read from its table (`KnowledgeArticle`), as the desk keeps it; the domain does
not depend on the knowledge package's retrieval. Neither function commits.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from cases import lifecycle
from cases.access import Actor
from cases.errors import N_, InvalidInputError
from cases.models import Case, CaseStatus, KnowledgeArticle, utcnow
from cases.timeline import add_event, last_event

ANSWERED_AT_ONCE = "answered_at_once"
ARTICLE_SUGGESTED = "article_suggested"


def _usable_article(session: Session, article_id: str) -> KnowledgeArticle:
    article = session.get(KnowledgeArticle, article_id) if article_id else None
    if article is None or article.retired:
        raise InvalidInputError(N_("There is no such article in the knowledge base."))
    return article


def answer_text(article: KnowledgeArticle, locale: str) -> str:
    """The article's spoken answer in `locale`, or in Mandarin when it is not written in it."""
    texts = article.texts or {}
    text = texts.get(locale) or texts.get("zh-CN") or {}
    return str(text.get("answer", ""))


def answer_at_once(session: Session, *, case: Case, article_id: str, actor: Actor) -> Case:
    """Close the case as answered at once with the article's answer (in the case's language)
    as its resolution. No rating is asked for: the caller said it answered them, or the desk
    answered a question. Repeating it for the same article changes nothing."""
    if case.status == CaseStatus.CLOSED and case.article_id == article_id:
        answered = last_event(case, ANSWERED_AT_ONCE)
        if answered is not None:
            return case  # a retried webhook: the caller's key was already taken
    lifecycle.check_actor("answer_at_once", actor=actor, case=case)
    lifecycle.check_status("answer_at_once", case=case)
    article = _usable_article(session, article_id)
    now = utcnow()
    case.article_id = article.id
    case.status = CaseStatus.CLOSED
    case.resolution = answer_text(article, case.locale)
    case.resolved_at = case.closed_at = now
    case.needs_review = False
    # Answered: a transcript or a routing job that arrives later must not route it again.
    case.routed_at = case.routed_at or now
    add_event(
        session,
        case=case,
        kind=ANSWERED_AT_ONCE,
        actor=actor.name,
        article=article.id,
        revision=article.revision,
        reply=case.resolution,
    )
    # 并单: reports the desk merged into it hear the same answer.
    lifecycle.tell_co_reporters(session, case=case, reply=case.resolution)
    return case


def attach_article(
    session: Session, *, case: Case, article_id: str, confidence: float | None
) -> Case:
    """Attach the article retrieval suggested for the case, for the desk (and for the answer
    in the call); a repeat of the same suggestion adds nothing to the timeline."""
    article = _usable_article(session, article_id)
    if case.article_id == article.id:
        return case
    case.article_id = article.id
    add_event(
        session,
        case=case,
        kind=ARTICLE_SUGGESTED,
        article=article.id,
        confidence=None if confidence is None else round(float(confidence), 3),
    )
    return case
