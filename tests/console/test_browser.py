"""The console in a real browser: Debian's headless Chromium, driven by Selenium, against the
app served over real HTTP. Screenshots of each step go to test-artifacts/screenshots/."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select

from cases import knowledge_links, lifecycle, staff
from cases.models import Case, CaseStatus, Department
from hotline.db import Database
from hotline.wiring import Wiring
from tests.support.browser import headless_chromium, screenshot
from tests.support.factories import make_case
from tests.support.receivers import make_department
from tests.support.staff import Account, store_recording

# What a wait meets while a submitted form's page is replaced by the next.
RELOADING = (StaleElementReferenceException, NoSuchElementException)
# Far in the past, so these cases head the desk's queues, which are sorted by deadline.
EARLY = datetime(2001, 1, 1, tzinfo=UTC)


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    with headless_chromium() as driver:
        yield driver


def wait_for(driver: WebDriver, element_id: str) -> None:
    """Wait until the element is on the page (after a click's redirect has landed)."""
    WebDriverWait(driver, 15).until(
        expected_conditions.presence_of_element_located((By.ID, element_id))
    )


def sign_in(driver: WebDriver, live_server: str, account: Account) -> None:
    """Sign in through the form, as a person would."""
    driver.get(f"{live_server}/console/login")
    driver.find_element(By.ID, "username").send_keys(account.username)
    driver.find_element(By.ID, "password").send_keys(account.password)
    driver.find_element(By.ID, "login-submit").click()
    wait_for(driver, "logout")


def read_case(database: Database, number: str) -> Case:
    with database.session() as session:
        case = session.scalars(select(Case).where(Case.number == number)).one()
        _ = case.events
        return case


def test_department_staff_sign_in_accept_and_resolve_a_case(
    browser: WebDriver,
    live_server: str,
    database: Database,
    make_account: Callable[..., Account],
) -> None:
    with database.session() as session, session.begin():
        # A department of this test's own: its inbox holds this one case.
        code = make_department(session)
        number = make_case(session, department_code=code).number
    account = make_account("department", code)

    sign_in(browser, live_server, account)
    wait_for(browser, f"case-row-{number}")
    screenshot(browser, "department-1-inbox")
    browser.find_element(By.CSS_SELECTOR, f"#case-row-{number} .case-link").click()

    wait_for(browser, "accept")
    screenshot(browser, "department-2-case")
    browser.find_element(By.ID, "accept").click()
    wait_for(browser, "resolve-reply")
    assert read_case(database, number).status == CaseStatus.ACCEPTED

    browser.find_element(By.ID, "resolve-reply").send_keys("路灯已更换，今晚起恢复照明。")
    screenshot(browser, "department-3-reply")
    browser.find_element(By.ID, "resolve").click()
    # The resolve form is gone once the case is resolved and the page reloaded.
    WebDriverWait(browser, 15, ignored_exceptions=RELOADING).until(
        lambda driver: not driver.find_elements(By.ID, "resolve")
    )
    screenshot(browser, "department-4-resolved")

    case = read_case(database, number)
    assert case.status == CaseStatus.RESOLVED
    assert case.resolution == "路灯已更换，今晚起恢复照明。"
    assert [e.actor for e in case.events if e.kind in ("accepted", "resolved")] == [
        account.username,
        account.username,
    ]


def test_a_dispatcher_triages_a_case_and_rules_on_a_send_back(
    browser: WebDriver,
    live_server: str,
    database: Database,
    make_account: Callable[..., Account],
) -> None:
    with database.session() as session, session.begin():
        unsure = make_case(
            session,
            department_code="hotline_office",
            category_code="other",
            text="喂那个书院街道那边晚上黑乎乎的也不知道该找谁",
            triage=True,
            opened_at=EARLY,
            deadline_at=EARLY + timedelta(days=1),
        ).number
        returned = make_case(
            session,
            department_code="water",
            category_code="water_supply",
            opened_at=EARLY,
            deadline_at=EARLY + timedelta(days=1),
        )
        water = staff.department_actor(session.get_one(Department, "water"))
        lifecycle.send_back(session, case=returned, actor=water, reason="小区内部管道，不归我们")
        returned_number = returned.number
    dispatcher = make_account("dispatcher")

    sign_in(browser, live_server, dispatcher)
    browser.get(f"{live_server}/console/triage")
    wait_for(browser, f"triage-{unsure}")
    screenshot(browser, "dispatcher-1-triage-queue")
    Select(browser.find_element(By.ID, f"triage-{unsure}-category")).select_by_value("streetlight")
    Select(browser.find_element(By.ID, f"triage-{unsure}-department")).select_by_value("urban_mgmt")
    Select(browser.find_element(By.ID, f"triage-{unsure}-urgency")).select_by_value("normal")
    browser.find_element(By.ID, f"triage-{unsure}").click()
    WebDriverWait(browser, 15, ignored_exceptions=RELOADING).until(
        lambda driver: not driver.find_elements(By.ID, f"triage-{unsure}")
    )
    screenshot(browser, "dispatcher-2-triaged")
    case = read_case(database, unsure)
    assert (case.status, case.category_code, case.department_code) == (
        CaseStatus.ASSIGNED,
        "streetlight",
        "urban_mgmt",
    )
    assert case.deadline_at is not None and case.deadline_at > datetime.now(UTC)

    browser.get(f"{live_server}/console/sent-back")
    wait_for(browser, f"ruling-{returned_number}")
    screenshot(browser, "dispatcher-3-sent-back-queue")
    Select(browser.find_element(By.ID, f"ruling-{returned_number}-department")).select_by_value(
        "housing"
    )
    browser.find_element(By.ID, f"ruling-{returned_number}-ruling").send_keys(
        "小区内部供水管道属物业维修范围，由住建局督促物业处理"
    )
    browser.find_element(By.ID, f"ruling-{returned_number}").click()
    WebDriverWait(browser, 15, ignored_exceptions=RELOADING).until(
        lambda driver: not driver.find_elements(By.ID, f"ruling-{returned_number}")
    )
    screenshot(browser, "dispatcher-4-ruled")
    case = read_case(database, returned_number)
    assert (case.status, case.department_code) == (CaseStatus.ASSIGNED, "housing")
    ruling = next(e for e in case.events if e.kind == "ruling")
    assert ruling.actor == dispatcher.username and ruling.data["upheld"] is True


def test_the_desk_finds_a_callers_cases_by_phone_and_opens_one(
    browser: WebDriver,
    live_server: str,
    database: Database,
    make_account: Callable[..., Account],
) -> None:
    phone = "+86137" + str(uuid.uuid4().int)[:8]
    with database.session() as session, session.begin():
        earlier = make_case(session, caller_number=phone, opened_at=EARLY)
        latest = make_case(session, caller_number=phone)
        numbers = earlier.number, latest.number
    sign_in(browser, live_server, make_account("dispatcher"))

    browser.find_element(By.ID, "nav-search").click()
    wait_for(browser, "search-phone")
    # Typed as a caller reads it out: no country code, in groups.
    local = phone.removeprefix("+86")
    browser.find_element(By.ID, "search-phone").send_keys(f"{local[:3]} {local[3:7]} {local[7:]}")
    browser.find_element(By.ID, "search-submit").click()
    wait_for(browser, "search-results")
    screenshot(browser, "desk-search-by-phone")
    rows = browser.find_elements(By.CSS_SELECTOR, "#search-results .case-row")
    assert [row.get_attribute("data-case") for row in rows] == [numbers[1], numbers[0]]
    assert phone in browser.find_element(By.ID, f"case-row-{numbers[1]}").text

    browser.find_element(By.CSS_SELECTOR, f"#case-row-{numbers[1]} .case-link").click()
    wait_for(browser, "caller-cases")
    # The case page lists the caller's earlier case.
    assert browser.find_elements(By.ID, f"caller-case-{numbers[0]}")


def test_the_desk_writes_the_work_order_while_listening_to_the_call(
    browser: WebDriver,
    live_server: str,
    database: Database,
    wiring: Wiring,
    make_account: Callable[..., Account],
) -> None:
    with database.session() as session, session.begin():
        code = make_department(session)
        case = make_case(session, department_code=code, text="那个 路灯 嗯 坏了")
        recording = store_recording(
            session, case=case, recordings_dir=wiring.settings.recordings_dir
        )
        number, recording_id = case.number, recording.id
    sign_in(browser, live_server, make_account("dispatcher"))
    browser.get(f"{live_server}/console/cases/{number}")
    wait_for(browser, "work-order-text")

    # The recording plays, from the page, while the desk types under it.
    player = browser.find_element(By.ID, f"recording-{recording_id}")
    # A click on the player's play button, at its left end, as the desk would.
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", player)
    ActionChains(browser).move_to_element_with_offset(
        player, -player.size["width"] // 2 + 20, 0
    ).click().perform()
    WebDriverWait(browser, 15, ignored_exceptions=RELOADING).until(
        lambda driver: driver.execute_script("return arguments[0].currentTime > 0", player)
    )
    text = browser.find_element(By.ID, "work-order-text")
    assert text.get_attribute("value") == "那个 路灯 嗯 坏了"  # the transcript, to correct
    text.clear()
    text.send_keys("鲁城街道春秋路路灯不亮，请城管局维修。")
    assert not browser.execute_script("return arguments[0].paused", player)  # still playing
    screenshot(browser, "desk-work-order-while-listening")
    browser.find_element(By.ID, "work-order").click()

    wait_for(browser, "case-work-order")
    shown = browser.find_element(By.ID, "case-work-order").text
    assert shown == "鲁城街道春秋路路灯不亮，请城管局维修。"
    assert read_case(database, number).work_order == "鲁城街道春秋路路灯不亮，请城管局维修。"


def test_the_desk_answers_a_consultation_from_the_knowledge_base_and_closes_it(
    browser: WebDriver,
    live_server: str,
    database: Database,
    make_account: Callable[..., Account],
) -> None:
    with database.session() as session, session.begin():
        case = make_case(
            session,
            department_code="hotline_office",
            category_code="consultation",
            text="热线都管什么事",
            triage=True,
            deadline_at=EARLY,
        )
        knowledge_links.attach_article(
            session, case=case, article_id="hotline-service", confidence=0.87
        )
        number = case.number
    sign_in(browser, live_server, make_account("dispatcher"))

    # From the triage queue, where the consultation waits, to its page.
    browser.find_element(By.ID, "nav-triage").click()
    wait_for(browser, f"triage-item-{number}")
    browser.find_element(By.CSS_SELECTOR, f"#triage-item-{number} .case-link").click()
    wait_for(browser, "answer-at-once")
    assert "马上就办一线通能办什么" in browser.find_element(By.ID, "article-section").text
    screenshot(browser, "desk-consultation-answer")
    browser.find_element(By.ID, "answer-at-once").click()

    WebDriverWait(browser, 15, ignored_exceptions=RELOADING).until(
        lambda driver: driver.find_element(By.ID, "case-status").text == "已结案"
    )
    closed = read_case(database, number)
    assert closed.status == CaseStatus.CLOSED
    assert closed.resolution  # the article's answer, in the caller's language
    assert [event.kind for event in closed.events][-1] == "answered_at_once"


def test_a_department_asks_for_more_time_and_the_desk_approves_it(
    browser: WebDriver,
    live_server: str,
    database: Database,
    make_account: Callable[..., Account],
) -> None:
    with database.session() as session, session.begin():
        code = make_department(session)
        case = make_case(session, department_code=code, deadline_at=EARLY)
        number = case.number
    sign_in(browser, live_server, make_account("department", code))
    browser.get(f"{live_server}/console/cases/{number}")
    wait_for(browser, "extension-form")
    days = browser.find_element(By.ID, "extension-working_days")
    days.clear()
    days.send_keys("5")
    browser.find_element(By.ID, "extension-reason").send_keys("需协调供电公司停电检修")
    screenshot(browser, "department-extension-request")
    browser.find_element(By.ID, "extension").click()
    wait_for(browser, "case-extension")
    asked = read_case(database, number)
    assert asked.extension_until is not None and asked.deadline_at == EARLY
    browser.find_element(By.ID, "logout").click()
    wait_for(browser, "username")  # signed out, on the sign-in page

    sign_in(browser, live_server, make_account("dispatcher"))
    browser.find_element(By.ID, "nav-extension-requests").click()
    wait_for(browser, f"case-row-{number}")
    browser.find_element(By.CSS_SELECTOR, f"#case-row-{number} .case-link").click()
    wait_for(browser, "extension-ruling-form")
    assert "需协调供电公司停电检修" in browser.find_element(By.ID, "extension-ruling-form").text
    Select(browser.find_element(By.ID, "extension-ruling-decision")).select_by_value("approve")
    screenshot(browser, "desk-extension-ruling")
    browser.find_element(By.ID, "extension-ruling").click()
    WebDriverWait(browser, 15, ignored_exceptions=RELOADING).until(
        lambda driver: not driver.find_elements(By.ID, "case-extension")
    )
    approved = read_case(database, number)
    assert approved.deadline_at == asked.extension_until
    assert approved.extension_until is None


def tab_to(driver: WebDriver, matches: Callable[[Any], bool], *, limit: int = 120) -> None:
    """Press Tab until the focused element matches, as a keyboard user moves through a page."""
    for _ in range(limit):
        ActionChains(driver).send_keys(Keys.TAB).perform()
        if matches(driver.switch_to.active_element):
            return
    pytest.fail("never reached by the keyboard")


def test_a_department_works_a_case_with_the_keyboard_alone(
    browser: WebDriver,
    live_server: str,
    database: Database,
    make_account: Callable[..., Account],
) -> None:
    with database.session() as session, session.begin():
        code = make_department(session)
        number = make_case(session, department_code=code).number
    sign_in(browser, live_server, make_account("department", code))
    wait_for(browser, f"case-row-{number}")

    tab_to(browser, lambda element: element.text == number)
    ActionChains(browser).send_keys(Keys.ENTER).perform()
    wait_for(browser, "accept")
    tab_to(browser, lambda element: element.get_attribute("id") == "accept")
    ActionChains(browser).send_keys(Keys.ENTER).perform()
    wait_for(browser, "resolve-reply")
    assert read_case(database, number).status == CaseStatus.ACCEPTED

    tab_to(browser, lambda element: element.get_attribute("id") == "resolve-reply")
    ActionChains(browser).send_keys("已修复，请留意。").perform()
    # Past the optional attachment, to the button under the reply.
    ActionChains(browser).send_keys(Keys.TAB).perform()
    assert browser.switch_to.active_element.get_attribute("id") == "resolve-attachment"
    ActionChains(browser).send_keys(Keys.TAB).perform()
    assert browser.switch_to.active_element.get_attribute("id") == "resolve"
    ActionChains(browser).send_keys(Keys.ENTER).perform()
    WebDriverWait(browser, 15, ignored_exceptions=RELOADING).until(
        lambda driver: read_case(database, number).status == CaseStatus.RESOLVED
    )


def test_a_co_handled_case_is_resolved_by_both_departments(
    browser: WebDriver,
    live_server: str,
    database: Database,
    make_account: Callable[..., Account],
) -> None:
    with database.session() as session, session.begin():
        lead, helper = make_department(session), make_department(session)
        number = make_case(session, department_code=lead).number

    def as_user(role: str, code: str | None = None) -> None:
        browser.delete_all_cookies()
        sign_in(browser, live_server, make_account(role, code))
        browser.get(f"{live_server}/console/cases/{number}")

    as_user("dispatcher")
    wait_for(browser, "assist-form")
    Select(browser.find_element(By.ID, "assist-department")).select_by_value(helper)
    browser.find_element(By.ID, "assist-task").send_keys("请排查地下管网是否渗漏")
    browser.find_element(By.ID, "assist").click()
    wait_for(browser, f"assist-{helper}")

    as_user("department", helper)  # the assisting department does its part
    wait_for(browser, "assist-reply-form")
    browser.find_element(By.ID, "assist-reply-reply").send_keys("管网无渗漏，系楼内水管老化")
    screenshot(browser, "assisting-department-reply")
    browser.find_element(By.ID, "assist-reply").click()
    WebDriverWait(browser, 15, ignored_exceptions=RELOADING).until(
        lambda driver: "系楼内水管老化" in driver.find_element(By.ID, f"assist-{helper}").text
    )

    as_user("department", lead)  # the holder resolves, the part in hand
    wait_for(browser, "accept")
    browser.find_element(By.ID, "accept").click()
    wait_for(browser, "resolve-reply")
    browser.find_element(By.ID, "resolve-reply").send_keys("已更换楼内水管，供水恢复。")
    browser.find_element(By.ID, "resolve").click()
    WebDriverWait(browser, 15, ignored_exceptions=RELOADING).until(
        lambda driver: driver.find_element(By.ID, "case-status").text == "已办结"
    )
    resolved = read_case(database, number)
    assert resolved.status == CaseStatus.RESOLVED
    kinds = [event.kind for event in resolved.events]
    assert kinds.index("assist_replied") < kinds.index("resolved")
