"""The public FAQ: the knowledge base's articles in use, by category, in Chinese, English and
Korean, with nothing about the staff who keep them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from hotline.db import Database
from knowledge import store

ARTICLE = "hotline-service"


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def desk_edited_article(database: Database) -> Iterator[str]:
    """A desk-written article of the own test, retired at the end."""
    article_id = f"test-faq-{uuid.uuid4().hex[:10]}"
    data = {
        "id": article_id,
        "category": "water_supply",
        "department": "water",
        "reviewed": "2026-12-01",
        "zh-CN": {
            "title": "停水了去哪里查通知",
            "answer": "计划停水会提前在水务公司网站和小区公告栏通知。",
            "details": "计划停水提前二十四小时通知；突发停水请拨打热线报修。",
            "questions": ["停水通知在哪看", "为什么停水了", "什么时候来水"],
        },
    }
    with database.session() as session, session.begin():
        store.create_article(session, data=data, editor="desk-secret-name", note="内部备注")
    yield article_id
    with database.session() as session, session.begin():
        store.retire_article(session, article_id=article_id, editor="desk", note="测试结束")


@pytest.mark.parametrize(
    ("lang", "title", "html_lang"),
    [
        (None, "马上就办一线通能办什么", "zh-CN"),
        ("zh-CN", "马上就办一线通能办什么", "zh-CN"),
        ("en-US", "What the Do-It-Now Line handles", "en-US"),
        ("ko-KR", "즉시처리 핫라인이 하는 일", "ko-KR"),
    ],
)
def test_the_faq_shows_the_articles_in_the_readers_language(
    client: FlaskClient, lang: str | None, title: str, html_lang: str
) -> None:
    response = client.get("/faq", query_string={"lang": lang} if lang else {})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert f'<html lang="{html_lang}">' in page
    assert f'id="faq-{ARTICLE}"' in page and title in page
    assert 'id="category-consultation"' in page
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]


def test_an_article_not_written_in_korean_is_shown_in_chinese(
    client: FlaskClient, desk_edited_article: str
) -> None:
    page = client.get("/faq?lang=ko-KR").get_data(as_text=True)
    assert f'id="faq-{desk_edited_article}"' in page
    assert "停水了去哪里查通知" in page


def test_the_faq_shows_no_staff_data_and_no_retired_article(
    client: FlaskClient, database: Database, desk_edited_article: str
) -> None:
    page = client.get("/faq").get_data(as_text=True)
    assert "停水了去哪里查通知" in page
    assert "desk-secret-name" not in page and "内部备注" not in page
    with database.session() as session, session.begin():
        store.retire_article(
            session, article_id=desk_edited_article, editor="desk", note="不再适用"
        )
    assert f'id="faq-{desk_edited_article}"' not in client.get("/faq").get_data(as_text=True)
    with database.session() as session, session.begin():
        store.restore_article(
            session, article_id=desk_edited_article, editor="desk", note="恢复以便清理"
        )


def test_every_public_page_links_the_faq(client: FlaskClient) -> None:
    assert 'id="nav-faq"' in client.get("/").get_data(as_text=True)
