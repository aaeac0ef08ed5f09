"""A case and the knowledge base (`cases.knowledge_links`): the suggested article attached for
the desk, and a consultation answered at once (当即解答), on the session's real database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from cases import knowledge_links, serialise
from cases.access import SYSTEM, Actor
from cases.errors import InvalidInputError, InvalidTransitionError, NotAllowedError
from cases.models import Case, CaseStatus, Channel, Role
from hotline.db import Database
from knowledge import store
from tests.support.factories import make_case

ARTICLE = "hotline-service"  # shipped with the knowledge base, in zh-CN, en-US and ko-KR
DISPATCHER = Actor(name="desk1", role=Role.DISPATCHER)
WATER = Actor(name="li.wei", role=Role.DEPARTMENT, department_code="water")


@pytest.fixture
def session(database: Database) -> Iterator[Session]:
    """A transaction rolled back afterwards: these tests leave nothing behind."""
    with database.session() as session:
        session.begin()
        yield session
        session.rollback()


def consultation(session: Session, *, locale: str = "zh-CN") -> Case:
    return make_case(
        session,
        department_code="hotline_office",
        category_code="consultation",
        text="热线都管什么事",
        locale=locale,
    )


def caller_texts(case: Case) -> list[str]:
    return [d.topic for d in case.deliveries if d.channel == Channel.CALLER_SMS]


@pytest.mark.parametrize("locale", ["zh-CN", "en-US", "ko-KR"])
def test_answering_at_once_closes_the_case_with_the_answer_in_the_callers_language(
    session: Session, locale: str
) -> None:
    case = consultation(session, locale=locale)
    texts_before = caller_texts(case)

    knowledge_links.answer_at_once(session, case=case, article_id=ARTICLE, actor=SYSTEM)
    session.flush()
    session.refresh(case)

    article = store.get_article(session, ARTICLE)
    assert case.status == CaseStatus.CLOSED
    assert case.article_id == ARTICLE
    assert case.resolution == article.texts[locale]["answer"]
    assert case.closed_at is not None and case.resolved_at is not None
    answered = [e for e in case.events if e.kind == "answered_at_once"]
    assert len(answered) == 1 and answered[0].data["article"] == ARTICLE
    assert answered[0].actor == "system"
    # Answered in the call: no request for a rating follows.
    assert caller_texts(case) == texts_before
    assert not [e for e in case.events if e.kind == "resolved"]


def test_answering_again_for_the_same_article_changes_nothing(session: Session) -> None:
    case = consultation(session)
    knowledge_links.answer_at_once(session, case=case, article_id=ARTICLE, actor=SYSTEM)
    session.flush()
    events = len(case.events)
    knowledge_links.answer_at_once(session, case=case, article_id=ARTICLE, actor=SYSTEM)
    session.flush()
    assert len(case.events) == events


def test_the_desk_answers_at_once_and_a_department_may_not(session: Session) -> None:
    case = consultation(session)
    with pytest.raises(NotAllowedError):
        knowledge_links.answer_at_once(session, case=case, article_id=ARTICLE, actor=WATER)
    knowledge_links.answer_at_once(session, case=case, article_id=ARTICLE, actor=DISPATCHER)
    assert case.status == CaseStatus.CLOSED
    assert case.events[-1].actor == "desk1"


def test_a_case_a_department_accepted_is_not_answered_at_once(session: Session) -> None:
    from cases import lifecycle

    case = make_case(session, department_code="water", category_code="water_supply")
    lifecycle.accept(session, case=case, actor=WATER)
    with pytest.raises(InvalidTransitionError):
        knowledge_links.answer_at_once(session, case=case, article_id=ARTICLE, actor=SYSTEM)
    assert case.status == CaseStatus.ACCEPTED


def test_an_unknown_or_retired_article_answers_nothing(session: Session) -> None:
    case = consultation(session)
    with pytest.raises(InvalidInputError):
        knowledge_links.answer_at_once(session, case=case, article_id="no-such", actor=SYSTEM)
    store.retire_article(session, article_id=ARTICLE, editor="desk1", note="测试下线")
    with pytest.raises(InvalidInputError):
        knowledge_links.attach_article(session, case=case, article_id=ARTICLE, confidence=0.9)
    assert case.status != CaseStatus.CLOSED and case.article_id is None


def test_attaching_an_article_records_the_suggestion_once(session: Session) -> None:
    case = consultation(session)
    knowledge_links.attach_article(session, case=case, article_id=ARTICLE, confidence=0.8312)
    knowledge_links.attach_article(session, case=case, article_id=ARTICLE, confidence=0.8312)
    session.flush()

    assert case.article_id == ARTICLE
    suggested = [e for e in case.events if e.kind == "article_suggested"]
    assert [e.data for e in suggested] == [{"article": ARTICLE, "confidence": 0.831}]
    assert case.status not in (CaseStatus.CLOSED, CaseStatus.RESOLVED)
    # `case show` names it.
    assert serialise.case_record(case)["article"] == ARTICLE
