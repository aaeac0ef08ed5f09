"""直接答复: the desk answers a question itself, without an article and without a department:
the case is resolved by the desk and the caller is texted the answer and asked to rate it."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from cases.models import Case, CaseStatus, Channel
from hotline.db import Database
from tests.support.factories import make_case
from tests.support.staff import Console

ANSWER = "您好，居住证办理需携带身份证和租房合同，到所在街道便民服务中心办理。"


def consultation(database: Database) -> str:
    with database.session() as session, session.begin():
        return make_case(
            session,
            department_code="hotline_office",
            category_code="consultation",
            text="居住证怎么办理",
            triage=True,
        ).number


def test_the_desk_answers_a_question_itself_and_the_caller_is_texted_the_answer(
    signed_in: Callable[..., Console], database: Database
) -> None:
    number = consultation(database)
    desk = signed_in("dispatcher")
    assert 'id="desk-answer-form"' in desk.get(f"/console/cases/{number}").get_data(as_text=True)
    response = desk.post(f"/console/cases/{number}/desk-answer", {"desk-answer-reply": ANSWER})
    assert response.status_code == 302
    # Twice (a double click): the case is past answering, and nothing is sent again.
    again = desk.post(f"/console/cases/{number}/desk-answer", {"desk-answer-reply": ANSWER})
    assert again.status_code == 400
    assert "已办结" in again.get_data(as_text=True)  # said with the case's state

    with database.session() as session:
        case = session.scalars(select(Case).where(Case.number == number)).one()
        assert case.status == CaseStatus.RESOLVED and case.resolution == ANSWER
        assert case.department_code == "hotline_office" and not case.needs_review
        assert [e.kind for e in case.events].count("answered_by_desk") == 1
        texts = [d for d in case.deliveries if d.channel == Channel.CALLER_SMS]
        assert [d.topic for d in texts] == ["resolved"]
        assert texts[0].payload["reply"] == ANSWER


def test_only_the_desk_answers_and_an_empty_answer_changes_nothing(
    signed_in: Callable[..., Console], database: Database
) -> None:
    number = consultation(database)
    desk = signed_in("dispatcher")
    empty = desk.post(f"/console/cases/{number}/desk-answer", {"desk-answer-reply": "  "})
    assert empty.status_code == 400
    supervisor = signed_in("supervisor")
    refused = supervisor.post(f"/console/cases/{number}/desk-answer", {"desk-answer-reply": ANSWER})
    assert refused.status_code == 403
    with database.session() as session:
        case = session.scalars(select(Case).where(Case.number == number)).one()
        assert case.status == CaseStatus.TRIAGE and case.resolution is None
