"""Tests for the emulator's switchboard: queues, calls placed through the REST API, the phones
they ring, and both clocks, against a small scripted Flask app that answers the app's shapes."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from websockets.sync.server import Server, ServerConnection, serve

from emulator import (
    Caller,
    Leg,
    Phone,
    RealClock,
    RecordingServer,
    Switchboard,
    TwilioEmulator,
    VirtualClock,
)
from tests.conftest import wait_until
from tests.emulator.test_emulator import ACCOUNT, PUBLIC, TOKEN, FakeApp, make_wav, twiml
from tests.support.flaky_proxy import FlakyProxy

SPEED = 20.0  # real-time tests: 20 clock seconds a wall second
# What a webhook's round trip can add to a measured span: at 20 clock seconds a wall second,
# 100 ms of a loaded machine (CI's, at twice its usual load) is 2 clock seconds. Lower bounds
# keep Twilio's documented timings; upper bounds allow this much.
LATENCY = 2.5
SEAT = "+8613900000001"
OTHER_SEAT = "sip:seat2@pbx.example.test"
CITIZEN = "+8613812345678"
CALLS_PATH = f"/2010-04-01/Accounts/{ACCOUNT}/Calls.json"

ENQUEUE = twiml(
    '<Start><Stream name="conversation" url="wss://hotline.example.org/ivr/stream">'
    '<Parameter name="lang" value="zh-CN"/></Stream></Start>'
    '<Enqueue action="/ivr/queue/left?lang=zh-CN" waitUrl="/ivr/queue/wait?lang=zh-CN" '
    'waitUrlMethod="POST">hotline</Enqueue>'
)
ENQUEUE_NO_STREAM = twiml(
    '<Enqueue action="/ivr/queue/left?lang=zh-CN" waitUrl="/ivr/queue/wait?lang=zh-CN" '
    'waitUrlMethod="POST">hotline</Enqueue>'
)
SEAT_DIAL = twiml(
    '<Dial action="/ivr/seat/done?seat=7&amp;offer=12" timeout="20">'
    '<Queue url="/ivr/queue/connecting?lang=zh-CN">hotline</Queue></Dial>'
)


class RestLog:
    """What FlakyProxy.forwarded holds: the REST requests "the app" made, here written by hand."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def place(self, to: str, url: str, **form: str) -> None:
        entry_form = {"To": to, "From": "+15005550006", "Url": url, **form}
        self.entries.append({"path": CALLS_PATH, "form": entry_form, "status": 201})

    def __call__(self) -> list[dict[str, Any]]:
        return list(self.entries)


@pytest.fixture
def app() -> Iterator[FakeApp]:
    fake = FakeApp()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def recordings() -> Iterator[RecordingServer]:
    with RecordingServer(account_sid=ACCOUNT, auth_token=TOKEN) as server:
        yield server


class StreamSink:
    """A Media Streams endpoint that keeps every message each stream sent."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.server: Server = serve(self._handle, "127.0.0.1", 0, compression=None)
        self.url = f"ws://127.0.0.1:{self.server.socket.getsockname()[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _handle(self, connection: ServerConnection) -> None:
        for message in connection:
            with self._lock:
                self.messages.append(json.loads(message))

    def media(self, track: str) -> int:
        with self._lock:
            return sum(
                1 for m in self.messages if m["event"] == "media" and m["media"]["track"] == track
            )

    def events(self) -> list[str]:
        with self._lock:
            return [m["event"] for m in self.messages]


@pytest.fixture
def sink() -> Iterator[StreamSink]:
    receiver = StreamSink()
    yield receiver
    receiver.server.shutdown()


@pytest.fixture
def emulator(app: FakeApp, recordings: RecordingServer, sink: StreamSink) -> TwilioEmulator:
    return TwilioEmulator(
        public_base_url=PUBLIC,
        app_url=app.url,
        auth_token=TOKEN,
        account_sid=ACCOUNT,
        recordings=recordings,
        streams_url=sink.url,
    )


@pytest.fixture
def rest() -> RestLog:
    return RestLog()


def params_of(app: FakeApp, path: str) -> list[dict[str, str]]:
    return [r.form for r in app.received if r.path.split("?")[0] == path]


def request_paths(leg: Leg) -> list[str]:
    return [urlsplit(step.url).path for step in leg.log.steps]


def hold_music(form: dict[str, str]) -> str:
    return twiml(f'<Say>您排在第{form["QueuePosition"]}位</Say><Pause length="5"/>')


def test_two_seats_take_five_callers_first_come_first_served(
    app: FakeApp, emulator: TwilioEmulator, rest: RestLog
) -> None:
    app.routes["/ivr/voice"] = ENQUEUE_NO_STREAM
    app.routes["/ivr/queue/wait"] = hold_music
    app.routes["/ivr/queue/connecting"] = twiml("<Say>正在为您接通</Say>")
    app.routes["/ivr/queue/left"] = twiml("<Say>再见</Say><Hangup/>")
    app.routes["/ivr/seat/answer"] = SEAT_DIAL

    def seat_done(form: dict[str, str]) -> str:
        # As the app does: an operator who put the phone down is offered the next caller by a
        # new call, until a call finds the queue empty
        if form["DialCallStatus"] == "completed":
            rest.place(form["To"], "https://hotline.example.org/ivr/seat/answer?seat=7&offer=99")
        return twiml("<Hangup/>")

    app.routes["/ivr/seat/done"] = seat_done
    phones = {SEAT: Phone(answer_after=1, talk=10), OTHER_SEAT: Phone(answer_after=1, talk=10)}
    clock = RealClock(speed=SPEED)
    with Switchboard(emulator, clock=clock, phones=phones, rest_requests=rest) as board:
        callers = []
        for index in range(5):
            callers.append(board.call(Caller(from_number=f"+861380000000{index}", talk=600)))
            clock.sleep(1)  # a second apart, so the order they join in is known
        queue = wait_until(lambda: board.queue("hotline"), timeout=5, what="the queue")
        wait_until(lambda: queue.size == 5, timeout=5, what="five callers waiting")
        rest.place(SEAT, "https://hotline.example.org/ivr/seat/answer?seat=7&offer=12")
        rest.place(OTHER_SEAT, "https://hotline.example.org/ivr/seat/answer?seat=8&offer=13")
        assert board.wait_idle(timeout=400)

    joined = [leg.call_sid for leg in sorted(callers, key=lambda leg: leg.enqueued_at or 0)]
    assert [leg.call_sid for leg in callers] == joined
    assert [member.call_sid for member in queue.dequeued] == joined  # FIFO
    dialled = [
        form["DialCallSid"]
        for form in params_of(app, "/ivr/seat/done")
        if form["DialCallStatus"] == "completed"
    ]
    assert sorted(dialled) == sorted(joined)  # everyone put through, nobody twice
    for leg in callers:
        (left,) = [s.params for s in leg.log.steps if "/ivr/queue/left" in s.url]
        assert left["QueueResult"] == "bridged" and left["QueueSid"] == queue.sid
        assert left["CallStatus"] == "in-progress"  # the seat hung up first: the call goes on
        assert leg.log.said[-1].text == "再见" and leg.log.ended_by == "hangup-verb"
        assert int(left["QueueTime"]) == leg.queue_time
    seats = board.outbound()
    assert {leg.to for leg in seats} == {SEAT, OTHER_SEAT} and len(seats) == 7
    for phone in (SEAT, OTHER_SEAT):
        done = [form for form in params_of(app, "/ivr/seat/done") if form["To"] == phone]
        statuses = [form["DialCallStatus"] for form in done]
        assert statuses[-1] == "no-answer" and set(statuses[:-1]) == {"completed"}
        # The operator talked 10 s and hung up: their call is over
        assert {(form["DialCallDuration"], form["CallStatus"]) for form in done[:-1]} == {
            ("10", "completed")
        }
        assert all(form["Direction"] == "outbound-api" for form in done)
    assert [leg.log.status for leg in seats] == ["completed"] * 7
    # Waits grow down the queue: the last caller waited for a seat to free up
    assert queue.dequeued[-1].queue_time >= 10 > queue.dequeued[0].queue_time


def test_a_caller_who_hangs_up_in_the_queue_gets_queue_result_hangup(
    app: FakeApp, emulator: TwilioEmulator
) -> None:
    app.routes["/ivr/voice"] = ENQUEUE_NO_STREAM
    app.routes["/ivr/queue/wait"] = hold_music
    app.routes["/ivr/queue/left"] = twiml("<Say>Ignored</Say>")

    with Switchboard(emulator, clock=RealClock(speed=SPEED)) as board:
        leg = board.call(Caller(hang_up_after=20))
        assert board.wait_idle(timeout=60)

    waits = params_of(app, "/ivr/queue/wait")
    # The waitUrl is requested again each time its TwiML (a Say and 5 s of pause) ends, until
    # the caller hangs up at 20 s. The clock runs 20 times faster than the wall, so each
    # webhook's round trip adds clock time: a loaded machine (CI) stretched a round from 6 s to
    # 7, and only three fitted before the hang-up. Each round is at least the TwiML's length,
    # and the rounds reach the hang-up: none is missing.
    times = [int(form["QueueTime"]) for form in waits]
    assert len(times) >= 3 and times[0] == 0
    assert all(6 <= later - earlier <= 8 for earlier, later in itertools.pairwise(times))
    assert times[-1] + 8 >= 20
    queue = board.queue("hotline")
    assert queue is not None and queue.size == 0
    first = waits[0]
    assert {name: first[name] for name in ("QueuePosition", "CurrentQueueSize")} == {
        "QueuePosition": "1",
        "CurrentQueueSize": "1",
    }
    assert (first["QueueSid"], first["MaxQueueSize"]) == (queue.sid, "1000")
    (left,) = params_of(app, "/ivr/queue/left")
    assert (left["QueueResult"], left["QueueTime"]) == ("hangup", "20")
    assert left["CallStatus"] == "completed"
    assert leg.log.ended_by == "caller-hangup" and leg.queue_result == "hangup"
    assert "Ignored" not in [spoken.text for spoken in leg.log.said]


def test_a_key_at_the_wait_gather_and_leave_post_queue_result_leave(
    app: FakeApp, emulator: TwilioEmulator
) -> None:
    app.routes["/ivr/voice"] = ENQUEUE_NO_STREAM
    app.routes["/ivr/queue/wait"] = lambda form: twiml(
        '<Gather numDigits="1" timeout="25" action="/ivr/queue/key?lang=zh-CN">'
        f"<Say>排在第{form['QueuePosition']}位，按1回电</Say></Gather>"
    )
    app.routes["/ivr/queue/key"] = lambda form: twiml(
        "<Say>我们会给您回电</Say><Leave/>"
        if form["Digits"] == "1"
        else "<Redirect>/ivr/queue/wait?lang=zh-CN</Redirect>"
    )
    app.routes["/ivr/queue/left"] = twiml("<Say>再见</Say><Hangup/>")

    with Switchboard(emulator, clock=RealClock(speed=SPEED)) as board:
        patient = board.call(Caller(hang_up_after=50))
        board.clock.sleep(1)
        wrong_key = board.call(Caller(press=(3, "5"), hang_up_after=40))
        board.clock.sleep(1)
        leaving = board.call(Caller(press=(30, "1")))
        assert board.wait_idle(timeout=120)

    keys = params_of(app, "/ivr/queue/key")
    assert sorted(form["Digits"] for form in keys) == ["1", "5"]
    assert wrong_key.queue_result == "hangup"  # the Redirect put them back on hold
    assert leaving.queue_result == "leave" and patient.queue_result == "hangup"
    (left,) = [s.params for s in leaving.log.steps if "/ivr/queue/left" in s.url]
    # Pressed at 30 s, then the answer says a sentence before <Leave>
    assert left["QueueResult"] == "leave" and 31 <= int(left["QueueTime"]) <= 33 + LATENCY
    assert [spoken.text for spoken in leaving.log.said][-2:] == ["我们会给您回电", "再见"]
    assert leaving.log.said[0].text == "排在第3位，按1回电"
    (wrong_first, *_) = [s.params for s in wrong_key.log.steps if "/ivr/queue/wait" in s.url]
    assert (wrong_first["QueuePosition"], wrong_first["CurrentQueueSize"]) == ("2", "2")


def test_the_queue_url_plays_on_the_callers_leg_and_the_caller_is_heard_live(
    app: FakeApp, emulator: TwilioEmulator, rest: RestLog, sink: StreamSink
) -> None:
    app.routes["/ivr/voice"] = ENQUEUE
    app.routes["/ivr/queue/wait"] = hold_music
    app.routes["/ivr/queue/connecting"] = twiml('<Say>正在为您接通</Say><Pause length="1"/>')
    app.routes["/ivr/queue/left"] = twiml("<Hangup/>")
    app.routes["/ivr/seat/answer"] = SEAT_DIAL
    app.routes["/ivr/seat/done"] = twiml("<Hangup/>")
    hang_up = threading.Event()
    phones = {SEAT: Phone(answer_after=2, talk=hang_up)}

    with Switchboard(
        emulator, clock=RealClock(speed=SPEED), phones=phones, rest_requests=rest
    ) as board:
        caller = board.call(Caller(speak=make_wav(1.0), talk=600))
        wait_until(lambda: caller.enqueued_at is not None, timeout=5, what="the caller queued")
        rest.place(SEAT, "https://hotline.example.org/ivr/seat/answer?seat=7&offer=12")
        wait_until(lambda: sink.media("inbound") >= 50, timeout=10, what="the caller's words")
        hang_up.set()  # the operator puts the phone down
        assert board.wait_idle(timeout=30)

    (seat,) = board.outbound()
    (whisper,) = params_of(app, "/ivr/queue/connecting")
    assert whisper["CallSid"] == caller.call_sid  # the dequeued call's leg
    assert whisper["DequeingCallSid"] == seat.call_sid
    assert whisper["From"] == caller.from_number and whisper["Direction"] == "inbound"
    assert whisper["QueueSid"] == board.queue("hotline").sid  # type: ignore[union-attr]
    assert int(whisper["QueueTime"]) == caller.queue_time
    (answer,) = params_of(app, "/ivr/seat/answer")
    assert (answer["To"], answer["Direction"], answer["CallSid"]) == (
        SEAT,
        "outbound-api",
        seat.call_sid,
    )
    (done,) = params_of(app, "/ivr/seat/done")
    assert (done["DialCallStatus"], done["DialCallSid"]) == ("completed", caller.call_sid)
    assert done["DialBridged"] == "true" and int(done["DialCallDuration"]) >= 1
    assert done["CallStatus"] == "completed"  # the operator hung up: their call is over
    (left,) = params_of(app, "/ivr/queue/left")
    assert left["QueueResult"] == "bridged" and left["CallStatus"] == "in-progress"
    assert "正在为您接通" in [spoken.text for spoken in caller.log.said]
    # The sink's server reads the socket on its own thread: the emulator's call can end before
    # that thread has handed on the last message it received.
    wait_until(lambda: "stop" in sink.events(), timeout=5, what="the stream's stop message")
    assert sink.media("inbound") == 50  # one second of 20 ms frames, the caller's own track
    assert sink.media("outbound") == 0  # the default inbound_track: the operator isn't sent
    assert sink.events()[-1] == "stop"


def test_dial_on_an_empty_queue_waits_for_a_caller_or_times_out(
    app: FakeApp, emulator: TwilioEmulator, rest: RestLog
) -> None:
    app.routes["/ivr/voice"] = ENQUEUE_NO_STREAM
    app.routes["/ivr/queue/wait"] = hold_music
    app.routes["/ivr/queue/connecting"] = twiml("<Say>接通</Say>")
    app.routes["/ivr/queue/left"] = twiml("<Hangup/>")
    app.routes["/ivr/seat/answer"] = SEAT_DIAL
    app.routes["/ivr/seat/done"] = twiml("<Hangup/>")
    phones = {SEAT: Phone(answer_after=0, talk=5), OTHER_SEAT: Phone(answer_after=0, talk=5)}

    with Switchboard(
        emulator, clock=RealClock(speed=SPEED), phones=phones, rest_requests=rest
    ) as board:
        # No queue yet: Twilio posts an error status
        rest.place(SEAT, "https://hotline.example.org/ivr/seat/answer?seat=7&offer=12")
        assert board.wait_idle(timeout=30)
        board.queue("hotline", create=True)
        rest.place(SEAT, "https://hotline.example.org/ivr/seat/answer?seat=7&offer=12")
        assert board.wait_idle(timeout=60)
        rest.place(OTHER_SEAT, "https://hotline.example.org/ivr/seat/answer?seat=8&offer=13")
        board.clock.sleep(8)
        caller = board.call(Caller(talk=60))  # joins while the Dial waits
        assert board.wait_idle(timeout=60)

    statuses = [form["DialCallStatus"] for form in params_of(app, "/ivr/seat/done")]
    assert statuses == ["failed", "no-answer", "completed"]
    _, timed_out, put_through = params_of(app, "/ivr/seat/done")
    assert timed_out["DialBridged"] == "false" and timed_out["DialCallDuration"] == "0"
    assert put_through["DialCallSid"] == caller.call_sid
    assert caller.queue_time == 0  # a seat was waiting: taken the moment they joined
    assert not params_of(app, "/ivr/queue/wait")  # so the wait music never played
    seat_times = [(leg.ended_at or 0) - (leg.answered_at or 0) for leg in board.outbound()[:2]]
    # The Dial to a missing queue fails at once; the one on the empty queue waits its 20 s.
    assert seat_times[0] < 1 + LATENCY and 19 <= seat_times[1] <= 22 + LATENCY


def test_a_call_placed_through_prism_rings_the_phone_and_reports_its_status(
    app: FakeApp, emulator: TwilioEmulator, twilio_api: FlakyProxy
) -> None:
    app.routes["/ivr/seat/answer"] = twiml("<Say>有来电</Say><Hangup/>")
    app.routes["/ivr/call-status"] = ("", 204)
    already = len(twilio_api.forwarded)
    phones = {SEAT: Phone(answer_after=3), OTHER_SEAT: Phone(outcome="busy")}
    url = "https://hotline.example.org/ivr/seat/answer?seat=7&offer=12"

    with Switchboard(
        emulator,
        clock=RealClock(speed=SPEED),
        phones=phones,
        rest_requests=lambda: twilio_api.forwarded[already:],
    ) as board:
        for to in (SEAT, OTHER_SEAT, "+8613999999999"):
            response = requests.post(
                f"{twilio_api.url}{CALLS_PATH}",
                data={
                    "To": to,
                    "From": "+15005550006",
                    "Url": url,
                    "StatusCallback": "https://hotline.example.org/ivr/call-status",
                    "Timeout": "20",
                },
                auth=(ACCOUNT, TOKEN),
                timeout=10,
            )
            assert response.status_code == 201, response.text
        wait_until(lambda: len(board.outbound()) == 3, timeout=5, what="three placed calls")
        assert board.wait_idle(timeout=30)

    answered, busy, unknown = board.outbound()
    prism_sid = response.json()["sid"]
    (answer,) = params_of(app, "/ivr/seat/answer")
    assert answer["CallSid"] == answered.call_sid != prism_sid
    assert answer["CallSid"].startswith("CA") and len(answer["CallSid"]) == 34
    assert (answer["To"], answer["From"], answer["Direction"]) == (
        SEAT,
        "+15005550006",
        "outbound-api",
    )
    assert all(received.valid for received in app.received)
    statuses = {form["To"]: form for form in params_of(app, "/ivr/call-status")}
    assert statuses[SEAT]["CallStatus"] == "completed"
    assert statuses[OTHER_SEAT]["CallStatus"] == "busy"
    assert statuses["+8613999999999"]["CallStatus"] == "failed"  # no phone at that number
    assert (answered.log.status, busy.log.status, unknown.log.status) == (
        "completed",
        "busy",
        "failed",
    )
    assert answered.log.said[0].text == "有来电"
    assert 2.5 <= (answered.answered_at or 0) - answered.placed_at <= 4 + LATENCY


@pytest.mark.parametrize(
    ("citizen", "status", "duration"),
    [
        (Phone(answer_after=4, talk=15), "completed", 15),
        (Phone(outcome="no-answer"), "no-answer", 0),
        (Phone(outcome="busy"), "busy", 0),
    ],
)
def test_a_callback_rings_the_operator_then_dials_the_citizen(
    app: FakeApp,
    emulator: TwilioEmulator,
    rest: RestLog,
    citizen: Phone,
    status: str,
    duration: int,
) -> None:
    app.routes["/ivr/callbacks/connect"] = twiml(
        "<Say>正在为您回拨市民</Say>"
        '<Dial callerId="+865374412345" action="/ivr/callbacks/dialled?task=3&amp;attempt=1" '
        f'timeout="30"><Number>{CITIZEN}</Number></Dial>'
    )
    app.routes["/ivr/callbacks/dialled"] = twiml("<Hangup/>")
    phones = {SEAT: Phone(answer_after=2, talk=100), CITIZEN: citizen}

    started = time.monotonic()
    with Switchboard(
        emulator, clock=RealClock(speed=SPEED), phones=phones, rest_requests=rest
    ) as board:
        rest.place(SEAT, "https://hotline.example.org/ivr/callbacks/connect?task=3&attempt=1")
        assert board.wait_idle(timeout=60)

    (operator,) = board.outbound()
    assert request_paths(operator) == ["/ivr/callbacks/connect", "/ivr/callbacks/dialled"]
    (dialled,) = params_of(app, "/ivr/callbacks/dialled")
    assert (dialled["DialCallStatus"], dialled["DialCallDuration"]) == (status, str(duration))
    assert ("DialCallSid" in dialled) == (status == "completed")
    assert operator.log.dialed == [[CITIZEN]]
    assert dialled["CallStatus"] == "in-progress"  # the operator outlasted the citizen
    if status == "no-answer":  # rang for the Dial's whole timeout (30 s at 20x)
        assert time.monotonic() - started >= 1.5


def test_a_virtual_clock_plays_an_hour_of_calls_in_seconds(
    app: FakeApp, emulator: TwilioEmulator, rest: RestLog
) -> None:
    moments: list[float] = []
    clock = VirtualClock(on_advance=moments.append)
    app.routes["/ivr/voice"] = ENQUEUE_NO_STREAM
    app.routes["/ivr/queue/wait"] = hold_music
    app.routes["/ivr/queue/left"] = twiml("<Hangup/>")
    app.routes["/ivr/queue/connecting"] = twiml("<Say>接通</Say>")
    app.routes["/ivr/seat/answer"] = SEAT_DIAL

    def seat_done(form: dict[str, str]) -> str:  # each seat is offered callers for the hour
        if clock.now() < 3600:
            rest.place(form["To"], "https://hotline.example.org/ivr/seat/answer?seat=7&offer=99")
        return twiml("<Hangup/>")

    app.routes["/ivr/seat/done"] = seat_done
    phones = {SEAT: Phone(answer_after=1, talk=30), OTHER_SEAT: Phone(answer_after=1, talk=30)}

    started = time.monotonic()
    # The account's queue exists already: a <Dial> on a queue nobody ever joined would fail
    with Switchboard(
        emulator, clock=clock, phones=phones, rest_requests=rest, queues=["hotline"]
    ) as board:
        rest.place(SEAT, "https://hotline.example.org/ivr/seat/answer?seat=7&offer=12")
        rest.place(OTHER_SEAT, "https://hotline.example.org/ivr/seat/answer?seat=8&offer=13")
        callers = []
        for _ in range(60):  # one a minute for an hour
            callers.append(board.call(Caller(talk=600)))
            clock.sleep(60)
        assert board.wait_idle()
    elapsed = time.monotonic() - started

    assert elapsed < 15, f"an hour took {elapsed:.1f} s"
    assert clock.now() >= 3600
    assert moments == sorted(moments) and moments[-1] == clock.now()
    assert [leg.queue_result for leg in callers] == ["bridged"] * 60
    queue = board.queue("hotline")
    assert queue is not None
    assert [m.call_sid for m in queue.dequeued] == [leg.call_sid for leg in callers]
    # Two seats, 30 s a call, one call a minute: a seat waits in its <Dial><Queue>, or its
    # next call is ringing (1 s)
    assert max(leg.queue_time or 0 for leg in callers) <= 1
    assert clock.advances > 3600 / board.poll_interval  # the REST log was watched throughout
    timeline = [(leg.enqueued_at or 0) - (leg.placed_at or 0) for leg in callers]
    assert timeline == [0.0] * 60  # time stands still while the app answers; no Say here


def test_script_values_are_validated() -> None:
    with pytest.raises(ValueError, match=r"Phone\.outcome"):
        Phone(outcome="answered")


def _queries(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def test_rest_requests_that_failed_place_no_call(
    app: FakeApp, emulator: TwilioEmulator, rest: RestLog
) -> None:
    app.routes["/ivr/seat/answer"] = twiml("<Hangup/>")
    rest.place(SEAT, "https://hotline.example.org/ivr/seat/answer?seat=7&offer=12")
    rest.entries[-1]["status"] = 503
    rest.entries.append({"path": f"{CALLS_PATH[:-5]}/CA{'0' * 32}.json", "form": {}, "status": 200})
    board = Switchboard(emulator, clock=RealClock(speed=SPEED), rest_requests=rest)

    board.poll_rest()

    assert board.outbound() == [] and _queries(rest.entries[0]["form"]["Url"])["seat"] == ["7"]
