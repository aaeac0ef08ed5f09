"""A visitor reports a problem in a real browser (headless Chromium), in Chinese with JavaScript
off and in English with it on: description, place, a photo, a mobile number proved by the code
texted to it (read where it reached Twilio's mock), and the case number page."""

from __future__ import annotations

from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait
from sqlalchemy import select

from cases.models import Attachment, Case, Intake
from hotline.db import Database
from tests.console.test_browser import wait_for
from tests.public_site.test_report_form import mobile, texted_code, tiny_png
from tests.support.browser import headless_chromium, screenshot
from tests.support.flaky_proxy import FlakyProxy


@pytest.mark.parametrize(
    ("lang", "javascript", "description"),
    [
        ("zh-CN", False, "时庄街道的路灯坏了三天，晚上很黑"),
        ("en-US", True, "The street light outside the school has been dark for three days"),
    ],
    ids=["zh-CN-without-javascript", "en-US-with-javascript"],
)
def test_a_visitor_reports_with_a_photo_and_a_proved_phone(
    lang: str,
    javascript: bool,
    description: str,
    live_server: str,
    database: Database,
    twilio_api: FlakyProxy,
    tmp_path: Path,
) -> None:
    photo = tmp_path / "light.png"
    photo.write_bytes(tiny_png())
    phone = mobile()
    name = f"report-{lang}-{'js' if javascript else 'nojs'}"
    with headless_chromium(javascript=javascript) as browser:
        browser.get(f"{live_server}/report?lang={lang}")
        wait_for(browser, "report-form")
        assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == lang
        browser.find_element(By.ID, "description").send_keys(description)
        Select(browser.find_element(By.ID, "place")).select_by_value("shizhuang")
        browser.find_element(By.ID, "address").send_keys("No. 12 Chunqiu Road")
        browser.find_element(By.ID, "photo").send_keys(str(photo))
        browser.find_element(By.ID, "phone").send_keys(phone)
        assert not browser.find_element(By.ID, "code-field").is_displayed()
        browser.find_element(By.ID, "send_code").click()

        WebDriverWait(browser, 15).until(
            expected_conditions.visibility_of_element_located((By.ID, "code-field"))
        )
        status = browser.find_element(By.ID, "code-status").text
        assert phone in status
        if javascript:
            # Asked in place: the page was not sent, so the chosen file is still in its field.
            assert browser.find_element(By.ID, "photo").get_attribute("value")
            assert not browser.find_elements(By.ID, "held-photo")
        else:
            # The page came back with everything kept, the photo held on the server.
            assert browser.find_element(By.ID, "description").get_attribute("value") == description
            assert browser.find_elements(By.ID, "held-photo")
        screenshot(browser, f"{name}-1-code")

        browser.find_element(By.ID, "code").send_keys(texted_code(twilio_api, f"+86{phone}"))
        browser.find_element(By.ID, "report-submit").click()
        wait_for(browser, "case-number")
        screenshot(browser, f"{name}-2-sent")
        number = browser.find_element(By.ID, "case-number").text
        assert browser.find_elements(By.ID, "follow-with-phone")

    with database.session() as session:
        case = session.scalars(select(Case).where(Case.number == number)).one()
        assert (case.intake, case.locale, case.caller_number) == (Intake.WEB, lang, f"+86{phone}")
        assert case.address == "时庄街道 No. 12 Chunqiu Road"
        stored = session.scalars(select(Attachment).where(Attachment.case_id == case.id)).one()
        assert (stored.content_type, stored.size) == ("image/png", len(tiny_png()))
