"""A call put through to a seat, end to end: a Korean caller presses 0 on the emulator's
switchboard and waits, an operator in headless Chromium takes a seat and sets themselves
available, the app rings their phone through Prism, the caller is put through and speaks, the
words appear on the seat page from the real Korean model, and the operator opens the case,
which a real worker texts to the caller. The switchboard's side alone is
tests/ivr/test_seats_end_to_end.py; the seat page against a fake phone system is test_seat.py."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from cases.models import CaseStatus, Seat, SeatStatus, utcnow
from emulator.streams import FRAME_BYTES
from emulator.switchboard import Caller, Leg, Phone, Switchboard
from hotline.db import Database
from hotline.wiring import Wiring
from ivr.prompts import Prompts
from tests.conftest import AUDIO, wait_until
from tests.support.browser import headless_chromium, screenshot
from tests.support.calls import GREET_IN, Lookups, fresh_mobile_number
from tests.support.flaky_proxy import FlakyProxy
from tests.support.seats import SeatAt, seat_row
from tests.support.staff import Account
from transcription.audio import decode_wav, pcm16_to_mulaw, resample
from transcription.quality import character_error_rate
from transcription.recognizer import StreamingTranscriber

pytestmark = pytest.mark.usefixtures("celery_worker", "quiet_queue")

# What the caller says once put through: "the street light outside city hall is broken; it is
# too dark at night" (tests/transcription/conftest.py SPOKEN).
SPEECH = (AUDIO / "ko_streetlight.wav").read_bytes()
# The small model makes little of espeak's Korean at telephone quality, and Vosk dithers, so
# two decodes of the same audio differ a little: the page must show what the streams process
# makes of the caller, not what was said (measured: CER 0.00-0.05 between two decodes).
MOST_CER = 0.3
# What the operator writes while they listen.
SUMMARY = "韩国游客反映：市政府门前路灯坏了，晚上很黑"


@pytest.fixture(scope="module")
def expected_words(wiring: Wiring) -> str:
    """What the live path makes of SPEECH: the μ-law 8 kHz frames a Media Stream carries,
    through the same streaming decoder, with the words so far as the page is told them."""
    audio = decode_wav(SPEECH)
    mulaw = pcm16_to_mulaw(resample(audio.samples, audio.sample_rate, 8000))
    transcriber = StreamingTranscriber(wiring.models.get("ko-KR"))
    for start in range(0, len(mulaw), FRAME_BYTES):
        transcriber.feed_mulaw(mulaw[start : start + FRAME_BYTES])
    words = transcriber.heard_so_far()
    transcriber.finish()
    assert words, "the model heard nothing in the fixture"
    return words


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    with headless_chromium(height=1600) as driver:
        yield driver


def sign_in(driver: WebDriver, live_server: str, account: Account) -> None:
    """Sign in through the form; an operator lands on the seat page."""
    driver.get(f"{live_server}/console/login")
    driver.find_element(By.ID, "username").send_keys(account.username)
    driver.find_element(By.ID, "password").send_keys(account.password)
    driver.find_element(By.ID, "login-submit").click()
    WebDriverWait(driver, 15).until(
        expected_conditions.presence_of_element_located((By.ID, "seat-address"))
    )


def text_of(driver: WebDriver, element_id: str) -> str | None:
    """An element's text, read in one step: the live stream replaces the call's part of the
    page a few times a second, so an element found first may be gone when its text is read."""
    text = driver.execute_script(
        "var element = document.getElementById(arguments[0]);"
        "return element ? element.innerText : null;",
        element_id,
    )
    return text if isinstance(text, str) else None


def position_announced(leg: Leg, prompts: Prompts, position: int) -> bool:
    """Whether the caller has heard their place in the queue (with any expected wait)."""
    before, _, after = prompts.texts["queue_position"].partition("{minutes}")
    expected = re.compile(
        re.escape(before.format(position=position)) + r"\d+" + re.escape(after), re.S
    )
    return any(expected.search(spoken.text) for spoken in list(leg.log.heard))


def heard_so_far(lookups: Lookups, call_sid: str) -> str | None:
    """The caller's words as the streams process last wrote them for the seat page."""
    entry = lookups.queue_entry(call_sid)
    return entry.live_text if entry is not None else None


def test_a_caller_put_through_to_an_operator_in_the_browser_gets_a_case_and_its_number(
    browser: WebDriver,
    live_server: str,
    board: Callable[..., Switchboard],
    operator_seat: Callable[..., SeatAt],
    make_account: Callable[..., Account],
    lookups: Lookups,
    twilio_api: FlakyProxy,
    database: Database,
    prompts: dict[str, Prompts],
    expected_words: str,
) -> None:
    # Another operator is writing up their last call for an hour: the line is staffed, so the
    # caller queues, and nobody is free to take them.
    writing_up = operator_seat()
    with database.session() as session, session.begin():
        row = session.get_one(Seat, writing_up.id)
        row.status, row.wrap_up_until = SeatStatus.WRAP_UP, utcnow() + timedelta(hours=1)

    operator = make_account("operator")
    address = fresh_mobile_number()
    citizen = fresh_mobile_number()
    # Both stay on the line until the test is done with the call.
    caller_talks, operator_talks = threading.Event(), threading.Event()
    switchboard = board({address: Phone(answer_after=2, talk=operator_talks)})
    try:
        # The operator signs in and gives the phone that rings them; the seat is signed out.
        sign_in(browser, live_server, operator)
        browser.find_element(By.ID, "seat-address").send_keys(address)
        browser.find_element(By.ID, "seat-address-save").click()
        WebDriverWait(browser, 15).until(
            expected_conditions.presence_of_element_located((By.ID, "seat-set-available"))
        )

        # A Korean caller presses 0 and hears their place in the queue.
        caller = switchboard.call(
            Caller(
                inputs=[*GREET_IN["ko-KR"], "0"],
                from_number=citizen,
                speak=SPEECH,
                talk=caller_talks,
            )
        )
        wait_until(
            lambda: position_announced(caller, prompts["ko-KR"], 1),
            timeout=20,
            what="the caller to hear they are first in the queue",
        )
        # Nobody has rung the operator yet. (Only this operator's calls count: a ring job an
        # earlier test queued with a countdown may still place a call to its own seat.)
        assert caller.queue_result == "" and rung(switchboard, address) == []

        # The operator sets themselves available: their phone rings, answers, and the caller
        # is put through; the page reloads itself with the call and the case form.
        browser.find_element(By.ID, "seat-set-available").click()
        wait = WebDriverWait(browser, 30)
        wait.until(expected_conditions.presence_of_element_located((By.ID, "seat-case-form")))
        assert text_of(browser, "seat-caller-number") == citizen
        assert caller.bridge is not None

        # The caller's words, decoded live, appear without a reload.
        wait.until(
            lambda driver: (
                (shown := text_of(driver, "seat-transcript"))
                and character_error_rate(expected_words, shown) <= MOST_CER
            )
        )
        # ...and they are exactly the words the streams process wrote for this caller.
        wait.until(
            lambda driver: (
                text_of(driver, "seat-transcript") == heard_so_far(lookups, caller.call_sid)
            )
        )
        screenshot(browser, "seat-end-to-end-live-words")

        # The form starts from the caller's words; the operator writes over them (select all,
        # then type, in one command: the words are refilled until the field is typed in).
        summary = browser.find_element(By.ID, "seat-case-summary")
        wait.until(lambda _: summary.get_attribute("value"))
        summary.send_keys(Keys.CONTROL, "a", Keys.NULL, SUMMARY)
        Select(browser.find_element(By.ID, "seat-case-category")).select_by_value("streetlight")
        Select(browser.find_element(By.ID, "seat-case-department")).select_by_value("urban_mgmt")
        Select(browser.find_element(By.ID, "seat-case-urgency")).select_by_value("normal")
        browser.find_element(By.ID, "seat-case-submit").click()
        wait.until(expected_conditions.presence_of_element_located((By.ID, "seat-case-number")))
        digits = browser.find_elements(By.CSS_SELECTOR, "#seat-case-number .digit")
        number = "".join(digit.text for digit in digits)
        screenshot(browser, "seat-end-to-end-case-number")

        case = lookups.case_of(caller.call_sid)
        assert case.number == number
        assert case.owner == operator.username
        assert (case.status, case.department_code, case.category_code) == (
            CaseStatus.ASSIGNED,
            "urban_mgmt",
            "streetlight",
        )
        assert case.caller_number == citizen and case.locale == "ko-KR"
        opened = [event for event in case.events if event.kind == "opened_at_seat"]
        assert opened and opened[0].data["summary"] == SUMMARY

        # The worker texts the caller their case number.
        texts = wait_until(
            lambda: twilio_api.messages_to(citizen), timeout=30, what="the case number by SMS"
        )
        assert number in texts[0]["form"]["Body"]
    finally:
        caller_talks.set()
        operator_talks.set()
    assert switchboard.wait_idle(timeout=600), "the call did not end"  # clock seconds
    assert caller.queue_result == "bridged"
    (seat_leg,) = rung(switchboard, address)
    assert seat_leg.bridge is caller.bridge
    seat = seat_row(database, writing_up.id)
    assert seat.status == SeatStatus.WRAP_UP  # the other operator was never rung


def rung(switchboard: Switchboard, address: str) -> list[Leg]:
    """The calls the app placed to this phone."""
    return [leg for leg in switchboard.outbound() if leg.to == address]
