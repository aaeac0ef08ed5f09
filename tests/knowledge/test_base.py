"""The KnowledgeBase: a Retriever per version of the articles, rebuilt only when they change,
and never built inside a transaction or on the thread that asks."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import pytest
from sqlalchemy import select

from cases.models import KnowledgeArticle
from hotline.db import Database
from knowledge.articles import Article
from knowledge.base import KnowledgeBase, build_shared
from knowledge.retrieval import Retriever

QUESTION = "身份证丢了怎么补办"


class CountingBuilder:
    """Builds real Retrievers and remembers what it was given."""

    def __init__(self, retriever: Retriever) -> None:
        self.retriever = retriever
        self.given: list[list[str]] = []

    def __call__(self, articles: Sequence[Article]) -> Retriever:
        self.given.append([article.id for article in articles])
        return self.retriever


@pytest.fixture
def edited(database: Database) -> Iterator[KnowledgeArticle]:
    """An article whose revision the test bumps, committed, and put back afterwards."""
    with database.session() as session, session.begin():
        row = session.scalars(select(KnowledgeArticle).where(~KnowledgeArticle.retired)).first()
        assert row is not None
        article_id, revision = row.id, row.revision
    yield row
    with database.session() as session, session.begin():
        row = session.get_one(KnowledgeArticle, article_id)
        row.revision, row.retired = revision, False


def bump(database: Database, article_id: str, *, retire: bool = False) -> None:
    with database.session() as session, session.begin():
        row = session.get_one(KnowledgeArticle, article_id)
        row.revision += 1
        row.retired = retire


def test_rebuilt_only_when_the_version_changes(
    database: Database, retriever: Retriever, edited: KnowledgeArticle
) -> None:
    builder = CountingBuilder(retriever)
    knowledge = KnowledgeBase(database.session, build=builder)
    knowledge.ready(timeout=120)
    with database.session() as session:
        assert knowledge.suggest(session, QUESTION, "zh-CN") is not None
        knowledge.suggest(session, "how do I pay my water bill", None)
    assert knowledge.builds == 1
    assert len(builder.given[0]) >= 60

    bump(database, edited.id)
    knowledge.ready(timeout=120)
    assert knowledge.builds == 2


def test_retired_articles_are_not_indexed(
    database: Database, retriever: Retriever, edited: KnowledgeArticle
) -> None:
    builder = CountingBuilder(retriever)
    knowledge = KnowledgeBase(database.session, build=builder)
    bump(database, edited.id, retire=True)
    knowledge.ready(timeout=120)
    assert edited.id not in builder.given[-1]


def test_the_same_articles_are_built_once_per_process(articles: list[Article]) -> None:
    first = build_shared(articles)
    assert build_shared(list(articles)) is first


def test_a_question_never_waits_for_a_build_and_no_transaction_is_held_during_one(
    database: Database, retriever: Retriever
) -> None:
    # On SQLite every transaction holds the write gate, one lock for all processes: a build
    # inside one stalled every webhook of the hotline for its seconds.
    started, release = threading.Event(), threading.Event()

    def slow_build(articles: Sequence[Article]) -> Retriever:
        started.set()
        assert release.wait(timeout=60)
        return retriever

    knowledge = KnowledgeBase(database.session, build=slow_build)
    with database.session() as session:
        assert knowledge.suggest(session, QUESTION, "zh-CN") is None  # not built yet: no answer
    assert started.wait(timeout=60)
    # While it builds, another transaction writes at once (on SQLite: the gate is free).
    with database.session() as session, session.begin():
        session.execute(select(KnowledgeArticle.id).limit(1))
    release.set()
    knowledge.ready(timeout=60)
    with database.session() as session:
        assert knowledge.suggest(session, QUESTION, "zh-CN") is not None
    assert knowledge.builds == 1


def test_a_build_in_the_background_before_the_first_question(
    database: Database, retriever: Retriever
) -> None:
    builder = CountingBuilder(retriever)
    knowledge = KnowledgeBase(database.session, build=builder)
    knowledge.build_in_background().join(timeout=120)
    assert knowledge.builds == 1

    with database.session() as session:
        assert knowledge.suggest(session, QUESTION, "zh-CN") is not None
    assert knowledge.builds == 1  # the question used the warm Retriever
