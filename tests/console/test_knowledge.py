"""The desk's knowledge base in the console: search, edit with history (who changed what,
before and after), retire and restore, an article from a case's answer, who may read and
edit; and the knowledge base on the case page (the suggested article, 当即解答)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from html import unescape
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from cases import knowledge_links, lifecycle
from cases.access import Actor
from cases.models import Case, CaseStatus, KnowledgeArticle, Role
from hotline.db import Database
from hotline.wiring import wiring_of
from knowledge import store
from knowledge.articles import Article
from knowledge.retrieval import Suggestion
from tests.support.factories import make_case
from tests.support.staff import Console

OWN = "urban_mgmt"
ANSWER = "请拨打热线说明路灯的位置，城管局二十四小时内修复。"


def article_data(article_id: str, department: str = OWN) -> dict[str, Any]:
    return {
        "id": article_id,
        "category": "streetlight",
        "department": department,
        "reviewed": "2026-12-01",
        "zh-CN": {
            "title": "路灯坏了怎么报修",
            "answer": ANSWER,
            "details": "报修时请说明街道、路名和附近的门牌号或电线杆编号。",
            "questions": ["路灯不亮找谁", "路灯坏了怎么办", "报修路灯打哪个电话"],
        },
        "en-US": {
            "title": "Reporting a broken street light",
            "answer": "Call the hotline and say where the light is; it is fixed within a day.",
            "details": "Give the street, the road and a house number or the pole's number.",
            "questions": ["Street light broken", "Who fixes street lights", "Lamp post dark"],
        },
    }


def form_fields(data: dict[str, Any], note: str) -> dict[str, str]:
    """The article form's fields for `data`, as a browser posts them."""
    fields = {
        "category": data["category"],
        "department": data["department"] or "",
        "reviewed": data["reviewed"],
        "note": note,
    }
    for locale, prefix in (("zh-CN", "zh_CN"), ("en-US", "en_US"), ("ko-KR", "ko_KR")):
        text = data.get(locale) or {}
        for key in ("title", "answer", "details", "office", "address", "hours"):
            fields[f"{prefix}-{key}"] = text.get(key, "")
        fields[f"{prefix}-questions"] = "\n".join(text.get("questions", []))
    return fields


@pytest.fixture
def article_id(database: Database) -> str:
    """A fresh article of the own department, written by the seed."""
    article_id = f"test-light-{uuid.uuid4().hex[:10]}"
    with database.session() as session, session.begin():
        store.create_article(session, data=article_data(article_id), editor="seed", note="种子")
    return article_id


def stored(database: Database, article_id: str) -> KnowledgeArticle:
    with database.session() as session:
        return store.get_article(session, article_id)


def test_the_desk_edits_an_article_and_the_history_says_who_changed_what(
    database: Database, signed_in: Callable[..., Console], article_id: str
) -> None:
    desk = signed_in("dispatcher")
    with database.session() as session:
        version_before = store.knowledge_version(session)
    page = desk.get(f"/console/knowledge/{article_id}").get_data(as_text=True)
    assert 'id="knowledge-edit-form"' in page
    assert "路灯不亮找谁" in page  # the form is filled with the article as it stands

    changed = article_data(article_id)
    changed["zh-CN"]["answer"] = "请拨打热线说明路灯的位置，城管局十二小时内修复。"
    response = desk.post(f"/console/knowledge/{article_id}", form_fields(changed, "时限改为12小时"))
    assert response.status_code == 302

    row = stored(database, article_id)
    assert row.revision == 2 and row.updated_by == desk.account.username
    assert row.texts["zh-CN"]["answer"] == changed["zh-CN"]["answer"]
    history = desk.get(f"/console/knowledge/{article_id}").get_data(as_text=True)
    revision = re.search(
        r'<li class="event revision[^"]*" id="revision-2">(.*?)</li>', history, re.S
    )
    assert revision, "the history lists revision 2"
    entry = unescape(revision.group(1))
    assert desk.account.username in entry and "时限改为12小时" in entry
    assert 'data-field="zh-CN.answer"' in entry
    assert "二十四小时内修复" in entry and "十二小时内修复" in entry  # before and after
    assert "en-US" not in entry  # only what changed
    with database.session() as session:
        assert store.knowledge_version(session) != version_before


def test_an_edit_without_a_note_or_with_a_broken_text_changes_nothing(
    database: Database, signed_in: Callable[..., Console], article_id: str
) -> None:
    desk = signed_in("dispatcher")
    no_note = form_fields(article_data(article_id), "")
    assert desk.post(f"/console/knowledge/{article_id}", no_note).status_code == 400
    two_questions = article_data(article_id)
    two_questions["zh-CN"]["questions"] = ["路灯不亮找谁", "路灯坏了"]
    response = desk.post(f"/console/knowledge/{article_id}", form_fields(two_questions, "改问法"))
    assert response.status_code == 400
    assert 'class="field-error"' in response.get_data(as_text=True)
    too_long = article_data(article_id)
    too_long["zh-CN"]["answer"] = "路灯" * 120
    assert (
        desk.post(f"/console/knowledge/{article_id}", form_fields(too_long, "长")).status_code
        == 400
    )
    assert stored(database, article_id).revision == 1


def test_retiring_takes_an_article_out_of_use_and_restoring_puts_it_back(
    database: Database, signed_in: Callable[..., Console], article_id: str
) -> None:
    desk = signed_in("admin")
    assert (
        desk.post(f"/console/knowledge/{article_id}/retire", {"note": "政策取消"}).status_code
        == 302
    )
    with database.session() as session:
        assert article_id not in {a.id for a in store.active_articles(session)}
    assert article_id not in desk.get("/console/knowledge").get_data(as_text=True)
    retired = desk.get("/console/knowledge", query_string={"state": "retired"})
    assert f'id="article-{article_id}"' in retired.get_data(as_text=True)

    assert (
        desk.post(f"/console/knowledge/{article_id}/restore", {"note": "恢复"}).status_code == 302
    )
    with database.session() as session:
        assert article_id in {a.id for a in store.active_articles(session)}
        actions = [(r.action, r.note) for r in store.revisions(session, article_id)]
    assert actions[:2] == [("restore", "恢复"), ("retire", "政策取消")]


def test_the_list_searches_titles_and_questions(
    signed_in: Callable[..., Console], article_id: str
) -> None:
    desk = signed_in("dispatcher")
    found = desk.get("/console/knowledge", query_string={"q": "报修路灯打哪个"})
    assert f'id="article-{article_id}"' in found.get_data(as_text=True)
    missed = desk.get("/console/knowledge", query_string={"q": "没有这种问法的问题"})
    assert f'id="article-{article_id}"' not in missed.get_data(as_text=True)
    assert desk.get("/console/knowledge", query_string={"state": "bogus"}).status_code == 400


def test_supervisors_read_and_may_not_edit(
    database: Database, signed_in: Callable[..., Console], article_id: str
) -> None:
    supervisor = signed_in("supervisor")
    page = supervisor.get(f"/console/knowledge/{article_id}")
    assert page.status_code == 200
    assert 'id="knowledge-edit-form"' not in page.get_data(as_text=True)
    changed = form_fields(article_data(article_id), "我也想改")
    assert supervisor.post(f"/console/knowledge/{article_id}", changed).status_code == 403
    assert supervisor.get("/console/knowledge/new").status_code == 403
    assert stored(database, article_id).revision == 1


def test_department_staff_read_only_their_own_departments_articles(
    signed_in: Callable[..., Console], article_id: str
) -> None:
    own, other = signed_in("department", OWN), signed_in("department", "water")
    assert own.get(f"/console/knowledge/{article_id}").status_code == 200
    assert f'id="article-{article_id}"' in own.get("/console/knowledge").get_data(as_text=True)
    assert other.get(f"/console/knowledge/{article_id}").status_code == 404
    assert f'id="article-{article_id}"' not in other.get("/console/knowledge").get_data(
        as_text=True
    )


def test_the_desk_writes_a_new_article(
    database: Database, signed_in: Callable[..., Console]
) -> None:
    desk = signed_in("dispatcher")
    article_id = f"test-new-{uuid.uuid4().hex[:10]}"
    fields = {"article_id": article_id, **form_fields(article_data(article_id), "新写")}
    assert desk.post("/console/knowledge/new", fields).status_code == 302
    row = stored(database, article_id)
    assert (row.source, row.updated_by) == ("desk", desk.account.username)
    # The same id again is refused, on the form.
    again = desk.post("/console/knowledge/new", fields)
    assert again.status_code == 400
    assert 'id="article_id"' in again.get_data(as_text=True)


def resolved_case(database: Database) -> str:
    with database.session() as session, session.begin():
        case = make_case(session, department_code=OWN, text="我家门口的路灯坏了找谁修")
        holder = Actor(name="own", role=Role.DEPARTMENT, department_code=OWN)
        lifecycle.resolve(session, case=case, actor=holder, reply="路灯报修请找城管局，已修好。")
        return case.number


def test_the_desk_makes_an_article_from_a_resolved_cases_answer(
    database: Database, signed_in: Callable[..., Console]
) -> None:
    desk = signed_in("dispatcher")
    number = resolved_case(database)
    case_page = desk.get(f"/console/cases/{number}").get_data(as_text=True)
    assert 'id="make-article-link"' in case_page

    page = unescape(desk.get(f"/console/knowledge/new?case={number}").get_data(as_text=True))
    assert "我家门口的路灯坏了找谁修" in page and "路灯报修请找城管局，已修好。" in page
    article_id = f"case-{number}"
    assert f'value="{article_id}"' in page

    data = article_data(article_id)
    data["zh-CN"]["answer"] = "路灯报修请找城管局，已修好。"
    fields = {
        "article_id": article_id,
        "from_case": number,
        **form_fields(data, f"来自工单{number}"),
    }
    assert desk.post("/console/knowledge/new", fields).status_code == 302
    assert stored(database, article_id).source == "case"
    # Department staff resolve cases; they do not get the button.
    own = signed_in("department", OWN)
    assert 'id="make-article-link"' not in own.get(f"/console/cases/{number}").get_data(
        as_text=True
    )


def consultation(database: Database, *, article: str | None) -> str:
    with database.session() as session, session.begin():
        case = make_case(
            session,
            department_code="hotline_office",
            category_code="consultation",
            text="热线都管什么事",
            triage=True,
        )
        if article is not None:
            knowledge_links.attach_article(session, case=case, article_id=article, confidence=0.87)
        return case.number


def test_the_case_page_shows_the_attached_article_and_the_desk_answers_at_once(
    database: Database, signed_in: Callable[..., Console]
) -> None:
    number = consultation(database, article="hotline-service")
    desk = signed_in("dispatcher")
    page = desk.get(f"/console/cases/{number}").get_data(as_text=True)
    assert "马上就办一线通能办什么" in page  # the title in the case's language
    assert 'id="case-article-confidence">87%' in page
    assert 'id="answer-at-once-form"' in page

    assert desk.post(f"/console/cases/{number}/answer-at-once").status_code == 302
    with database.session() as session:
        case = session.scalars(select(Case).where(Case.number == number)).one()
        assert case.status == CaseStatus.CLOSED
        assert [e.actor for e in case.events if e.kind == "answered_at_once"] == [
            desk.account.username
        ]


class FakeKnowledge:
    """The knowledge base as the wiring offers it, answering every text with one article."""

    def __init__(self, article: Article, confidence: float) -> None:
        self.article, self.confidence = article, confidence
        self.asked: list[tuple[str, str]] = []

    def suggest(self, session: Any, text: str, locale: str) -> Suggestion | None:
        self.asked.append((text, locale))
        return Suggestion(article=self.article, confidence=self.confidence, locale=locale)


@pytest.fixture
def fake_knowledge(app: Flask, database: Database) -> Iterator[FakeKnowledge]:
    """The app's wiring with a FakeKnowledge for the length of a test."""
    with database.session() as session:
        article = store.as_article(store.get_article(session, "hotline-service"))
    fake = FakeKnowledge(article, 0.42)
    wiring = wiring_of(app)
    missing = object()
    before = wiring.__dict__.get("knowledge", missing)
    # The wiring is frozen: it is swapped for this test and put back after.
    object.__setattr__(wiring, "knowledge", fake)
    yield fake
    if before is missing:
        object.__delattr__(wiring, "knowledge")
    else:
        object.__setattr__(wiring, "knowledge", before)


def test_a_consultation_without_an_article_shows_the_suggestion_on_render(
    database: Database, signed_in: Callable[..., Console], fake_knowledge: FakeKnowledge
) -> None:
    number = consultation(database, article=None)
    page = signed_in("dispatcher").get(f"/console/cases/{number}").get_data(as_text=True)
    assert fake_knowledge.asked == [("热线都管什么事", "zh-CN")]
    assert 'id="case-article-confidence">42%' in page
    # Shown, not attached: reading a page changes no case.
    with database.session() as session:
        case = session.scalars(select(Case).where(Case.number == number)).one()
        assert case.article_id is None
    assert 'id="answer-at-once-form"' not in page


def test_a_case_the_desk_triages_as_a_consultation_gets_the_suggested_article(
    database: Database, signed_in: Callable[..., Console], fake_knowledge: FakeKnowledge
) -> None:
    with database.session() as session, session.begin():
        number = make_case(
            session, department_code="hotline_office", text="热线都管什么事", triage=True
        ).number
    desk = signed_in("dispatcher")
    # A policy question the desk files for the department that answers it.
    fields = {
        "triage-category": "consultation",
        "triage-department": "hr_social",
        "triage-urgency": "normal",
    }
    assert desk.post(f"/console/cases/{number}/triage", fields).status_code == 302
    with database.session() as session:
        case = session.scalars(select(Case).where(Case.number == number)).one()
        assert case.article_id == "hotline-service"
        suggested = [e.data for e in case.events if e.kind == "article_suggested"]
    assert suggested == [{"article": "hotline-service", "confidence": 0.42}]


def test_the_knowledge_base_itself_suggests_the_article_for_a_consultations_words(
    app: Flask, database: Database, signed_in: Callable[..., Console]
) -> None:
    # The index is built in the background (never inside a page's transaction): wait for it,
    # as a desk would have by the time it opens a case.
    wiring_of(app).knowledge.ready(timeout=120)
    number = consultation(database, article=None)
    page = signed_in("dispatcher").get(f"/console/cases/{number}").get_data(as_text=True)
    assert 'id="article-section"' in page
    assert 'href="/console/knowledge/hotline-service"' in page
