"""Headless Chromium for browser tests: Debian's chromium driven by its own chromedriver.

Selenium is given the driver's path explicitly (its own driver download cannot work here), and
Chromium is started without background networking: this machine's network is closed, and
Chromium's calls home would otherwise fail noisily at every start.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

from hotline.config import PROJECT_ROOT

CHROMIUM = Path("/usr/bin/chromium")
# Headless Chromium will not make its window narrower than about 500 px; a phone is emulated
# instead (Chrome's device mode), at its own width and pixel density.
NARROWEST_WINDOW = 500
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = PROJECT_ROOT / "test-artifacts" / "screenshots"


class BrowserMissingError(RuntimeError):
    """Chromium or its driver is not installed (`make test` installs both)."""


@contextmanager
def headless_chromium(
    *, width: int = 1280, height: int = 900, javascript: bool = True
) -> Iterator[webdriver.Chrome]:
    """A fresh headless Chromium with an empty profile, closed afterwards; `javascript=False`
    turns scripts off, as a visitor who blocks them has it. A width below 500 px is a phone's."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            raise BrowserMissingError(f"{path} is missing: run `make install` (apt chromium)")
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--window-size={width},{height}",
        f"--user-data-dir={profile}",
        "--lang=zh-CN",
    ):
        options.add_argument(flag)
    if not javascript:
        options.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2}
        )
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    if width < NARROWEST_WINDOW:
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 2, "mobile": True},
        )
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(driver: WebDriver, name: str) -> Path:
    """Save a screenshot under test-artifacts/screenshots/ (kept by CI as an artefact)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{re.sub(r'[^a-zA-Z0-9_.-]+', '-', name)}.png"
    driver.save_screenshot(str(path))
    return path
