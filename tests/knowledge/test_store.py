"""The knowledge base in the database (`knowledge.store`): seeding from the shipped files,
the desk's edits as revisions, retiring, the version retrieval keys its cache on, search.

On the session's real database; each test writes articles with ids of its own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cases.access import Actor
from cases.models import KnowledgeArticle, KnowledgeRevision, Role
from hotline.db import Database
from knowledge import store
from knowledge.articles import (
    DEFAULT_ARTICLES_DIR,
    Article,
    ArticleError,
    article_from_data,
    load_articles,
)


def article_data(
    article_id: str, *, answer: str = "请带身份证到派出所户籍窗口办理。"
) -> dict[str, Any]:
    """A valid article as plain data, in Mandarin and English."""
    return {
        "id": article_id,
        "category": "household_registration",
        "department": "public_security",
        "reviewed": "2026-12-01",
        "zh-CN": {
            "title": "户口迁移怎么办",
            "answer": answer,
            "details": "办理户口迁移需要身份证、户口簿和迁入地的准迁证明。",
            "questions": ["户口怎么迁", "迁户口要带什么", "户口迁移去哪里办"],
            "office": "市公安局户政科",
        },
        "en-US": {
            "title": "Moving your household registration",
            "answer": "Bring your ID card to the registration window of the police station.",
            "details": "You need your ID card, the household register and a transfer permit.",
            "questions": ["How do I move my hukou", "Where do I transfer my hukou", "Hukou move"],
        },
    }


def article(article_id: str, **kwargs: Any) -> Article:
    return article_from_data(article_data(article_id, **kwargs), source="test")


@pytest.fixture
def session(database: Database) -> Iterator[Session]:
    with database.session() as session, session.begin():
        yield session


@pytest.fixture
def article_id() -> str:
    return f"test-hukou-{uuid.uuid4().hex[:10]}"


def test_seeding_adds_the_missing_articles_once(session: Session, article_id: str) -> None:
    first = store.seed_articles(session, [article(article_id)])
    again = store.seed_articles(session, [article(article_id)])

    assert article_id in first.added
    assert article_id not in again.added + again.updated
    assert [r.editor for r in store.revisions(session, article_id)] == ["seed"]
    assert store.get_article(session, article_id).revision == 1


def test_a_changed_seed_file_updates_an_untouched_article_as_a_new_revision(
    session: Session, article_id: str
) -> None:
    store.seed_articles(session, [article(article_id)])
    result = store.seed_articles(session, [article(article_id, answer="请到政务服务中心办理。")])

    assert result.updated == [article_id]
    newest = store.revisions(session, article_id)[0]
    assert (newest.revision, newest.editor) == (2, "seed")
    assert (
        store.get_article(session, article_id).texts["zh-CN"]["answer"] == "请到政务服务中心办理。"
    )


def test_seeding_never_overwrites_an_article_the_desk_edited(
    session: Session, article_id: str
) -> None:
    store.seed_articles(session, [article(article_id)])
    edited = article_data(article_id, answer="窗口已搬到政务服务中心二楼。")
    store.edit_article(session, article_id=article_id, data=edited, editor="desk1", note="窗口搬了")

    result = store.seed_articles(session, [article(article_id, answer="旧文件里的新说法。")])

    assert result.kept == [article_id]
    row = store.get_article(session, article_id)
    assert row.texts["zh-CN"]["answer"] == "窗口已搬到政务服务中心二楼。"
    assert row.revision == 2


def test_an_edit_is_a_revision_naming_the_editor_the_note_and_the_changed_fields(
    session: Session, article_id: str
) -> None:
    store.seed_articles(session, [article(article_id)])
    revision = store.edit_article(
        session,
        article_id=article_id,
        data=article_data(article_id, answer="户口迁移请到政务服务中心公安窗口办理。"),
        editor="desk1",
        note="窗口搬到政务服务中心",
    )

    assert revision is not None
    assert (revision.revision, revision.editor, revision.note) == (
        2,
        "desk1",
        "窗口搬到政务服务中心",
    )
    (latest, changes), (first, _) = store.history(session, article_id)
    assert latest.id == revision.id and first.editor == "seed"
    assert [change.field for change in changes] == ["zh-CN.answer"]
    assert changes[0].before == "请带身份证到派出所户籍窗口办理。"
    assert changes[0].after == "户口迁移请到政务服务中心公安窗口办理。"


def test_an_edit_that_changes_nothing_writes_no_revision(session: Session, article_id: str) -> None:
    store.seed_articles(session, [article(article_id)])
    same = store.edit_article(
        session, article_id=article_id, data=article_data(article_id), editor="desk1", note="看过"
    )
    assert same is None
    assert len(store.revisions(session, article_id)) == 1


@pytest.mark.parametrize(
    ("change", "note", "message"),
    [
        ({}, "  ", "needs a note"),
        ({"zh-CN": {"title": "只有标题"}}, "改一下", "lacks `answer`"),
        ({"category": ""}, "改一下", "category"),
    ],
)
def test_a_bad_edit_is_refused_and_changes_nothing(
    session: Session, article_id: str, change: dict[str, Any], note: str, message: str
) -> None:
    store.seed_articles(session, [article(article_id)])
    with pytest.raises(ArticleError, match=message):
        store.edit_article(
            session,
            article_id=article_id,
            data={**article_data(article_id), **change},
            editor="desk1",
            note=note,
        )
    assert store.get_article(session, article_id).revision == 1


def test_a_retired_article_leaves_the_active_ones_and_comes_back_restored(
    session: Session, article_id: str
) -> None:
    store.seed_articles(session, [article(article_id)])
    assert article_id in {a.id for a in store.active_articles(session)}

    store.retire_article(session, article_id=article_id, editor="desk1", note="政策取消")
    assert article_id not in {a.id for a in store.active_articles(session)}
    assert store.get_article(session, article_id).retired

    store.restore_article(session, article_id=article_id, editor="desk2", note="政策恢复")
    assert article_id in {a.id for a in store.active_articles(session)}
    actions = [(r.action, r.editor) for r in store.revisions(session, article_id)]
    assert actions == [("restore", "desk2"), ("retire", "desk1"), ("create", "seed")]


def test_the_version_changes_on_every_change_and_only_then(
    session: Session, article_id: str
) -> None:
    store.seed_articles(session, [article(article_id)])
    before = store.knowledge_version(session)
    assert store.knowledge_version(session) == before

    store.edit_article(
        session,
        article_id=article_id,
        data=article_data(article_id, answer="新的答复。"),
        editor="desk1",
        note="更新",
    )
    edited = store.knowledge_version(session)
    store.retire_article(session, article_id=article_id, editor="desk1", note="下线")
    retired = store.knowledge_version(session)

    assert len({before, edited, retired}) == 3


def test_the_desk_creates_an_article_and_a_taken_id_is_refused(
    session: Session, article_id: str
) -> None:
    row = store.create_article(
        session, data=article_data(article_id), editor="desk1", note="新写的"
    )
    assert (row.source, row.updated_by, row.revision) == ("desk", "desk1", 1)
    with pytest.raises(store.ArticleExistsError):
        store.create_article(session, data=article_data(article_id), editor="desk1", note="再写")
    # An article the desk wrote is the desk's: a seed file with its id does not replace it.
    assert store.seed_articles(session, [article(article_id, answer="别的")]).kept == [article_id]


def test_search_finds_titles_and_questions_in_any_language(
    session: Session, article_id: str
) -> None:
    store.seed_articles(session, [article(article_id)])
    for query, locale in (("迁户口", "zh-CN"), ("HUKOU MOVE", "en-US"), ("迁移", "en-US")):
        found = store.search_articles(session, query, locale)
        assert article_id in {row.id for row in found}, query
    assert article_id not in {r.id for r in store.search_articles(session, "低保", "zh-CN")}
    store.retire_article(session, article_id=article_id, editor="desk1", note="下线")
    assert article_id not in {r.id for r in store.search_articles(session, "迁户口", "zh-CN")}
    retired = store.search_articles(session, "迁户口", "zh-CN", include_retired=True)
    assert article_id in {row.id for row in retired}


def test_department_staff_read_only_their_own_departments_articles(
    session: Session, article_id: str
) -> None:
    store.seed_articles(session, [article(article_id)])
    police = Actor(name="p1", role=Role.DEPARTMENT, department_code="public_security")
    water = Actor(name="w1", role=Role.DEPARTMENT, department_code="water")
    desk = Actor(name="d1", role=Role.DEPARTMENT, department_code="hotline_office")
    supervisor = Actor(name="s1", role=Role.SUPERVISOR)

    assert article_id in {r.id for r in store.search_articles(session, "", "zh-CN", actor=police)}
    assert article_id not in {
        r.id for r in store.search_articles(session, "", "zh-CN", actor=water)
    }
    with pytest.raises(store.UnknownArticleError):
        store.get_article(session, article_id, actor=water)
    assert store.get_article(session, article_id, actor=supervisor).id == article_id
    assert [store.may_edit(a) for a in (police, water, desk, supervisor)] == [
        False,
        False,
        True,
        False,
    ]


def test_a_resolved_case_gives_a_draft_with_its_question_and_answer(database: Database) -> None:
    from tests.support.factories import make_case

    with database.session() as session, session.begin():
        case = make_case(
            session, text="请问新生儿怎么上户口", category_code="household_registration"
        )
        case.resolution = "带出生医学证明和父母户口簿到派出所办理。"
        draft = store.article_from_case(case)
        session.rollback()
    assert draft["zh-CN"]["questions"] == ["请问新生儿怎么上户口"]
    assert draft["zh-CN"]["answer"] == "带出生医学证明和父母户口簿到派出所办理。"
    assert draft["category"] == "household_registration"


def test_flask_init_seeded_the_shipped_articles(database: Database) -> None:
    shipped = {a.id for a in load_articles(DEFAULT_ARTICLES_DIR)}
    with database.session() as session:
        stored = set(session.scalars(select(KnowledgeArticle.id)))
        seeded = session.scalars(
            select(KnowledgeRevision.article_id).where(KnowledgeRevision.editor == "seed")
        ).all()
    assert shipped <= stored
    assert shipped <= set(seeded)
