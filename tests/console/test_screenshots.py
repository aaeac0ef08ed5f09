"""Screenshots of the pages people use most, at a desktop's width and a phone's, for the
README (docs/screenshots/, refreshed with `make screenshots`) and CI's artefacts: the desk's
triage queue, a department's inbox, a case page and the disclosure page. Each page is checked
to fit the phone's width (no sideways scrolling of the page itself)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from hotline.db import Database
from tests.console.test_browser import sign_in, wait_for
from tests.public_site.test_charts_browser import drawn_charts
from tests.support.browser import headless_chromium, screenshot
from tests.support.factories import make_case
from tests.support.staff import Account

WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}


def assert_fits(driver: WebDriver, what: str) -> None:
    """The page itself does not scroll sideways (a wide table may, inside itself)."""
    overflow = driver.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 1, f"{what} scrolls sideways by {overflow}px"


@pytest.mark.parametrize("device", list(WIDTHS))
def test_screenshots_of_the_desk_an_inbox_a_case_and_the_disclosure_page(
    device: str,
    live_server: str,
    database: Database,
    make_account: Callable[..., Account],
) -> None:
    width, height = WIDTHS[device]
    with database.session() as session, session.begin():
        number = make_case(session, department_code="water", category_code="water_supply").number
        make_case(
            session, department_code="hotline_office", text="我想问一下这个怎么办", triage=True
        )
    shots = []
    with headless_chromium(width=width, height=height) as driver:
        sign_in(driver, live_server, make_account("dispatcher"))
        driver.get(f"{live_server}/console/triage")
        wait_for(driver, "triage-queue")
        shots.append(screenshot(driver, f"{device}-desk-triage"))
        assert_fits(driver, "the triage queue")
        driver.get(f"{live_server}/console/cases/{number}")
        wait_for(driver, "case-title")
        shots.append(screenshot(driver, f"{device}-case-page"))
        assert_fits(driver, "the case page")
        driver.delete_all_cookies()
        sign_in(driver, live_server, make_account("department", "water"))
        wait_for(driver, "inbox")
        shots.append(screenshot(driver, f"{device}-department-inbox"))
        assert_fits(driver, "the inbox")
        driver.get(f"{live_server}/disclosure")
        wait_for(driver, "main")
        # The charts, once drawn, rather than the page's heading.
        drawn_charts(driver, 6)
        driver.execute_script("document.getElementById('disclosure-filters').scrollIntoView()")
        shots.append(screenshot(driver, f"{device}-disclosure"))
        assert_fits(driver, "the disclosure page")
    assert all(path.stat().st_size > 10_000 for path in shots)  # real pictures, not blanks
