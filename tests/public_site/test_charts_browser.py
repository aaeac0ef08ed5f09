"""The charts in a real browser (headless Chromium): Apache ECharts, bundled from npm into our own
/static/charts.js, draws every chart of the disclosure page and of the console's service-level
page, on a desktop and on a phone, under each page's Content-Security-Policy; without
JavaScript the figures stay hidden and the tables, which hold the same figures, stand."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from selenium.webdriver import Chrome
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from hotline.db import Database
from tests.console.test_browser import sign_in, wait_for
from tests.console.test_service_level import add_calls
from tests.public_site.test_public import caller_phone, committed_case
from tests.support.browser import SCREENSHOTS, headless_chromium
from tests.support.staff import Account

PHONE = (390, 844)
DESKTOP = (1280, 900)

# How much of a drawn chart's canvas is not background: bars and lines, axes, labels. An empty
# canvas (ECharts started, nothing drawn) has none.
INKED_SHARE = """
const canvas = arguments[0].querySelector("canvas");
if (!canvas) { return 0; }
const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
let inked = 0;
for (let i = 3; i < data.length; i += 4) { if (data[i] > 0) { inked += 1; } }
return inked / (canvas.width * canvas.height);
"""


def drawn_charts(driver: Chrome, expected: int) -> list[Any]:
    """Wait until the page's script has drawn `expected` charts; their canvases' boxes."""
    WebDriverWait(driver, 20).until(
        lambda d: (
            len(d.find_elements(By.CSS_SELECTOR, ".chart-canvas[data-drawn=true]")) == expected
        )
    )
    return driver.find_elements(By.CSS_SELECTOR, ".chart-canvas")


def assert_drawn_here_and_legible(driver: Chrome, expected: int, width: int, name: str) -> None:
    # The page's width: the window's, less a scrollbar on a desktop.
    viewport = driver.execute_script("return document.documentElement.clientWidth")
    assert width - 20 <= viewport <= width
    boxes = drawn_charts(driver, expected)
    assert len(boxes) == expected
    for box in boxes:
        figure = box.find_element(By.XPATH, "./ancestor::figure")
        assert figure.is_displayed(), figure.get_attribute("id")
        assert box.get_attribute("role") == "img" and box.get_attribute("aria-label")
        inked = driver.execute_script(INKED_SHARE, box)
        # Drawn (more than the odd pixel), and not a box filled with one colour.
        assert 0.01 < inked < 0.6, (figure.get_attribute("id"), inked)
        # Every chart fits the screen it is read on: nothing scrolls sideways on a phone.
        assert box.rect["x"] >= 0 and box.rect["x"] + box.rect["width"] <= viewport
        # Each chart as the reader sees it, for a person to look at (CI keeps the artefacts).
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        driver.execute_script("arguments[0].scrollIntoView()", figure)
        figure.screenshot(str(SCREENSHOTS / f"{name}-{figure.get_attribute('id')}.png"))
    assert driver.execute_script("return document.documentElement.scrollWidth") <= viewport
    # Every script came from this site; the browser refused nothing and nothing failed.
    origin = urlsplit(driver.current_url).netloc
    sources = [s.get_attribute("src") for s in driver.find_elements(By.TAG_NAME, "script")]
    assert sources and all(urlsplit(src).netloc == origin for src in sources), sources
    # The console's errors: a refused script or style (CSP), a failed load, an exception.
    console: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    assert [entry for entry in console if entry["level"] == "SEVERE"] == []


@pytest.mark.parametrize(("width", "height"), [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_echarts_draws_the_disclosure_pages_charts_from_this_site(
    width: int, height: int, live_server: str, database: Database
) -> None:
    committed_case(database, caller_number=caller_phone(), text="路灯不亮", reply="已修复")
    with headless_chromium(width=width, height=height) as driver:
        driver.get(f"{live_server}/disclosure?lang=zh-CN&weeks=6")
        wait_for(driver, "summary-table")

        # Volume and rates per week and per department, contacts and the direct answers.
        assert_drawn_here_and_legible(driver, 6, width, f"disclosure-{width}")


def test_without_javascript_the_tables_stand_in_for_the_charts(
    live_server: str, database: Database
) -> None:
    committed_case(database, caller_number=caller_phone(), text="路灯不亮", reply="已修复")
    with headless_chromium(width=PHONE[0], height=PHONE[1], javascript=False) as driver:
        driver.get(f"{live_server}/disclosure?lang=zh-CN")
        wait_for(driver, "summary-table")

        figures = driver.find_elements(By.CSS_SELECTOR, "figure.chart")
        assert len(figures) == 6
        # No empty boxes where the charts would be; the figures are in the tables.
        assert not any(figure.is_displayed() for figure in figures)
        assert driver.find_element(By.ID, "summary-table").is_displayed()
        assert driver.find_element(By.ID, "weekly-table").is_displayed()


@pytest.mark.parametrize(("width", "height"), [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_echarts_draws_the_service_level_charts_for_a_supervisor(
    width: int,
    height: int,
    live_server: str,
    database: Database,
    make_account: Callable[..., Account],
) -> None:
    add_calls(database)
    with headless_chromium(width=width, height=height) as driver:
        sign_in(driver, live_server, make_account("supervisor"))
        driver.get(f"{live_server}/console/service-level")
        wait_for(driver, "today-table")

        # Rates, waits and calls, for today and for the last days.
        assert_drawn_here_and_legible(driver, 6, width, f"service-level-{width}")
