"""The voice entry's fast lane: it answers a plain signed first webhook exactly as the Flask view
would, and hands everything unusual to that view, body intact."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode
from uuid import uuid4

import pytest
from flask import Flask
from werkzeug.datastructures import MultiDict
from werkzeug.test import Client

from hotline.metrics import WebhookMetrics
from hotline.wiring import Wiring
from ivr.entry import MAX_BODY_BYTES, VoiceEntry
from tests.support.calls import Lookups

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

FORM = "application/x-www-form-urlencoded"


class FlaskSpy:
    """The Flask app behind the lane, counting the requests it was handed."""

    def __init__(self, flask_wsgi: WSGIApplication) -> None:
        self.flask_wsgi = flask_wsgi
        self.handed_over: list[str] = []

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        self.handed_over.append(environ["PATH_INFO"])
        return self.flask_wsgi(environ, start_response)


@pytest.fixture
def spy(app: Flask) -> Iterator[FlaskSpy]:
    # Outermost but for the webhooks' timer, which must see the lane's answers too.
    assert isinstance(app.wsgi_app, WebhookMetrics)
    entry = app.wsgi_app.app
    assert isinstance(entry, VoiceEntry), "the app factory puts the lane outermost"
    yield FlaskSpy(entry.app)


@pytest.fixture
def lane(wiring: Wiring, spy: FlaskSpy) -> Client:
    return Client(VoiceEntry(spy, wiring))


def first_webhook(**extra: str) -> dict[str, str]:
    return {
        "CallSid": "CA" + uuid4().hex,
        "AccountSid": "AC" + "1" * 32,
        "From": "+8613800000000",
        "To": "+865374412345",
        "CallStatus": "ringing",
        "Direction": "inbound",
        "ApiVersion": "2010-04-01",
        **extra,
    }


def sign(wiring: Wiring, params: Any, query: str = "") -> str:
    url = wiring.settings.public_base_url + "/ivr/voice" + (f"?{query}" if query else "")
    return str(wiring.twilio_validator.compute_signature(url, params))


def post(client: Client, body: str | bytes, signature: str, **kwargs: Any) -> Any:
    headers = {"X-Twilio-Signature": signature}
    kwargs.setdefault("content_type", FORM)
    return client.post("/ivr/voice", data=body, headers=headers, **kwargs)


def test_the_lane_answers_what_the_view_answers_and_writes_the_same_row(
    app: Flask, wiring: Wiring, spy: FlaskSpy, lane: Client, lookups: Lookups
) -> None:
    by_lane, by_view = first_webhook(), first_webhook()
    fast = post(lane, urlencode(by_lane), sign(wiring, by_lane))
    slow = post(Client(spy.flask_wsgi), urlencode(by_view), sign(wiring, by_view))
    assert spy.handed_over == []  # the lane settled its request alone
    assert (fast.status_code, slow.status_code) == (200, 200)
    assert fast.get_data() == slow.get_data() == wiring.call_flow.welcome_twiml.encode()
    assert fast.headers["Content-Type"] == slow.headers["Content-Type"]
    assert "Set-Cookie" not in fast.headers
    for params in (by_lane, by_view):  # committed before the answer, with the call's details
        call = lookups.call(params["CallSid"])
        assert call is not None
        assert call.from_number == params["From"]
        assert call.details == {"Direction": "inbound", "ApiVersion": "2010-04-01"}


def test_a_retried_first_webhook_in_the_lane_writes_one_row(
    wiring: Wiring, spy: FlaskSpy, lane: Client, lookups: Lookups
) -> None:
    params = first_webhook()
    answers = [post(lane, urlencode(params), sign(wiring, params)) for _ in range(3)]
    assert spy.handed_over == []
    assert [answer.status_code for answer in answers] == [200] * 3
    assert lookups.count_calls(params["CallSid"]) == 1


@pytest.mark.parametrize(
    "unusual",
    ["query string", "repeated parameter", "non-ASCII body", "multipart", "oversized"],
)
def test_unusual_requests_go_to_the_view_with_their_body_and_are_served_there(
    unusual: str, wiring: Wiring, spy: FlaskSpy, lane: Client, lookups: Lookups
) -> None:
    params: Any = first_webhook()
    call_sid = params["CallSid"]
    query, kwargs = "", {}
    if unusual == "query string":
        query = "source=test"
        body: str | bytes = urlencode(params)
    elif unusual == "repeated parameter":
        params = [*params.items(), ("Direction", "inbound")]
        body = urlencode(params)
    elif unusual == "non-ASCII body":  # raw UTF-8 where a client should have escaped it
        body = (urlencode(params) + "&CallerName=张三").encode()
        params["CallerName"] = "张三"
    elif unusual == "multipart":
        body, kwargs = params, {"content_type": "multipart/form-data"}
    else:
        params["Padding"] = "x" * MAX_BODY_BYTES
        body = urlencode(params)
    signature = sign(wiring, _multidict(params), query)
    path = "/ivr/voice" + (f"?{query}" if query else "")
    headers = {"X-Twilio-Signature": signature}
    kwargs.setdefault("content_type", FORM)
    answer = lane.post(path, data=body, headers=headers, **kwargs)
    assert spy.handed_over == ["/ivr/voice"]
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_data() == wiring.call_flow.welcome_twiml.encode()
    assert lookups.count_calls(call_sid) == 1


def _multidict(params: Any) -> MultiDict[str, str]:
    """Parameters as Twilio signs them: every value of a repeated name counts."""
    return MultiDict(params.items() if isinstance(params, dict) else params)


def test_a_forged_or_incomplete_first_webhook_is_refused_by_the_view(
    wiring: Wiring, spy: FlaskSpy, lane: Client, lookups: Lookups
) -> None:
    forged = first_webhook()
    refused = post(lane, urlencode(forged), "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    incomplete = first_webhook()
    del incomplete["AccountSid"]
    unclear = post(lane, urlencode(incomplete), sign(wiring, incomplete))
    assert spy.handed_over == ["/ivr/voice", "/ivr/voice"]
    assert refused.status_code == 403
    assert unclear.status_code == 400
    assert "missing parameter AccountSid" in unclear.get_data(as_text=True)
    assert lookups.count_calls(forged["CallSid"]) == lookups.count_calls(incomplete["CallSid"]) == 0


@pytest.mark.parametrize(
    "refused",
    ["query string not signed", "not a form", "non-ASCII signature", "shorter than announced"],
)
def test_what_the_view_refuses_the_lane_does_not_accept(
    refused: str, wiring: Wiring, spy: FlaskSpy, lane: Client, lookups: Lookups
) -> None:
    params = first_webhook()
    body, signature = urlencode(params), sign(wiring, params)
    kwargs: dict[str, Any]
    path, kwargs = "/ivr/voice", {"content_type": FORM}
    if refused == "query string not signed":  # signed for the bare URL, sent to another
        path += "?source=test"
    elif refused == "not a form":  # a form type by prefix only: werkzeug parses no form
        kwargs["content_type"] = FORM + "-but-not"
    elif refused == "non-ASCII signature":
        signature = "签名" + signature[2:]
    else:
        kwargs["environ_overrides"] = {"CONTENT_LENGTH": str(len(body) + 10)}
    answer = lane.post(path, data=body, headers={"X-Twilio-Signature": signature}, **kwargs)
    assert spy.handed_over == ["/ivr/voice"]
    expected = 400 if refused == "shorter than announced" else 403
    assert answer.status_code == expected, answer.get_data(as_text=True)
    assert lookups.count_calls(params["CallSid"]) == 0


def test_a_write_that_fails_in_the_lane_is_tried_again_by_the_view(
    wiring: Wiring,
    spy: FlaskSpy,
    lane: Client,
    lookups: Lookups,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The lane's write fails only when the queue is full, so the lane waits for its write
    # (backpressure), and that write fails.
    group_commit = wiring.database.group_commit
    failures: list[int] = []

    def fails_once(size: int) -> None:
        if not failures:
            failures.append(size)
            raise RuntimeError("database is locked")

    monkeypatch.setattr(group_commit, "max_pending", 0)
    monkeypatch.setattr(group_commit, "before_transaction", fails_once)
    params = first_webhook()
    answer = post(lane, urlencode(params), sign(wiring, params))
    assert failures == [1]
    assert spy.handed_over == ["/ivr/voice"]
    assert answer.status_code == 200
    assert answer.get_data() == wiring.call_flow.welcome_twiml.encode()
    assert lookups.count_calls(params["CallSid"]) == 1


def test_other_requests_pass_through_untouched(spy: FlaskSpy, lane: Client) -> None:
    assert lane.get("/healthz").status_code == 200
    assert lane.get("/ivr/voice").status_code == 405
    assert spy.handed_over == ["/healthz", "/ivr/voice"]
