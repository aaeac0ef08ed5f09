"""Knowledge fixtures: the shipped articles and one Retriever built from them per session."""

from __future__ import annotations

import pytest

from knowledge.articles import Article, load_articles
from knowledge.retrieval import Retriever


@pytest.fixture(scope="session")
def articles() -> list[Article]:
    return load_articles()


@pytest.fixture(scope="session")
def retriever(articles: list[Article]) -> Retriever:
    return Retriever.build(articles)
