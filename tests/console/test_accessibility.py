"""Every console page (each role) and every public page, checked by axe-core (from npm, run in
headless Chromium): no serious or critical violation. What axe found, page by page, is written
to test-artifacts/axe.json for the record."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from hotline.config import PROJECT_ROOT
from tests.console.test_browser import sign_in
from tests.console.test_no_developer_words import lived_case, pages_for  # noqa: F401
from tests.support.browser import headless_chromium
from tests.support.staff import Account

AXE = PROJECT_ROOT / "node_modules" / "axe-core" / "axe.min.js"
REPORT = PROJECT_ROOT / "test-artifacts" / "axe.json"
BLOCKING = {"serious", "critical"}
PUBLIC_PAGES = ["/", "/lookup", "/disclosure", "/report", "/faq"]


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    with headless_chromium() as driver:
        driver.set_script_timeout(60)
        yield driver


@pytest.fixture(scope="module")
def findings() -> Iterator[dict[str, Any]]:
    """Every page's outcome, kept in test-artifacts/axe.json when the module is done."""
    found: dict[str, Any] = {}
    yield found
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(REPORT.read_text()) if REPORT.exists() else {}
    REPORT.write_text(json.dumps({**previous, **found}, ensure_ascii=False, indent=2))


def axe_violations(driver: WebDriver) -> list[dict[str, Any]]:
    """axe-core's violations on the page the browser shows."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `make install` (npm ci)")
    driver.execute_script(Path(AXE).read_text())
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map(n => n.target.join(' '))}))))"
        ".catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));"
    )
    return list(result)


def check(driver: WebDriver, url: str, name: str, found: dict[str, Any]) -> list[str]:
    driver.get(url)
    violations = axe_violations(driver)
    found[name] = {
        "violations": len(violations),
        "by_impact": {
            impact: sum(1 for v in violations if v["impact"] == impact)
            for impact in ("critical", "serious", "moderate", "minor")
        },
        "rules": violations,
    }
    return [
        f"{name}: {v['impact']} {v['id']} ({v['help']}) at {v['nodes'][:3]}"
        for v in violations
        if v["impact"] in BLOCKING
    ]


@pytest.mark.parametrize("role", ["dispatcher", "department", "supervisor", "admin", "operator"])
def test_no_console_page_has_a_serious_or_critical_accessibility_violation(
    role: str,
    lived_case: str,  # noqa: F811
    browser: WebDriver,
    live_server: str,
    make_account: Callable[..., Account],
    findings: dict[str, Any],
) -> None:
    browser.delete_all_cookies()
    sign_in(browser, live_server, make_account(role, "water" if role == "department" else None))
    if role == "operator":
        urls = ["/console/seat", "/console/search"]
    else:
        browser.get(f"{live_server}/console/knowledge")
        listed = re.search(r'data-article="([^"]+)"', browser.page_source)
        assert listed
        urls = pages_for(role, lived_case, listed.group(1))
    blocking: list[str] = []
    for url in urls:
        blocking += check(browser, f"{live_server}{url}", f"{role} {url}", findings)
    assert not blocking, "\n".join(blocking)


def test_no_public_page_has_a_serious_or_critical_accessibility_violation(
    browser: WebDriver, live_server: str, findings: dict[str, Any]
) -> None:
    browser.delete_all_cookies()
    blocking: list[str] = []
    for url in PUBLIC_PAGES:
        blocking += check(browser, f"{live_server}{url}", f"public {url}", findings)
    assert not blocking, "\n".join(blocking)


def test_axe_finds_what_it_should_on_a_page_made_to_fail(browser: WebDriver) -> None:
    # The control: an image without a text alternative and an unlabelled field are caught.
    browser.get(
        "data:text/html;charset=utf-8,<html lang=zh-CN><title>t</title><main>"
        "<img src=x.png><input type=text></main></html>"
    )
    found = {(v["id"], v["impact"]) for v in axe_violations(browser)}
    assert ("image-alt", "critical") in found
    assert any(rule == "label" for rule, _ in found)
