"""The first webhook of every call, `POST /ivr/voice`: one function answers it (`answer_call`),
called by the Flask view and by a lane in front of Flask (`VoiceEntry`).

Every call starts here, so this is the webhook a surge of calls (a burst main, a storm) hits
first and hardest, and it does little: check the signature, queue the call's row, return the
same welcome for everyone. The Flask request around that work (request and app contexts,
routing, the hooks of every blueprint, the form parser) costs about as much as the work
itself, so the lane answers the plain case before Flask: a form POST with no query string,
each parameter once, a valid signature over the URL as we rebuilt it. Anything else, and any
error on the way, goes to the Flask view with its body put back, which answers what is unusual:
a forged signature (403, logged), a missing parameter (400), a failed write (an apology that
still records the caller). `bench/webhooks.py` measures the lane; `bench/README.md` has figures.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from cases import intake
from ivr.signatures import signature_matches
from ivr.steps import MissingParameterError, caller_from_form
from ivr.twiml import CallFlow

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from hotline.wiring import Wiring

log = logging.getLogger("hotline.ivr")

VOICE_PATH = "/ivr/voice"
# Twilio's voice parameters come to about 1 KiB; a bigger body is unusual, so Flask reads it.
MAX_BODY_BYTES = 16 * 1024
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


def answer_call(*, form: Mapping[str, str], writer: intake.WriteBehind, flow: CallFlow) -> str:
    """A call's first webhook: queue the call's row (written behind the answer) and greet.

    MissingParameterError if the form lacks what Twilio always sends; a write that cannot even
    be queued raises (the view then apologises and records the caller).
    """
    caller = caller_from_form(form)
    intake.queue_call_record(writer, caller=caller)
    return flow.welcome_twiml


class VoiceEntry:
    """WSGI middleware: answers a plain, signed `POST /ivr/voice` itself and hands every other
    request, and any it cannot settle, to the Flask app."""

    def __init__(self, app: WSGIApplication, wiring: Wiring) -> None:
        self.app = app
        self.wiring = wiring
        self.url = wiring.settings.public_base_url + VOICE_PATH
        self.headers = [("Content-Type", "text/xml; charset=utf-8")]

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
            answer = self._answer(body, environ) if body is not None else None
            if answer is not None:
                encoded = answer.encode()
                start_response("200 OK", [*self.headers, ("Content-Length", str(len(encoded)))])
                return [encoded]
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

    def _answer(self, body: bytes, environ: WSGIEnvironment) -> str | None:
        """The answer, having checked the signature and queued the row; None leaves the
        request to Flask."""
        try:
            pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True, errors="strict")
        except (UnicodeError, ValueError):  # non-ASCII bytes or bad escapes: Flask's parser
            return None
        form = dict(pairs)
        if len(form) != len(pairs):  # a repeated parameter: signed as a list, which Flask keeps
            return None
        signature = environ["HTTP_X_TWILIO_SIGNATURE"]
        expected = self.wiring.twilio_validator.compute_signature(self.url, form)
        if not signature_matches(expected, signature):
            return None  # Flask tries the URL's other forms, then refuses and logs it
        try:
            return answer_call(
                form=form,
                writer=self.wiring.database.group_commit,
                flow=self.wiring.call_flow,
            )
        except MissingParameterError:
            return None
        except Exception:  # the view tries again, and apologises if that fails too
            log.warning(
                "the voice entry could not answer; the view tries again",
                exc_info=True,
                extra={"call_sid": form.get("CallSid", "")},
            )
            return None


def _mimetype(content_type: str) -> str:
    """The media type alone, as werkzeug compares it: `Text/Plain; charset=x` is `text/plain`."""
    return content_type.partition(";")[0].strip().lower()
