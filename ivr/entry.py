"""The voice entry's fast lane: `POST /ivr/voice`, the first request of every call, answered in
front of Flask.

Every call starts here, so this is the webhook a surge of calls (a burst main, a storm) hits
first and hardest, and it does little: check the signature, write the call's row, return the
same welcome for everyone. Under load, the Flask request around that work (request and app
contexts, the session, routing, the hooks of every blueprint, the form parser) cost about as
much CPU as the work itself. Answered here, it takes in 1.5-1.9 times the calls it did
(`bench/webhooks.py`, two cores).

The call's row is written behind the answer (`services.queue_call_record`): queued, and
committed within 20 ms with the other calls that arrived meanwhile. Waiting for that commit
cost as much CPU again as all the rest (thread wake-ups and GIL hand-offs around a transaction
of four rows), and it protected nothing the caller has said: a later webhook of the call, or
its status callback, records a call whose row is missing.

The lane settles only the plain case: a form POST with no query string, each parameter once,
a valid signature over the URL as we rebuilt it, and every parameter a call needs. Anything
else, and any error on the way, goes to the Flask view (`ivr.views.voice`) with its body put
back, so that one place still answers what is unusual: a forged signature (403, logged), a
missing parameter (400), a database too far behind to take more queued rows (the view writes
and waits, and apologises if that fails). The view commits its row before answering: it is
the careful path, for what is unusual.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from cases import services
from ivr.signatures import signature_matches
from ivr.steps import MissingParameterError, caller_from_form

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from ivr.views import IVRContext

log = logging.getLogger("hotline.ivr")

VOICE_PATH = "/ivr/voice"
# Twilio's voice parameters come to about 1 KiB; a bigger body is unusual, so Flask reads it.
MAX_BODY_BYTES = 16 * 1024
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


class VoiceEntry:
    """WSGI middleware: answers a plain, signed `POST /ivr/voice` itself and hands every other
    request, and any it cannot settle, to the Flask app."""

    def __init__(self, app: WSGIApplication, context: IVRContext) -> None:
        self.app = app
        self.context = context
        self.url = context.flow.public_base_url + VOICE_PATH
        self.welcome = context.flow.welcome_twiml.encode()
        self.headers = [
            ("Content-Type", "text/xml; charset=utf-8"),
            ("Content-Length", str(len(self.welcome))),
        ]

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if (
            environ.get("PATH_INFO") == VOICE_PATH
            and environ.get("REQUEST_METHOD") == "POST"
            and not environ.get("QUERY_STRING")
            and environ.get("HTTP_X_TWILIO_SIGNATURE")
            and _mimetype(environ.get("CONTENT_TYPE", "")) == FORM_CONTENT_TYPE
            and "HTTP_TRANSFER_ENCODING" not in environ
        ):
            body = self._read_body(environ)
            if body is not None and self._answered(body, environ):
                start_response("200 OK", list(self.headers))
                return [self.welcome]
        return self.app(environ, start_response)

    @staticmethod
    def _read_body(environ: WSGIEnvironment) -> bytes | None:
        """The body, put back for Flask to read too; None if it is not one we should read."""
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:  # absent (chunked) or garbled: Flask's parser decides
            return None
        if not 0 < length <= MAX_BODY_BYTES:
            return None
        body: bytes = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)
        # Fewer bytes than announced: the client went away, or lied; Flask's reader says which.
        return body if len(body) == length else None

    def _answered(self, body: bytes, environ: WSGIEnvironment) -> bool:
        """Check, write and be done (True), or leave the request to Flask (False)."""
        try:
            pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True, errors="strict")
        except (UnicodeError, ValueError):  # non-ASCII bytes or bad escapes: Flask's parser
            return False
        form = dict(pairs)
        if len(form) != len(pairs):  # a repeated parameter: signed as a list, which Flask keeps
            return False
        signature = environ["HTTP_X_TWILIO_SIGNATURE"]
        expected = self.context.validator.compute_signature(self.url, form)
        if not signature_matches(expected, signature):
            return False  # Flask tries the URL's other forms, then refuses and logs it
        try:
            caller = caller_from_form(form)
        except MissingParameterError:
            return False
        try:
            # Looked up on the module at each call (the benchmark's breakdown swaps it out).
            # It raises only when the queue is full and the write it then waits for fails.
            services.queue_call_record(self.context.database.group_commit, caller=caller)
        except Exception:  # the view writes again, and apologises if that fails too
            log.warning(
                "the voice entry could not write the call; the view tries again",
                exc_info=True,
                extra={"call_sid": caller.call_sid},
            )
            return False
        return True


def _mimetype(content_type: str) -> str:
    """The media type alone, as werkzeug compares it: `Text/Plain; charset=x` is `text/plain`."""
    return content_type.partition(";")[0].strip().lower()
