"""An emergency heard while the caller is still speaking interrupts the recording at once:
Twilio's REST call update (Prism, behind a proxy that records it) moves the call to the
emergency step, which keeps the case and puts the caller through."""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from twilio.base.exceptions import TwilioRestException

from cases.models import CaseStatus
from emulator import RecordingServer, Speak, TwilioEmulator
from hotline.wiring import Wiring
from ivr.interrupt import EmergencyWatch, twilio_call_redirect
from ivr.prompts import Prompts
from ivr.stream_decoder import LiveDecoder
from ivr.stream_server import StreamsServer
from tests.conftest import ACCOUNT_SID, AUDIO, AUTH_TOKEN, PUBLIC_BASE_URL, wait_until
from tests.support.calls import Lookups
from tests.support.flaky_proxy import FlakyProxy
from transcription.audio import decode_wav, pcm16_to_mulaw, resample
from transcription.models import LoadedModel
from transcription.recognizer import StreamingTranscriber, Transcript, engine_name

KOREAN = "3"
REPORT = (AUDIO / "ko_streetlight.wav").read_bytes()  # 4.7 s of a caller speaking
STEP = f"{PUBLIC_BASE_URL}/ivr/emergency?lang=ko-KR&kind=fire"


class HearsFireWhileSpeaking(StreamingTranscriber):
    """Stands in for the recogniser where the small Korean model cannot make out espeak-ng's
    Korean: what a caller reporting a fire is heard to say, segment by segment, as the audio
    arrives. The fire is named twice, early; everything around it (the socket, the decoding
    pool, the watch, Twilio's REST API, the webhooks) is real."""

    SEGMENTS = ((0.0, "여보세요"), (0.5, "불이 났어요"), (1.0, "연기가 많이 나요 불이 났어요"))

    def __init__(self, model: LoadedModel) -> None:
        super().__init__(model)
        self.model_name, self.seconds = model.name, 0.0

    def feed_mulaw(self, payload: bytes) -> None:
        self.seconds += len(payload) / 8000

    def heard_so_far(self) -> str:
        return " ".join(text for at, text in self.SEGMENTS if self.seconds >= at)

    def finish(self) -> Transcript:
        return Transcript(
            self.heard_so_far(), (), self.seconds, engine_name(), self.model_name, 0.01
        )


def updates_seen_by(proxy: FlakyProxy, call_sid: str) -> list[dict[str, object]]:
    """The call updates (POST .../Calls/{CallSid}.json) that reached Prism through the proxy."""
    return [
        entry
        for entry in list(proxy.forwarded)
        if entry["path"].endswith(f"/Calls/{call_sid}.json")
    ]


def call_updates(proxy: FlakyProxy) -> Callable[[str], str | None]:
    """What the emulator needs to follow a call update as Twilio would: the URL it names."""

    def redirected_to(call_sid: str) -> str | None:
        accepted = [e for e in updates_seen_by(proxy, call_sid) if int(str(e["status"])) < 300]
        return str(accepted[-1]["form"]["Url"]) if accepted else None  # type: ignore[index]

    return redirected_to


@pytest.fixture(scope="module")
def interrupting_streams(wiring: Wiring) -> Iterator[str]:
    """The streams server, hearing every call as `HearsFireWhileSpeaking`."""
    # Loaded first (seconds): the socket waits for it, and the caller would have finished
    # speaking before the first word was heard.
    wiring.models.get("ko-KR")
    with StreamsServer(wiring, transcriber=HearsFireWhileSpeaking) as server:
        yield server.url


@pytest.fixture
def caller(
    live_server: str,
    interrupting_streams: str,
    recording_server: RecordingServer,
    twilio_api: FlakyProxy,
) -> TwilioEmulator:
    """A Twilio whose callers speak at twice real time and which follows the app's REST
    updates of a call."""
    return TwilioEmulator(
        public_base_url=PUBLIC_BASE_URL,
        app_url=live_server,
        streams_url=interrupting_streams,
        auth_token=AUTH_TOKEN,
        account_sid=ACCOUNT_SID,
        recordings=recording_server,
        stream_speed=2.0,
        call_updates=call_updates(twilio_api),
    )


@pytest.mark.usefixtures("celery_worker")
def test_an_emergency_heard_mid_report_interrupts_the_recording_once(
    caller: TwilioEmulator,
    twilio_api: FlakyProxy,
    lookups: Lookups,
    prompts: dict[str, Prompts],
) -> None:
    log = caller.call([KOREAN, "1", Speak(REPORT, not_found_first=0)])

    # Twilio was asked, once, to move this call to the emergency step.
    (update,) = updates_seen_by(twilio_api, log.call_sid)
    assert update["status"] == 200
    assert update["path"] == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{log.call_sid}.json"
    assert update["form"] == {"Url": STEP, "Method": "POST"}
    # The recording was cut short: its action never came; the emergency step put them through.
    assert not any("/ivr/recorded" in step.url for step in log.steps)
    transfer = next(step for step in log.steps if step.url == STEP)
    assert transfer.verbs[0] == "Stop"  # the live stream ends with the report
    assert transfer.said[0].text == prompts["ko-KR"].text("emergency_transfer", number="119")
    assert log.dialed == [["119"]]

    # The case is kept, with the transfer noted once, its number read back after the call
    # with 119, and the recording attached when its status callback came.
    case = lookups.case_of(log.call_sid)
    kinds = [event.kind for event in case.events]
    assert kinds.count("emergency_transfer") == 1 and case.urgency == "emergency"
    assert prompts["ko-KR"].digits(case.number) in " ".join(s.text for s in log.said)
    (recording,) = lookups.recordings_of(log.call_sid)
    assert recording.case_id == case.id
    transcript = wait_until(
        lambda: lookups.transcript_of(log.call_sid), timeout=30, what="the live transcript"
    )
    assert transcript.case_id == case.id and "불이 났어요" in transcript.text

    # Twilio retries a webhook it got no answer to: the same case, the transfer noted once.
    again = caller.replay(transfer)
    assert again.status_code == 200 and again.said[0].text == transfer.said[0].text
    assert len(lookups.cases_of(log.call_sid)) == 1
    kinds = [event.kind for event in lookups.case_of(log.call_sid).events]
    assert kinds.count("emergency_transfer") == 1 and kinds.count("opened") == 1
    assert case.status in (CaseStatus.OPEN, CaseStatus.TRIAGE, CaseStatus.ASSIGNED)


@pytest.mark.usefixtures("celery_worker")
def test_a_failed_call_update_is_logged_and_the_call_goes_on(
    caller: TwilioEmulator,
    twilio_api: FlakyProxy,
    lookups: Lookups,
    caplog: pytest.LogCaptureFixture,
) -> None:
    twilio_api.fail_next(1, to="")  # a call update has no To: Twilio answers it 503
    try:
        with caplog.at_level(logging.ERROR, logger="hotline.ivr.interrupt"):
            log = caller.call([KOREAN, "1", Speak(REPORT, not_found_first=0)])
    finally:
        twilio_api.fail_next(0, to="")
    assert "could not interrupt the recording for an emergency" in caplog.text
    assert updates_seen_by(twilio_api, log.call_sid) == []  # it never reached Twilio
    # Nothing broke: the caller finished the report, whose case was opened as usual.
    assert any("/ivr/recorded" in step.url for step in log.steps)
    assert lookups.case_of(log.call_sid).number
    assert log.dialed == [["119"]]  # the check after the recording caught the emergency


# The watch itself, without a call: what it decides, and that it decides it once.


class Redirects:
    """A fake of Twilio's call update: what was asked, and optionally a refusal."""

    def __init__(self, error: Exception | None = None) -> None:
        self.asked: list[tuple[str, str]] = []
        self.error = error

    def __call__(self, call_sid: str, url: str) -> None:
        self.asked.append((call_sid, url))
        if self.error is not None:
            raise self.error


def watch(redirect: Redirects, *, ended: bool = False) -> tuple[EmergencyWatch, Callable[[], None]]:
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=2)
    watching = EmergencyWatch(
        call_sid="CA" + "1" * 32,
        locale="zh-CN",
        step_url=lambda locale, kind: f"{PUBLIC_BASE_URL}/ivr/emergency?lang={locale}&kind={kind}",
        redirect=redirect,
        report_ended=lambda _call_sid: ended,
        executor=pool,
    )
    return watching, lambda: pool.shutdown(wait=True)


def test_the_first_clear_emergency_redirects_the_call_and_later_ones_do_not() -> None:
    redirect = Redirects()
    watching, settle = watch(redirect)
    watching.heard("我家楼下")
    watching.heard("我家楼下着火了")
    watching.heard("我家楼下着火了 火很大 有人晕倒了")
    settle()
    assert redirect.asked == [
        ("CA" + "1" * 32, f"{PUBLIC_BASE_URL}/ivr/emergency?lang=zh-CN&kind=fire")
    ]
    assert watching.interrupted.is_set()


@pytest.mark.parametrize(
    "words",
    [
        "小区的路灯坏了好几天了",  # a report, not an emergency
        "上个月我家着过一次火，现在想问问保险怎么赔",  # a past event with a present question
    ],
)
def test_no_clear_emergency_no_interrupt(words: str) -> None:
    redirect = Redirects()
    watching, settle = watch(redirect)
    watching.heard(words)
    settle()
    assert redirect.asked == [] and watching.emergency is None


def test_a_report_that_ended_first_is_left_to_the_check_after_it() -> None:
    redirect = Redirects()
    watching, settle = watch(redirect, ended=True)
    watching.heard("我家着火了")
    settle()
    assert redirect.asked == [] and not watching.interrupted.is_set()


def test_a_refused_update_is_logged_and_not_retried(caplog: pytest.LogCaptureFixture) -> None:
    redirect = Redirects(TwilioRestException(503, "https://api.twilio.com/...", "unavailable"))
    watching, settle = watch(redirect)
    with caplog.at_level(logging.ERROR, logger="hotline.ivr.interrupt"):
        watching.heard("我家着火了")
        watching.heard("我家着火了 快来")
        settle()
    assert len(redirect.asked) == 1 and not watching.interrupted.is_set()
    assert "could not interrupt the recording" in caplog.text


def test_without_a_twilio_account_the_check_after_the_recording_does_it() -> None:
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        watching = EmergencyWatch(
            call_sid="CA" + "3" * 32,
            locale="zh-CN",
            step_url=lambda locale, kind: STEP,
            redirect=None,
            report_ended=lambda _call_sid: False,
            executor=pool,
        )
        watching.heard("我家着火了")
    assert watching.emergency is not None and not watching.interrupted.is_set()


def test_the_rest_client_sends_the_documented_call_update(twilio_api: FlakyProxy) -> None:
    call_sid = "CA" + "2" * 32
    redirect = twilio_call_redirect(
        account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, api_base_url=twilio_api.url
    )
    redirect(call_sid, STEP)
    (update,) = updates_seen_by(twilio_api, call_sid)
    assert update["status"] == 200 and update["form"] == {"Url": STEP, "Method": "POST"}


class WordsAsTheyCome(StreamingTranscriber):
    """A recogniser that hears one more word per half second of audio."""

    def __init__(self, model: LoadedModel) -> None:
        super().__init__(model)
        self.bytes = 0

    def feed_mulaw(self, payload: bytes) -> None:
        self.bytes += len(payload)

    def heard_so_far(self) -> str:
        return " ".join(["word"] * (self.bytes // 4000))

    def finish(self) -> Transcript:
        return Transcript(self.heard_so_far(), (), self.bytes / 8000, "test", "test", 0.0)


def test_the_live_decoder_tells_its_listener_the_words_so_far() -> None:
    # No Kaldi here: the stand-in recogniser never reaches the model.
    model = LoadedModel(model=None, path=Path(), name="test", locale="ko-KR", sample_rate=16000)
    heard: list[str] = []

    def listener(words: str) -> None:
        heard.append(words)
        if len(heard) == 2:
            raise RuntimeError("a listener that breaks must not cost the transcript")

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        decoder = LiveDecoder(model, pool, transcriber=WordsAsTheyCome, on_heard=listener)
        for _ in range(3):
            decoder.put_mulaw(bytes(4000))  # half a second of audio
        transcript = decoder.close(timeout=10)
    assert heard == ["word", "word word", "word word word"]
    assert transcript.text == "word word word"


def test_the_real_recogniser_tells_what_it_heard_before_the_end(wiring: Wiring) -> None:
    korean = wiring.models.get("ko-KR")
    audio = decode_wav(REPORT)
    mulaw = pcm16_to_mulaw(resample(audio.samples, audio.sample_rate, 8000))
    stream = StreamingTranscriber(korean)
    heard: list[str] = []
    for offset in range(0, len(mulaw), 4000):  # half a second at a time
        stream.feed_mulaw(mulaw[offset : offset + 4000])
        heard.append(stream.heard_so_far())
    final = stream.finish().text
    assert any(heard[: len(heard) - 1]), "nothing heard before the end of the speech"
    # The words so far only grow into the final text (Vosk may revise the segment under way).
    assert heard[-1] and final.startswith(heard[-1].split()[0])
