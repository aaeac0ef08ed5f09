"""Interrupting a report for an emergency heard while the caller is still speaking.

The streams process hears the report as it is said (`ivr.stream_decoder`). Each time the words
so far change, `EmergencyWatch.heard` checks them for a clear emergency (`find_emergency`; a
borderline one is left to the check after the recording, which asks the caller). On the first
hit the call is redirected through Twilio's REST API (a call update with the URL of the
emergency step, `ivr.interrupt_views`): Twilio cuts the <Record> short without posting its
action, and the recording status callback still comes. The REST request runs on a small pool
of its own, never on the socket's loop or in the decode; if it fails the call goes on as it
was, and the check after the recording still catches the emergency.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections.abc import Callable

from delivery.sms import twilio_client
from routing.emergency import EmergencyMatch, find_emergency

log = logging.getLogger("hotline.ivr.interrupt")

EMERGENCY_STEP_PATH = "/ivr/emergency"

# (CallSid, the public URL of the step to go to) -> None; raises if Twilio refused it.
CallRedirect = Callable[[str, str], None]


def twilio_call_redirect(
    *, account_sid: str, auth_token: str, api_base_url: str | None, timeout: float = 5.0
) -> CallRedirect:
    """Redirect a live call to a URL by Twilio's REST API (or the mock `api_base_url` names)."""

    def redirect(call_sid: str, url: str) -> None:
        """POST .../Calls/{CallSid}.json with Url and Method: Twilio fetches it at once."""
        client = twilio_client(
            account_sid=account_sid,
            auth_token=auth_token,
            api_base_url=api_base_url,
            timeout=timeout,
        )
        client.calls(call_sid).update(url=url, method="POST")

    return redirect


class EmergencyWatch:
    """One live call's watch for a clear emergency in the words heard so far; it interrupts
    the call at most once, however many segments name the emergency."""

    def __init__(
        self,
        *,
        call_sid: str,
        locale: str,
        step_url: Callable[[str, str], str],
        redirect: CallRedirect | None,
        report_ended: Callable[[str], bool],
        executor: concurrent.futures.Executor,
    ) -> None:
        self.call_sid = call_sid
        self.locale = locale
        self._step_url = step_url  # (locale, kind) -> the emergency step's public URL
        self._redirect = redirect  # None: no Twilio REST API to reach (no account configured)
        self._report_ended = report_ended  # CallSid -> whether the Record action came already
        self._executor = executor
        self._lock = threading.Lock()
        self.emergency: EmergencyMatch | None = None
        self.interrupted = threading.Event()  # set once the REST update was accepted

    def heard(self, text: str) -> None:
        """The words so far (on the decoding thread): the first clear emergency in them
        interrupts the call; anything after it changes nothing."""
        if self.emergency is not None:
            return
        emergency = find_emergency(text)
        if emergency is None:
            return
        with self._lock:
            if self.emergency is not None:
                return
            self.emergency = emergency
        self._executor.submit(self._interrupt, emergency)

    def _interrupt(self, emergency: EmergencyMatch) -> None:
        extra = {"call_sid": self.call_sid, "kind": emergency.kind, "rule": emergency.rule}
        if self._ended():
            # The caller finished first: the check after the recording has the same words.
            log.info("emergency heard live after the report ended; left to its check", extra=extra)
            return
        if self._redirect is None:
            log.info(
                "emergency heard live; no Twilio API configured, left to its check", extra=extra
            )
            return
        url = self._step_url(self.locale, emergency.kind)
        try:
            self._redirect(self.call_sid, url)
        except Exception:  # Twilio refused or is out of reach: the call goes on as it was
            log.exception(
                "could not interrupt the recording for an emergency; the check after the "
                "recording will transfer the caller",
                extra=extra,
            )
            return
        self.interrupted.set()
        log.warning(
            "emergency heard while the caller spoke (%s, rule %s): recording interrupted",
            emergency.kind,
            emergency.rule,
            extra=extra,
        )

    def _ended(self) -> bool:
        try:
            return self._report_ended(self.call_sid)
        except Exception:  # the database is out: interrupting is the safer mistake
            log.exception(
                "could not tell whether the report ended", extra={"call_sid": self.call_sid}
            )
            return False
