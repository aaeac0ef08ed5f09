"""The switchboard: many calls at once on one clock. Callers dial in and wait in Twilio's queues,
the app places calls through the REST API (learnt from a log of its requests), the phones it
rings answer or not, and a <Dial><Queue> puts the longest-waiting caller through. All of it as
Twilio documents <Enqueue>, <Leave>, <Queue> and <Dial>."""

from __future__ import annotations

import email.utils
import re
import threading
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

from emulator.clock import EPSILON, Clock, RealClock
from emulator.protocol import API_VERSION, EmulatorError, new_sid
from emulator.queues import DEFAULT_MAX_SIZE, Bridge, CallQueue, Member
from emulator.voice import (
    CallLog,
    Input,
    Step,
    TwilioEmulator,
    _Call,
    _Outcome,
    _parse_twiml,
    _path,
    _spoken,
    speech_seconds,
)

_PHONE_OUTCOMES = ("answer", "no-answer", "busy", "failed")
_CALLS_CREATE = re.compile(r"/Accounts/[^/]+/Calls\.json$")
# A <Play> in a waitUrl plays audio the emulator never fetches: assume a track this long.
PLAY_SECONDS = 10.0
# How often a party who talks "until an Event is set" looks at it.
EVENT_POLL_SECONDS = 0.5
_REST_CALL_TIMEOUT = 60.0  # Twilio's default Timeout for a call placed through the REST API

Talk = float | threading.Event


@dataclass(frozen=True)
class Phone:
    """What a called number or SIP address does when it rings."""

    answer_after: float = 2.0  # seconds of ringing before it answers
    outcome: str = "answer"  # or "no-answer", "busy", "failed"
    talk: Talk = 60.0  # once put through: seconds until it hangs up, or until the Event is set
    # Said once put through, into the other party's open <Stream>s that carry their outbound
    # track (a stream's default, inbound_track, hears only its own caller).
    speak: bytes | None = None

    def __post_init__(self) -> None:
        if self.outcome not in _PHONE_OUTCOMES:
            raise ValueError(f"Phone.outcome must be one of {_PHONE_OUTCOMES}")


@dataclass(frozen=True)
class Caller:
    """Someone who calls in: the IVR script (as TwilioEmulator.call takes it), then what they
    do in a queue and once put through to a person."""

    inputs: Sequence[Input] = ()
    from_number: str = "+8613800138000"
    hang_up_after: float | None = None  # seconds in the queue before giving up (None: never)
    press: tuple[float, str] | None = None  # (seconds in the queue, key): at the first wait
    # <Gather> listening from then on
    talk: Talk = 60.0  # once put through: seconds until they hang up, or until the Event is set
    speak: bytes | None = None  # a WAV said once put through, into their own live <Stream>s
    voice_path: str = "/ivr/voice"


class Leg:
    """One call on the switchboard: its log, its persona (Caller or Phone), and its times."""

    def __init__(
        self,
        board: Switchboard,
        log: CallLog,
        *,
        persona: Caller | Phone,
        to: str,
        from_number: str,
    ) -> None:
        self.board = board
        self.log = log
        self.persona = persona
        self.to = to
        self.from_number = from_number
        self.call: _Call | None = None
        self.done = board.clock.signal()
        self.error: BaseException | None = None
        self.placed_at = board.clock.now()
        self.answered_at: float | None = None
        self.ended_at: float | None = None
        # In a queue: when it joined, when it left, how (QueueResult) and after how long
        self.enqueued_at: float | None = None
        self.dequeued_at: float | None = None
        self.queue_result = ""
        self.queue_time: int | None = None
        self.bridge: Bridge | None = None
        self.form: Mapping[str, str] = {}  # the REST request that placed it (outbound-api)

    @property
    def call_sid(self) -> str:
        """The leg's CallSid."""
        return self.log.call_sid

    @property
    def clock(self) -> Clock:
        """The switchboard's clock."""
        return self.board.clock

    def after_request(self) -> None:
        """The app answered a webhook: it may have placed calls meanwhile."""
        self.board.poll_rest()

    # --- <Enqueue>: the caller's side -------------------------------------------------------

    def enqueue(self, call: _Call, verb: ET.Element, url: str) -> _Outcome:
        """Wait in the named queue, playing its waitUrl, until put through, out or gone."""
        name = (verb.text or "").strip()
        queue = self.board.queue(name, create=True)
        assert queue is not None
        action = verb.get("action")
        member = queue.join(call.log.call_sid)
        if member is None:
            call.log.events.append(f"← Enqueue {name}: the queue is full")
            return self._queue_action(call, url, action, "queue-full", queue, 0, ended=None)
        self.enqueued_at = member.joined_at
        call.log.events.append(f"← Enqueue {name}")
        how = self._wait(call, queue, member, verb, url)
        ended: str | None = None
        if how == "dequeued":
            self.dequeued_at = member.left_at
            result = "bridged"
            ended = self._put_through(call, queue, member)
        else:
            result = "hangup" if how in ("abandon", "hangup-verb") else how
            ended = {"abandon": "caller-hangup", "hangup-verb": "hangup-verb"}.get(how)
        return self._queue_action(call, url, action, result, queue, member.queue_time, ended=ended)

    def _queue_action(
        self,
        call: _Call,
        url: str,
        action: str | None,
        result: str,
        queue: CallQueue,
        queue_time: int,
        *,
        ended: str | None,
    ) -> _Outcome:
        self.queue_result, self.queue_time = result, queue_time
        call.log.events.append(f"⏎ left queue {queue.name}: {result} after {queue_time}s")
        if ended:
            call.params["CallStatus"] = "completed"
        if not action:  # Twilio carries on with the verb after <Enqueue>
            return ended
        params = {"QueueResult": result, "QueueSid": queue.sid, "QueueTime": str(queue_time)}
        # After a hang-up Twilio still requests the action but ignores what it answers
        step = call.request(urljoin(url, action), params, twiml=ended is None)
        return ended or step

    def _wait(
        self, call: _Call, queue: CallQueue, member: Member, verb: ET.Element, url: str
    ) -> str:
        """Play the waitUrl until the caller leaves the queue: "dequeued", "abandon" (hung up),
        "leave" (<Leave>) or "hangup-verb" (<Hangup>)."""
        hold = _Hold(self, member)
        wait_url = verb.get("waitUrl")
        if not wait_url:  # Twilio's own hold music, for as long as it takes
            call.log.events.append("← (hold music)")
            return self._settle(queue, member, hold.hold(None) or "dequeued")
        target = urljoin(url, wait_url)
        while True:
            if member.dequeued.is_set():
                return self._settle(queue, member, "dequeued")
            if hold.abandoned():
                return self._settle(queue, member, "abandon")
            hold.spent = False
            step = call.request(target, queue.wait_params(member), counted=False)
            outcome = self._play_wait(call, queue, member, hold, step)
            if outcome is not None:
                return self._settle(queue, member, outcome)
            if not hold.spent:
                raise EmulatorError(
                    f"{call.where(target)}: the waitUrl's TwiML takes no time, so Twilio would "
                    "request it again and again"
                )
            # The document is over: Twilio requests the waitUrl again

    def _settle(self, queue: CallQueue, member: Member, outcome: str) -> str:
        if outcome == "dequeued":
            return outcome
        reason = "leave" if outcome == "leave" else "hangup"
        # A <Dial><Queue> may have taken the caller in the same instant: then it is put through
        return outcome if queue.leave(member, reason=reason) else "dequeued"

    def _play_wait(
        self, call: _Call, queue: CallQueue, member: Member, hold: _Hold, step: Step
    ) -> str | None:
        """One waitUrl document, interrupted when the caller is dequeued or hangs up."""
        while True:
            if member.dequeued.is_set():
                return "dequeued"  # answered too late: Twilio ignores it
            following: Step | None = None
            for verb in step.twiml:
                result: str | Step | None
                if verb.tag in ("Say", "Play", "Pause"):
                    result = self._hold_verb(call, hold, verb, listening=False)
                elif verb.tag == "Gather":
                    result = self._wait_gather(call, queue, member, hold, verb, step.url)
                elif verb.tag == "Redirect":
                    target = urljoin(step.url, (verb.text or "").strip())
                    call.log.events.append(f"← Redirect {_path(target)}")
                    result = call.request(target, queue.wait_params(member), counted=False)
                elif verb.tag == "Leave":
                    call.log.events.append("← Leave")
                    return "leave"
                elif verb.tag == "Hangup":
                    call.log.events.append("← Hangup")
                    return "hangup-verb"
                else:
                    raise EmulatorError(
                        f"{call.where(step.url)}: <{verb.tag}> is not allowed in a waitUrl"
                    )
                if isinstance(result, Step):
                    following = result
                    break
                if result is not None:
                    return result
            if following is None:
                return None
            step = following

    def _hold_verb(
        self, call: _Call, hold: _Hold, verb: ET.Element, *, listening: bool
    ) -> str | None:
        if verb.tag == "Say":
            spoken = call.heard(verb)
            return hold.hold(speech_seconds(spoken.text), listening=listening)
        _log_verb(call, verb)
        if verb.tag == "Pause":
            return hold.hold(float(verb.get("length") or 1), listening=listening)
        loops = int(verb.get("loop") or 1)
        return hold.hold(PLAY_SECONDS * loops if loops > 0 else None, listening=listening)

    def _wait_gather(
        self,
        call: _Call,
        queue: CallQueue,
        member: Member,
        hold: _Hold,
        verb: ET.Element,
        url: str,
    ) -> str | Step | None:
        call.log.events.append("← Gather")
        outcome: str | None = None
        for child in verb:  # a key interrupts the prompts
            if child.tag in ("Say", "Play", "Pause"):
                outcome = self._hold_verb(call, hold, child, listening=True)
                if outcome is not None:
                    break
        if outcome is None:
            outcome = hold.hold(float(verb.get("timeout") or 5), listening=True)
        if outcome is None:
            call.log.events.append("⏎ no key pressed (timeout)")
            return None  # Twilio falls through to the next verb
        if outcome != "key":
            return outcome
        assert hold.key is not None
        waited = max(0, round(self.clock.now() - member.joined_at))
        call.log.events.append(f"⏎ pressed {hold.key} after {waited}s in the queue")
        if hold.key == verb.get("finishOnKey", "#"):
            return None  # only the finish key: no input
        action = urljoin(url, verb.get("action") or url)
        # The answer replaces the wait music: <Leave> in it takes the caller out
        return call.request(action, {"Digits": hold.key}, counted=False)

    def _put_through(self, call: _Call, queue: CallQueue, member: Member) -> str | None:
        """Dequeued: the <Queue url> on this leg, then talk. Returns how the call ended, if
        this caller hung up."""
        bridge = member.bridge
        assert bridge is not None
        self.bridge = bridge
        call.log.events.append(f"⏎ dequeued by {bridge.dialer_sid} after {member.queue_time}s")
        try:
            if bridge.whisper_url:
                params = {
                    "QueueSid": queue.sid,
                    "QueueTime": str(member.queue_time),
                    "DequeingCallSid": bridge.dialer_sid,
                }
                step = call.request(bridge.whisper_url, params, counted=False)
                self._play_whisper(call, step)
        finally:
            if not bridge.ended.is_set():
                bridge.connected_at = self.clock.now()
            bridge.connected.set()
        call.log.events.append(f"⏎ put through to {bridge.dialer_sid}")
        persona = self.persona if isinstance(self.persona, Caller) else Caller()
        if persona.speak is not None:
            self.board.speak(persona.speak, into=call, track="inbound")
        hung_up = self.board.talk(bridge, persona.talk, side="caller")
        call.log.events.append(
            f"⏎ {'hung up' if hung_up else 'the other party hung up'} after {bridge.duration}s"
        )
        return "caller-hangup" if hung_up else None

    def _play_whisper(self, call: _Call, step: Step) -> None:
        # Twilio allows only these in the <Queue url> document
        while True:
            following: Step | None = None
            for verb in step.twiml:
                if verb.tag == "Redirect":
                    target = urljoin(step.url, (verb.text or "").strip())
                    call.log.events.append(f"← Redirect {_path(target)}")
                    following = call.request(target, {}, counted=False)
                    break
                if verb.tag not in ("Say", "Play", "Pause"):
                    raise EmulatorError(
                        f"{call.where(step.url)}: <{verb.tag}> is not allowed in <Queue url>"
                    )
                if verb.tag == "Say":
                    self.clock.sleep(speech_seconds(call.heard(verb).text))
                else:
                    _log_verb(call, verb)
                    seconds = float(verb.get("length") or 1) if verb.tag == "Pause" else 0
                    self.clock.sleep(seconds or PLAY_SECONDS)
            if following is None:
                return
            step = following

    # --- <Dial>: the dialler's side -----------------------------------------------------------

    def dial_queue(self, call: _Call, verb: ET.Element, url: str) -> _Outcome:
        """<Dial><Queue>: take the longest-waiting caller and talk, as Twilio documents."""
        noun = verb.find("Queue")
        assert noun is not None
        name = (noun.text or "").strip()
        timeout = float(verb.get("timeout") or 30)
        call.log.dialed.append([f"queue:{name}"])
        call.log.events.append(f"← Dial Queue {name}")
        queue = self.board.queue(name, create=False)
        hung_up = False
        if queue is None:  # "If the queue does not exist, Dial will post an error status"
            params = {"DialCallStatus": "failed", "DialCallDuration": "0"}
        else:
            whisper = noun.get("url")
            member = queue.take(
                dialer_sid=call.log.call_sid,
                whisper_url=urljoin(url, whisper) if whisper else None,
                timeout=timeout,
            )
            if member is None:  # nobody joined before the timeout: nobody answered
                params = {"DialCallStatus": "no-answer", "DialCallDuration": "0"}
                params |= {"DialBridged": "false", "QueueSid": queue.sid}
            else:
                bridge = member.bridge
                assert bridge is not None
                self.bridge = bridge
                call.log.events.append(
                    f"⏎ took {member.call_sid} off {name} after {member.queue_time}s in it"
                )
                self.clock.wait(bridge.connected, None)
                persona = self.persona if isinstance(self.persona, Phone) else Phone()
                caller = self.board.leg(member.call_sid)
                if persona.speak is not None and caller is not None and caller.call is not None:
                    self.board.speak(persona.speak, into=caller.call, track="outbound")
                hung_up = self.board.talk(bridge, persona.talk, side="dialer")
                params = {
                    "DialCallStatus": "completed",
                    "DialCallSid": member.call_sid,
                    "DialCallDuration": str(bridge.duration),
                    "DialBridged": "true",
                    "QueueSid": queue.sid,
                }
        return self._dial_action(call, verb, url, params, hung_up=hung_up)

    def dial_numbers(self, call: _Call, verb: ET.Element, url: str, numbers: list[str]) -> _Outcome:
        """<Dial> to numbers or SIP addresses: rings the switchboard's phones at once, the
        first to answer is put through."""
        call.log.dialed.append(numbers)
        call.log.events.append(f"← Dial {', '.join(numbers)}")
        timeout = float(verb.get("timeout") or 30)
        phones = [self.board.phone(number) for number in numbers]
        answering = [
            phone
            for phone in phones
            if phone is not None and phone.outcome == "answer" and phone.answer_after <= timeout
        ]
        hung_up = False
        if answering:
            phone = min(answering, key=lambda p: p.answer_after)
            self.clock.sleep(phone.answer_after)
            mine = self.persona.talk
            started = self.clock.now()
            hung_up = self.board.talk_apart(mine, phone.talk, started=started)
            duration = round(self.clock.now() - started)
            params = {"DialCallStatus": "completed", "DialCallSid": new_sid("CA")}
            params |= {"DialCallDuration": str(duration)}
        else:
            outcomes = {phone.outcome if phone else "failed" for phone in phones} or {"failed"}
            status = next(s for s in ("no-answer", "busy", "failed") if s in outcomes)
            if status == "no-answer":
                self.clock.sleep(timeout)
            params = {"DialCallStatus": status, "DialCallDuration": "0"}
        return self._dial_action(call, verb, url, params, hung_up=hung_up)

    def _dial_action(
        self, call: _Call, verb: ET.Element, url: str, params: dict[str, str], *, hung_up: bool
    ) -> _Outcome:
        call.log.events.append(
            f"⏎ dial {params['DialCallStatus']} ({params['DialCallDuration']}s)"
            + (", then hung up" if hung_up else "")
        )
        ended = "caller-hangup" if hung_up else None
        if hung_up:
            call.params["CallStatus"] = "completed"
        action = verb.get("action")
        if not action:
            return ended
        step = call.request(urljoin(url, action), params, twiml=not hung_up)
        return ended or step


def _log_verb(call: _Call, verb: ET.Element) -> None:
    details = [f"{name}={value}" for name, value in verb.attrib.items()]
    details += [(verb.text or "").strip()]
    call.log.events.append(" ".join(["←", verb.tag, *filter(None, details)]))


class _Hold:
    """Waiting in a queue: each stretch ends early when the caller is dequeued, gives up, or
    (at a <Gather>) presses their key."""

    def __init__(self, leg: Leg, member: Member) -> None:
        self.clock = leg.clock
        self.member = member
        persona = leg.persona if isinstance(leg.persona, Caller) else Caller()
        after = persona.hang_up_after
        self.abandon_at = None if after is None else member.joined_at + after
        self.press_at = None if persona.press is None else member.joined_at + persona.press[0]
        self.key = None if persona.press is None else persona.press[1]
        self.pressed = False
        self.spent = False  # whether this document took any time

    def abandoned(self) -> bool:
        return self.abandon_at is not None and self.clock.now() >= self.abandon_at - EPSILON

    def hold(self, seconds: float | None, *, listening: bool = False) -> str | None:
        """None once `seconds` passed; else "dequeued", "abandon" or "key"."""
        if seconds is None or seconds > 0:
            self.spent = True
        now = self.clock.now()
        end = None if seconds is None else now + seconds
        while True:
            press_at = self.press_at if listening and not self.pressed else None
            limits = [t for t in (end, self.abandon_at, press_at) if t is not None]
            until = min(limits) if limits else None
            if self.clock.wait(self.member.dequeued, None if until is None else until - now):
                return "dequeued"
            now = self.clock.now()
            if self.abandon_at is not None and now >= self.abandon_at - EPSILON:
                return "abandon"
            if press_at is not None and now >= press_at - EPSILON:
                self.pressed = True
                return "key"
            if end is not None and now >= end - EPSILON:
                return None


class Switchboard:
    """Plays many calls against the app at once on one clock (RealClock on a thread for tests,
    VirtualClock for a benchmark): inbound callers, the calls the app places through the REST
    API, Twilio's queues, and the phones those calls ring."""

    def __init__(
        self,
        emulator: TwilioEmulator,
        *,
        clock: Clock | None = None,
        phones: Mapping[str, Phone] | None = None,
        default_phone: Phone | None = None,
        rest_requests: Callable[[], Iterable[Mapping[str, Any]]] | None = None,
        poll_interval: float = 0.5,
        queues: Sequence[str] = (),
        max_queue_size: int = DEFAULT_MAX_SIZE,
        max_steps: int = 200,
    ) -> None:
        self.emulator = emulator
        self.clock: Clock = clock or RealClock()
        self.phones = dict(phones or {})
        self.default_phone = default_phone  # for numbers not in `phones` (None: call fails)
        # The REST requests the app made so far, as FlakyProxy.forwarded lists them: dicts
        # with "path", "form" and "status". Calls.json creations become outbound calls.
        self.rest_requests = rest_requests
        self.poll_interval = poll_interval
        self.max_queue_size = max_queue_size
        self.max_steps = max_steps
        self.legs: list[Leg] = []
        self.errors: list[BaseException] = []
        self._queues: dict[str, CallQueue] = {}
        self._lock = threading.Lock()
        self._rest_lock = threading.Lock()
        self._rest_seen = 0
        self._stopped = self.clock.signal()
        self._poller: threading.Thread | None = None
        for name in queues:  # queues that exist already, as on a real account
            self.queue(name, create=True)

    # --- set-up ------------------------------------------------------------------------------

    def start(self) -> Switchboard:
        """Start watching the REST log on the clock (every poll_interval); returns self."""
        if self._poller is None and self.rest_requests is not None:
            self._poller = self.clock.spawn(self._poll_loop, name="switchboard-rest")
        return self

    def stop(self) -> None:
        """Stop watching the REST log."""
        self._stopped.set()

    def __enter__(self) -> Switchboard:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _poll_loop(self) -> None:
        while True:
            self.poll_rest()
            if self.clock.wait(self._stopped, self.poll_interval):
                return

    # --- what is on the board ----------------------------------------------------------------

    def queue(self, name: str, *, create: bool = False) -> CallQueue | None:
        """The named queue (made on first <Enqueue>, as Twilio does)."""
        with self._lock:
            if name not in self._queues and create:
                if len(name) > 64:
                    raise EmulatorError(f"queue name over 64 characters: {name!r}")
                self._queues[name] = CallQueue(name, clock=self.clock, max_size=self.max_queue_size)
            return self._queues.get(name)

    def phone(self, address: str) -> Phone | None:
        """What rings at a number or SIP address."""
        return self.phones.get(address, self.default_phone)

    def leg(self, call_sid: str) -> Leg | None:
        """The call with this CallSid."""
        with self._lock:
            return next((leg for leg in self.legs if leg.call_sid == call_sid), None)

    def inbound(self) -> list[Leg]:
        """The callers' calls, in the order they were placed."""
        with self._lock:
            return [leg for leg in self.legs if leg.log.direction == "inbound"]

    def outbound(self) -> list[Leg]:
        """The calls the app placed through the REST API, in order."""
        with self._lock:
            return [leg for leg in self.legs if leg.log.direction == "outbound-api"]

    # --- calls -------------------------------------------------------------------------------

    def call(self, caller: Caller) -> Leg:
        """A caller dials in now, on a thread of their own."""
        sid = self.emulator.new_call_sid()
        params = {
            **self.emulator.base_params(sid),
            "From": caller.from_number,
            "Caller": caller.from_number,
            "CallStatus": "ringing",
        }
        leg = Leg(
            self,
            CallLog(sid),
            persona=caller,
            to=params["To"],
            from_number=caller.from_number,
        )
        call = _Call(
            self.emulator, leg.log, params, deque(caller.inputs), self.max_steps, self.clock, leg
        )
        leg.call = call

        def run() -> None:
            leg.answered_at = self.clock.now()
            call.run(caller.voice_path)

        self._start(leg, run)
        return leg

    def poll_rest(self) -> None:
        """Place the calls the app created through the REST API since the last look."""
        if self.rest_requests is None:
            return
        with self._rest_lock:
            entries = list(self.rest_requests())
            fresh, self._rest_seen = entries[self._rest_seen :], len(entries)
        for entry in fresh:
            path = str(entry.get("path", "")).split("?", 1)[0]
            if _CALLS_CREATE.search(path) and int(str(entry.get("status", 0))) < 300:
                self._place({str(k): str(v) for k, v in dict(entry.get("form") or {}).items()})

    def _place(self, form: Mapping[str, str]) -> Leg:
        to, from_number = form.get("To", ""), form.get("From", "")
        # A SID of our own: Prism answers every create with the same example SID
        log = CallLog(new_sid("CA"), direction="outbound-api")
        phone = self.phone(to)
        leg = Leg(self, log, persona=phone or Phone(), to=to, from_number=from_number)
        leg.form = dict(form)
        self._start(leg, lambda: self._ring(leg, phone))
        return leg

    def _ring(self, leg: Leg, phone: Phone | None) -> None:
        form = leg.form
        timeout = float(form.get("Timeout") or _REST_CALL_TIMEOUT)
        params = {
            "CallSid": leg.call_sid,
            "AccountSid": self.emulator.account_sid,
            "From": leg.from_number,
            "To": leg.to,
            "Caller": leg.from_number,
            "Called": leg.to,
            "CallStatus": "in-progress",
            "ApiVersion": API_VERSION,
            "Direction": "outbound-api",
        }
        leg.log.events.append(f"☎ ringing {leg.to}")
        status = "completed"
        if phone is None:
            status = "failed"  # nobody told the switchboard what this number does
        elif phone.outcome in ("busy", "failed"):
            status = phone.outcome
        elif phone.outcome == "no-answer" or phone.answer_after > timeout:
            self.clock.sleep(timeout)
            status = "no-answer"
        else:
            self.clock.sleep(phone.answer_after)
        call: _Call | None = None
        if status == "completed":
            leg.answered_at = self.clock.now()
            leg.log.events.append(f"☎ {leg.to} answered")
            call = _Call(self.emulator, leg.log, params, deque(), self.max_steps, self.clock, leg)
            leg.call = call
            if form.get("Url"):
                first = call.request(form["Url"], {})
            elif form.get("Twiml"):  # TwiML given inline: nothing to fetch
                first = self._inline(call, form["Twiml"])
            else:
                raise EmulatorError(f"a call to {leg.to} was created with neither Url nor Twiml")
            call.play(first)
        else:
            leg.log.events.append(f"☎ {leg.to}: {status}")
        leg.log.status = params["CallStatus"] = status
        self._status_callback(leg, params)

    def _inline(self, call: _Call, twiml: str) -> Step:
        root = _parse_twiml(twiml)
        if root is None:
            raise EmulatorError(f"the Twiml of a created call is not TwiML: {twiml[:200]!r}")
        url = self.emulator.public_url("/")
        return Step(
            url=url,
            params=dict(call.params),
            signature="",
            status_code=200,
            body=twiml,
            said=[_spoken(say) for say in root.iter("Say")],
            verbs=[verb.tag for verb in root],
        )

    def _status_callback(self, leg: Leg, params: dict[str, str]) -> None:
        callback = leg.form.get("StatusCallback")
        if not callback:
            return
        answered = leg.answered_at
        duration = 0 if answered is None else round(self.clock.now() - answered)
        sent = {
            **params,
            "CallDuration": str(duration),
            "Timestamp": email.utils.format_datetime(datetime.now(UTC)),
            "CallbackSource": "call-progress-events",
            "SequenceNumber": "0",
        }
        step = self.emulator.post(callback, sent)
        leg.log.status_callbacks.append(step)
        leg.log.events.append(f"→ POST {_path(step.url)} CallStatus={params['CallStatus']}")
        if not 200 <= step.status_code < 300:
            raise EmulatorError(f"the status callback answered {step.status_code}: {step.body!r}")

    def _start(self, leg: Leg, body: Callable[[], None]) -> None:
        with self._lock:
            self.legs.append(leg)

        def run() -> None:
            try:
                body()
            except BaseException as error:  # reported by wait_idle, not lost on a thread
                leg.error = error
                leg.log.events.append(f"■ emulator error: {error}")
                with self._lock:
                    self.errors.append(error)
            finally:
                bridge = leg.bridge
                if bridge is not None and not bridge.ended.is_set():
                    side = "caller" if leg.log.direction == "inbound" else "dialer"
                    bridge.end(by=side, at=self.clock.now())
                leg.ended_at = self.clock.now()
                leg.done.set()

        self.clock.spawn(run, name=f"call-{leg.call_sid[-6:]}")

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait (on the clock) until every call, those the app places meanwhile included, has
        ended; raises the first emulator error a call met. False if `timeout` passed first."""
        deadline = None if timeout is None else self.clock.now() + timeout
        while True:
            self.poll_rest()
            with self._lock:
                pending = [leg for leg in self.legs if not leg.done.is_set()]
            if not pending:
                self.poll_rest()
                with self._lock:
                    if all(leg.done.is_set() for leg in self.legs):
                        break
                continue
            left = None if deadline is None else deadline - self.clock.now()
            if left is not None and left <= 0:
                self.raise_errors()
                return False
            self.clock.wait(pending[0].done, left)
        self.raise_errors()
        return True

    def raise_errors(self) -> None:
        """Raise the first error a call thread met, if any."""
        with self._lock:
            errors = list(self.errors)
        if errors:
            raise EmulatorError(f"{len(errors)} call(s) failed; first: {errors[0]}") from errors[0]

    # --- two parties talking -----------------------------------------------------------------

    def talk(self, bridge: Bridge, talk: Talk, *, side: str) -> bool:
        """One side of a bridge talks until it hangs up or the other does; True if it did."""
        started = bridge.connected_at if bridge.connected_at is not None else self.clock.now()
        if isinstance(talk, threading.Event):
            while not bridge.ended.is_set() and not talk.is_set():
                self.clock.wait(bridge.ended, EVENT_POLL_SECONDS)
        else:
            self.clock.wait(bridge.ended, talk - (self.clock.now() - started))
        return bridge.end(by=side, at=self.clock.now())

    def talk_apart(self, mine: Talk, theirs: Talk, *, started: float) -> bool:
        """Two parties with no bridge object (a <Dial> to a number): wait until the first hangs
        up; True if it was `mine`."""

        def left(talk: Talk) -> float:
            if isinstance(talk, threading.Event):
                return 0.0 if talk.is_set() else float("inf")
            return talk - (self.clock.now() - started)

        while min(left(mine), left(theirs)) > EPSILON:
            step = min(left(mine), left(theirs))
            events = isinstance(mine, threading.Event) or isinstance(theirs, threading.Event)
            self.clock.sleep(min(step, EVENT_POLL_SECONDS) if events else step)
        return left(mine) <= left(theirs)

    def speak(self, wav: bytes, *, into: _Call, track: str) -> None:
        """Say a WAV into a call's open streams that carry `track` ("inbound": its caller's
        own voice; "outbound": the party they talk to)."""
        wanted = {"inbound": ("inbound_track", "both_tracks"), "outbound": ("outbound_track",)}
        speed = self.clock.speed if isinstance(self.clock, RealClock) else None
        for name, stream in list(into.open_streams.items()):
            tracks = wanted[track] + (("both_tracks",) if track == "outbound" else ())
            if into.stream_tracks.get(name, "inbound_track") in tracks:
                stream.send_audio(wav, speed=speed, track=track)
