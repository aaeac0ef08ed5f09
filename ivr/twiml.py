"""TwiML for every step of the call, built with twilio's VoiceResponse."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from twilio.twiml.voice_response import Gather, Start, Stop, VoiceResponse

from ivr.menus import RECORD_FINISH_KEYS, language_keys
from ivr.prompts import IVROptions, Prompts


@dataclass(frozen=True)
class LiveStreaming:
    """Where the caller's audio is streamed during a report, and for which locales."""

    url: str
    locales: frozenset[str]
    token_for: Callable[[str], str]  # CallSid -> the stream's per-call token


STREAM_NAME = "report"
# The stream of a caller put through to a person: the operator's page shows its words live.
CONVERSATION_STREAM = "conversation"


class CallFlow:
    """Renders the call flow's TwiML from the prompts and the IVR options."""

    def __init__(
        self,
        *,
        prompts: dict[str, Prompts],
        options: IVROptions,
        locales: tuple[str, ...],
        public_base_url: str,
        live: LiveStreaming | None = None,
    ) -> None:
        self.prompts = prompts
        self.options = options
        self.locales = locales
        self.public_base_url = public_base_url
        self.live = live

    def url(self, path: str, **query: object) -> str:
        """An absolute public URL, so Twilio signs exactly what we later check."""
        suffix = "?" + urlencode(query) if query else ""
        return f"{self.public_base_url}{path}{suffix}"

    def _say(self, node: VoiceResponse | Gather, locale: str, text: str) -> None:
        prompts = self.prompts[locale]
        node.say(text, language=prompts.language, voice=prompts.voice)

    def _gather(self, response: VoiceResponse, action: str, **kwargs: object) -> Gather:
        return response.gather(
            action=action, method="POST", timeout=self.options.menu_timeout, **kwargs
        )

    @functools.cached_property
    def welcome_twiml(self) -> str:
        """The welcome as text: it is the same for every call, and every call starts here."""
        return str(self.welcome())

    def welcome(self) -> VoiceResponse:
        """The greeting in the first locale, with its keys; no key records the report."""
        return self.greeting(self.locales[0], greet=True)

    def greeting(self, locale: str, *, greet: bool, misses: int = 0) -> VoiceResponse:
        """The greeting (with the 110/119/120 notice) as one short <Gather> of single keys:
        1 report now, 2 and 3 other languages (in the first locale only), 9 a case's status,
        0 a person. No key falls through to the report's recording."""
        response = VoiceResponse()
        prompts = self.prompts[locale]
        if misses:
            self._say(response, locale, prompts.text("menu_invalid"))
        action = self.url("/ivr/greeting/choice", lang=locale, miss=misses)
        gather = response.gather(
            action=action, method="POST", timeout=self.options.greeting_timeout, num_digits=1
        )
        if greet:
            self._say(gather, locale, prompts.text("greeting"))
        self._say(gather, locale, prompts.text("greeting_keys"))
        if locale == self.locales[0]:
            for other in language_keys(self.locales).values():
                self._say(gather, other, self.prompts[other].text("language_option"))
        # No key: Twilio falls through to here. The step it leads to gives the call its own
        # stream token, so this answer stays the same for every call (ivr/entry.py).
        response.redirect(self.url("/ivr/report/start", lang=locale), method="POST")
        return response

    def goodbye(self, locale: str, key: str = "goodbye") -> VoiceResponse:
        """A polite goodbye, then hang up."""
        response = VoiceResponse()
        self._say(response, locale, self.prompts[locale].text(key))
        response.hangup()
        return response

    def _stop_stream(self, response: VoiceResponse, locale: str) -> None:
        """End the report's live stream (if this locale has one), so its transcript is final."""
        if self.live and locale in self.live.locales:
            stop = Stop()
            stop.stream(name=STREAM_NAME)
            response.append(stop)

    def callback_number_request(
        self, locale: str, *, case_number: str, sms_follows: bool
    ) -> VoiceResponse:
        """After the report, ask a caller with a withheld ID for a number to reach them; #
        alone skips. No menu stands before their words: this comes once they are kept."""
        response = VoiceResponse()
        self._stop_stream(response, locale)
        action = self.url(
            "/ivr/callback-number", lang=locale, case=case_number, sms=int(sms_follows)
        )
        gather = self._gather(response, action, finish_on_key="#")
        self._say(gather, locale, self.prompts[locale].text("callback_number_request"))
        response.redirect(action, method="POST")
        return response

    def after_report(self, locale: str, *, case_number: str, sms_follows: bool) -> VoiceResponse:
        """What follows a kept report: the live check where the words were heard live, else
        the number read back at once."""
        if self.live and locale in self.live.locales:
            return self.report_ended(locale, case_number=case_number, sms_follows=sms_follows)
        return self.case_opened(locale, case_number=case_number, sms_follows=sms_follows)

    def record_report(
        self,
        locale: str,
        *,
        attempt: int,
        call_sid: str | None = None,
        prompt_key: str | None = None,
    ) -> VoiceResponse:
        """Record the caller's report (streaming it live where a model can hear it); a silent
        first attempt is re-prompted once."""
        response = VoiceResponse()
        prompts = self.prompts[locale]
        live = self.live
        if live and call_sid and attempt == 0 and locale in live.locales:
            # One stream for the whole report; a re-prompt keeps it running.
            start = Start()
            stream = start.stream(url=live.url, name=STREAM_NAME)
            stream.parameter(name="token", value=live.token_for(call_sid))
            stream.parameter(name="locale", value=locale)
            response.append(start)
        default_key = "report_silent_retry" if attempt else "report_prompt"
        self._say(response, locale, prompts.text(prompt_key or default_key))
        response.record(
            action=self.url("/ivr/recorded", lang=locale, attempt=attempt),
            method="POST",
            finish_on_key=RECORD_FINISH_KEYS,
            max_length=self.options.record_max_length,
            timeout=self.options.record_silence_timeout,
            play_beep=True,
            recording_status_callback=self.url("/ivr/recording-status"),
            recording_status_callback_method="POST",
            recording_status_callback_event="completed absent",
        )
        # Twilio runs the verbs after <Record> only when nothing was recorded. The second time,
        # a step of our own says goodbye, so the call is noted as ended in silence for the desk.
        if attempt == 0:
            response.redirect(self.url("/ivr/report", lang=locale, attempt=1), method="POST")
        else:
            response.redirect(self.url("/ivr/report/nothing-heard", lang=locale), method="POST")
        return response

    def report_ended(self, locale: str, *, case_number: str, sms_follows: bool) -> VoiceResponse:
        """End the live stream, so its transcript is final at once, then check it for an
        emergency (and an answer) before reading the number back."""
        response = VoiceResponse()
        self._stop_stream(response, locale)
        response.redirect(self._check_url(locale, case_number, sms_follows, 0), method="POST")
        return response

    def _check_url(self, locale: str, case_number: str, sms_follows: bool, round_: int) -> str:
        return self.url(
            "/ivr/report/check", lang=locale, case=case_number, sms=int(sms_follows), round=round_
        )

    def still_checking(
        self, locale: str, *, case_number: str, sms_follows: bool, round_: int
    ) -> VoiceResponse:
        """The live transcript is late: tell the caller we are registering their report (the
        first time), then come back to the check for another bounded wait."""
        response = VoiceResponse()
        if round_ == 1:
            self._say(response, locale, self.prompts[locale].text("report_check_wait"))
        response.redirect(self._check_url(locale, case_number, sms_follows, round_), method="POST")
        return response

    def answer_offered(
        self, locale: str, *, answer: str, case_number: str, sms_follows: bool, article_id: str
    ) -> VoiceResponse:
        """Say the knowledge base's answer, then ask: 1 that answers it, 2 keep the case. No
        key keeps the case."""
        response = VoiceResponse()
        prompts = self.prompts[locale]
        action = self.url(
            "/ivr/report/answered",
            lang=locale,
            case=case_number,
            sms=int(sms_follows),
            article=article_id,
        )
        self._say(response, locale, prompts.text("answer_intro"))
        self._say(response, locale, answer)
        gather = self._gather(response, action, num_digits=1)
        self._say(gather, locale, prompts.text("answer_question"))
        response.redirect(action, method="POST")
        return response

    def answered(self, locale: str, *, sms_follows: bool) -> VoiceResponse:
        """The caller's question was answered in the call: a short goodbye."""
        key = "answered_sms_goodbye" if sms_follows else "answered_goodbye"
        return self.goodbye(locale, key)

    def danger_question(
        self, locale: str, *, kind: str, case_number: str, sms_follows: bool
    ) -> VoiceResponse:
        """The words may describe an emergency: ask the caller rather than guess. 1 puts them
        through; anything else carries on."""
        response = VoiceResponse()
        action = self.url(
            "/ivr/report/danger", lang=locale, case=case_number, sms=int(sms_follows), kind=kind
        )
        gather = self._gather(response, action, num_digits=1)
        self._say(gather, locale, self.prompts[locale].text("danger_question"))
        response.redirect(action, method="POST")
        return response

    def emergency_transfer(
        self, locale: str, *, number: str, case_number: str, sms_follows: bool
    ) -> VoiceResponse:
        """Put the caller straight through to 119, 120 or 110; the number is read afterwards
        only if the transfer fails."""
        response = VoiceResponse()
        self._say(response, locale, self.prompts[locale].text("emergency_transfer", number=number))
        response.dial(number, timeout=30)
        # Without an action, Twilio carries on here when the emergency call ends or fails.
        for verb in self.case_opened(
            locale, case_number=case_number, sms_follows=sms_follows
        ).verbs:
            response.append(verb)
        return response

    def case_opened(
        self, locale: str, *, case_number: str, sms_follows: bool, before: str | None = None
    ) -> VoiceResponse:
        """Read the case number back digit by digit, twice, and say whether an SMS follows
        (after the prompt `before`, if given)."""
        response = VoiceResponse()
        prompts = self.prompts[locale]
        if before:
            self._say(response, locale, prompts.text(before))
        spoken = prompts.digits(case_number)
        self._say(response, locale, f"{prompts.text('case_opened')} {spoken}")
        self._say(response, locale, f"{prompts.text('case_number_again')} {spoken}")
        self._say(response, locale, prompts.text("sms_will_follow" if sms_follows else "no_sms"))
        response.hangup()
        return response

    def status_request(self, locale: str, *, misses: int) -> VoiceResponse:
        """Ask for a case number ended by #; the second ask says the first was not found."""
        response = VoiceResponse()
        prompts = self.prompts[locale]
        action = self.url("/ivr/status/lookup", lang=locale, miss=misses)
        gather = self._gather(response, action, finish_on_key="#")
        self._say(
            gather, locale, prompts.text("status_unknown_retry" if misses else "status_prompt")
        )
        response.redirect(action, method="POST")
        return response

    def status_report(
        self,
        locale: str,
        *,
        case_number: str,
        status: str,
        department: str | None,
        deadline: datetime | None,
    ) -> VoiceResponse:
        """Read a case's status, department and deadline, then return to the main menu."""
        response = VoiceResponse()
        prompts = self.prompts[locale]
        parts = [
            f"{prompts.text('status_case')} {prompts.digits(case_number)}:",
            prompts.status(status),
        ]
        if department:
            parts.append(prompts.text("status_department", department=department))
        if deadline:
            parts.append(prompts.text("status_deadline", deadline=prompts.deadline(deadline)))
        self._say(response, locale, " ".join(parts))
        response.redirect(self.url("/ivr/menu", lang=locale), method="POST")
        return response

    def person(
        self,
        locale: str,
        *,
        reason: str,
        case_number: str | None = None,
        sms_follows: bool = False,
    ) -> VoiceResponse:
        """Go to the step that finds the caller a person (`/ivr/person`): it queues them, or
        offers a callback or a recording when no seat is open. After a report (0 during the
        recording) its stream is stopped and the case named, so the number is never lost."""
        response = VoiceResponse()
        query: dict[str, object] = {"lang": locale, "why": reason}
        if case_number is not None:
            self._stop_stream(response, locale)
            query.update(case=case_number, sms=int(sms_follows))
        response.redirect(self.url("/ivr/person", **query), method="POST")
        return response

    def enqueue(self, locale: str, *, call_sid: str, query: dict[str, object]) -> VoiceResponse:
        """Put the caller in the queue for a person. Their words are streamed from now on, so
        the operator who takes the call reads them live (`cases.seats.hear_live`)."""
        response = VoiceResponse()
        self._say(response, locale, self.prompts[locale].text("operator_connecting"))
        live = self.live
        if live and locale in live.locales:
            start = Start()
            stream = start.stream(url=live.url, name=CONVERSATION_STREAM)
            stream.parameter(name="token", value=live.token_for(call_sid))
            stream.parameter(name="locale", value=locale)
            stream.parameter(name="purpose", value=CONVERSATION_STREAM)
            response.append(start)
        response.enqueue(
            self.options.queue_name,
            action=self.url("/ivr/queue/left", **query),
            method="POST",
            wait_url=self.url("/ivr/queue/wait", lang=locale),
            wait_url_method="POST",
        )
        return response

    def queue_wait(
        self, locale: str, *, position: int, minutes: int, callback_possible: bool
    ) -> VoiceResponse:
        """While the caller waits: their place and the expected wait, then quiet until the next
        announcement; 1 (when we have their number) asks to be called back instead."""
        response = VoiceResponse()
        prompts = self.prompts[locale]
        gather = response.gather(
            action=self.url("/ivr/queue/key", lang=locale), method="POST", num_digits=1, timeout=1
        )
        self._say(
            gather,
            locale,
            prompts.text("queue_position", position=str(position), minutes=str(minutes)),
        )
        if callback_possible:
            self._say(gather, locale, prompts.text("queue_callback_option"))
        # The announcement takes about ten seconds; the pause makes the round one period long.
        gather.pause(length=max(5, self.options.queue_announce_every - 10))
        response.redirect(self.url("/ivr/queue/wait", lang=locale), method="POST")
        return response

    def leave_queue(self, locale: str, *, before: str | None = None) -> VoiceResponse:
        """Take the caller out of the queue; its action says what comes next."""
        response = VoiceResponse()
        if before:
            self._say(response, locale, self.prompts[locale].text(before))
        response.leave()
        return response

    def back_to_waiting(self, locale: str, *, before: str | None = None) -> VoiceResponse:
        """A key in the queue that changes nothing: back to the wait announcements."""
        response = VoiceResponse()
        if before:
            self._say(response, locale, self.prompts[locale].text(before))
        response.redirect(self.url("/ivr/queue/wait", lang=locale), method="POST")
        return response

    def queue_connecting(self, locale: str) -> VoiceResponse:
        """Said to the caller as a seat takes them off the queue."""
        response = VoiceResponse()
        self._say(response, locale, self.prompts[locale].text("queue_connecting"))
        return response

    def nobody_free(
        self, locale: str, *, before: str | None, query: dict[str, object]
    ) -> VoiceResponse:
        """No operator can take the call (none on duty, after hours, or waited too long): 1
        or no key is a callback, 2 records a report now."""
        response = VoiceResponse()
        action = self.url("/ivr/person/offer", **query)
        gather = self._gather(response, action, num_digits=1)
        if before:
            self._say(gather, locale, self.prompts[locale].text(before))
        self._say(gather, locale, self.prompts[locale].text("person_unavailable_offer"))
        response.redirect(action, method="POST")
        return response

    def seat_takes_caller(self, *, seat_id: int, offer: int, caller_locale: str) -> VoiceResponse:
        """The operator answered their seat's phone: take the longest-waiting caller off the
        queue. Twilio requests the <Queue> url on the caller's side first."""
        response = VoiceResponse()
        staff = self.locales[0]
        self._say(response, staff, self.prompts[staff].text("seat_caller_waiting"))
        dial = response.dial(
            action=self.url("/ivr/seat/done", seat=seat_id, offer=offer),
            method="POST",
            timeout=self.options.seat_ring_timeout,
        )
        dial.queue(
            self.options.queue_name,
            url=self.url("/ivr/queue/connecting", lang=caller_locale),
            method="POST",
        )
        return response

    def staff_goodbye(self, key: str) -> VoiceResponse:
        """A word to the operator (in the hotline's first language), then hang up."""
        return self.goodbye(self.locales[0], key)

    def callback_dial(self, *, attempt_id: int, citizen: str, caller_id: str) -> VoiceResponse:
        """A callback: the operator answered; now ring the citizen from the hotline's number."""
        response = VoiceResponse()
        staff = self.locales[0]
        self._say(response, staff, self.prompts[staff].text("callback_operator_intro"))
        dial = response.dial(
            action=self.url("/ivr/callbacks/dialled", attempt=attempt_id),
            method="POST",
            timeout=30,
            caller_id=caller_id,
        )
        dial.number(citizen)
        return response

    def apology_and_record(self, locale: str) -> VoiceResponse:
        """After an internal error: apologise and still record the caller, so nothing is lost."""
        return self.record_report(locale, attempt=1, prompt_key="error_apology")


def empty() -> str:
    """An empty TwiML document: acknowledges a callback, or ends a call that is already over."""
    return str(VoiceResponse())
