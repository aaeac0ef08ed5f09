"""The desk edits a knowledge-base article in a real browser (headless Chromium): search,
open, change the answer with a note, and read who changed what in the history."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from hotline.db import Database
from knowledge import store
from tests.console.test_browser import sign_in, wait_for
from tests.console.test_knowledge import article_data
from tests.support.browser import headless_chromium, screenshot
from tests.support.staff import Account


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    with headless_chromium() as driver:
        yield driver


def test_the_desk_edits_an_article_in_the_browser_and_sees_it_in_the_history(
    browser: WebDriver,
    live_server: str,
    database: Database,
    make_account: Callable[..., Account],
) -> None:
    article_id = f"test-browser-{uuid.uuid4().hex[:10]}"
    with database.session() as session, session.begin():
        store.create_article(session, data=article_data(article_id), editor="seed", note="种子")
    desk = make_account("dispatcher")

    sign_in(browser, live_server, desk)
    browser.find_element(By.ID, "nav-knowledge").click()
    wait_for(browser, "knowledge-search")
    browser.find_element(By.ID, "q").send_keys("报修路灯打哪个")
    browser.find_element(By.ID, "knowledge-search-button").click()
    wait_for(browser, f"article-{article_id}")
    screenshot(browser, "knowledge-1-search")
    browser.find_element(By.CSS_SELECTOR, f"#article-{article_id} .article-link").click()

    wait_for(browser, "knowledge-edit-form")
    answer = browser.find_element(By.ID, "zh_CN-answer")
    answer.clear()
    answer.send_keys("请拨打热线说明路灯位置，城管局十二小时内修复。")
    browser.find_element(By.CSS_SELECTOR, "#knowledge-edit-form #note").send_keys("时限缩短")
    browser.find_element(By.ID, "knowledge-save").click()

    wait_for(browser, "revision-2")
    screenshot(browser, "knowledge-2-history")
    entry = browser.find_element(By.ID, "revision-2").text
    assert desk.username in entry and "时限缩短" in entry
    assert "十二小时内修复" in entry and "二十四小时内修复" in entry
    with database.session() as session:
        row = store.get_article(session, article_id)
        assert (row.revision, row.updated_by) == (2, desk.username)
