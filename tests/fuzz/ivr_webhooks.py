"""Hypothesis-driven webhooks on every `/ivr/*` path the app serves (run by
`tests.fuzz.harness` in a process of its own; `tests/fuzz/test_fuzz.py` starts it).

The paths come from the app's url_map, so a new webhook is fuzzed as soon as it exists. Most
requests are signed the way Twilio signs them (over the URL rebuilt from PUBLIC_BASE_URL and
the parameters as the app reads them), so they get past the signature check and reach the
handlers; the rest are unsigned or forged. The inputs: odd text (lone surrogates, NUL, control
and RTL marks, emoji sequences, combining characters, full-width and other-script digits), huge
and missing values, repeated parameters, bad query strings (our action URLs carry lang, miss,
attempt, case and sms), wrong methods and content types, bodies that are not UTF-8.

Properties, for every request:
- never a 5xx, and nothing escapes the app (a crash); a 200 or a refusal, no other answer;
- a 200 from an /ivr path is TwiML: well-formed XML whose root is <Response>;
- an unsigned or forged request is refused (403, or 405 for a method the path does not take);
- a refused request (any 4xx) writes no row: every table's count is the same after it.
"""

from __future__ import annotations

import json
import string
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import quote, quote_plus

from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from twilio.request_validator import RequestValidator
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from cases.models import Case
from hotline.wiring import Wiring, wiring_of
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_BASE_URL
from tests.fuzz.harness import ErrorLog, Figures, RowCounts, examples

VALIDATOR = RequestValidator(AUTH_TOKEN)
FORM = "application/x-www-form-urlencoded"
METHODS = ["GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]

# Text that has broken web apps before: each alone, and mixed into generated text.
ODD_TEXT = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "\udfff",
    "x\udc80y",
    "\u202eevil\u202c",
    "\u200f\u200e\u061c",
    "\ufeff",
    "\uffff\ufffe",
    "👨‍👩‍👧‍👦",
    "🇨🇳",
    "e" + "\u0301" * 40,
    "Z̸̢̛͎̈́a̷l̵g̶o̴",
    "\r\n\t\x0b\x0c\x1b[31m",
    "<Response><Hangup/></Response>",
    "]]><!--",
    "'\";--",
    "%s%n{0}{}",
    "&",
    "=",
    "+",
    "%",
    "%00",
    "１２３４５",
    "٣٤٥",
    "৭",
    "𝟗𝟗",
    "井路灯坏了",
    "hangup",
]
NUMBERS = [
    "0",
    "-1",
    "7",
    " 7 ",
    "1e309",
    "NaN",
    "inf",
    "0x10",
    "99999999999999999999",
    "-99999999999999999999",
    "9" * 400,
    "3.5",
    "٣",
]
TWILIO_VALUES = {
    "From": ["+8613912345678", "anonymous", "+266696687", ""],
    "To": ["+865374412345"],
    "Caller": ["+8613912345678"],
    "CallStatus": ["in-progress", "completed", "busy", "no-answer", "failed", "canceled"],
    "Digits": ["", "1", "2", "3", "9", "0", "#", "*", "hangup", "123456789012#", "1234"],
    "RecordingUrl": [
        "http://127.0.0.1:9/2010-04-01/Accounts/AC1/Recordings/RE1",
        "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1",
        "file:///etc/passwd",
        "",
    ],
    "RecordingSid": ["RE" + "1" * 32, "RE" + "2" * 32, ""],
    "RecordingDuration": ["7", "0", "180"],
    "RecordingStatus": ["completed", "failed", "absent", "in-progress"],
    "DialCallStatus": ["completed", "no-answer", "busy", "failed"],
    "DialCallDuration": ["0", "95"],
    # The queue for a person: Twilio's <Enqueue> action and wait URL, and the <Queue> url.
    "QueueResult": ["bridged", "hangup", "leave", "error", "queue-full", "redirected"],
    "QueueTime": ["0", "14", "181"],
    "QueuePosition": ["1", "2", "40"],
    "DequeingCallSid": ["CA" + "3" * 32, ""],
    "Body": ["5", "1", "５分", "123456789012 2", "路灯坏了", "STOP", ""],
    "MessageSid": ["SM" + "1" * 32, "SM" + "2" * 32],
    "ErrorCode": ["11200", "12100"],
    "ErrorUrl": [PUBLIC_BASE_URL + "/ivr/recorded"],
    "Direction": ["inbound"],
    "ApiVersion": ["2010-04-01"],
    "FromCountry": ["CN", "US"],
}
QUERY_VALUES = {
    "lang": ["zh-CN", "en-US", "ko-KR", "fr-FR", "zh-cn"],
    "miss": ["0", "1", "2", "3"],
    "attempt": ["0", "1"],
    "case": ["123456789012", "1"],
    "sms": ["0", "1"],
    "why": ["asked", "menu_misses", "report_then_person", "not_emergency", "nonsense"],
    "seat": ["1", "2", "0"],
    "offer": ["0", "1", "2"],
}
# Query strings no client of ours would send.
RAW_QUERIES = [
    "%",
    "%zz",
    "%ED%A0%80",
    "lang=%ED%A0%80&miss=%FF",
    "=&=&&",
    "lang",
    "miss=%00",
    ";lang=en-US",
    "lang=en-US;miss=9",
    "lang=zh-CN&lang=ko-KR&miss=1&miss=2",
    "a=" + "b" * 8000,
    "%F0%9F%92%A9=%F0%9F%92%A9",
    "case=../../etc&sms=%0d%0a",
]
CONTENT_TYPES = [
    FORM,
    FORM + "; charset=latin-1",
    "Application/X-WWW-Form-URLEncoded",
    "multipart/form-data; boundary=x",
    "application/json",
    "text/plain",
    "text/xml",
    "application/octet-stream",
    "",
]


@dataclass(frozen=True)
class Attempt:
    """One request to send: where, how, what, and how it is signed."""

    path: str
    method: str
    query: str
    body: bytes
    content_type: str | None
    multipart: tuple[tuple[str, str], ...] | None
    signing: str  # valid | none | forged | other-url | garbage

    def builder(self, signature: str | None) -> EnvironBuilder:
        """The request as werkzeug's test client sends it."""
        headers = [("X-Twilio-Signature", signature)] if signature is not None else []
        if self.multipart is not None:
            data: dict[str, list[str]] = {}
            for key, value in self.multipart:
                data.setdefault(key, []).append(value)
            return EnvironBuilder(
                path=self.path,
                query_string=self.query,
                method=self.method,
                data=data,
                headers=headers,
            )
        builder = EnvironBuilder(
            path=self.path,
            query_string=self.query,
            method=self.method,
            data=self.body,
            headers=headers,
        )
        if self.content_type is None:
            builder.headers.pop("Content-Type", None)
            builder.content_type = None
        else:
            builder.content_type = self.content_type
        return builder


def sign(attempt: Attempt) -> str | None:
    """The X-Twilio-Signature to send, or None to send none."""
    if attempt.signing == "none":
        return None
    if attempt.signing == "forged":
        return "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    if attempt.signing == "garbage":
        return "ÿ\x7f=="  # not base64, not ASCII (a header is latin-1)
    # What the app reads: the form as werkzeug parses it, the query string as it came.
    read = Request(attempt.builder(None).get_environ())
    base = PUBLIC_BASE_URL if attempt.signing == "valid" else "http://localhost"
    query = read.query_string.decode("latin-1")
    url = f"{base}{read.path}" + (f"?{query}" if query else "")
    return str(VALIDATOR.compute_signature(url, read.form))


def _as_bytes(value: str) -> bytes:
    # A lone surrogate travels as the three bytes a careless encoder writes (WTF-8).
    return value.encode("utf-8", "surrogatepass")


def _pairs_to_body(pairs: Sequence[tuple[str, str]], *, percent_encode: bool) -> bytes:
    if percent_encode:
        return b"&".join(
            f"{quote_plus(_as_bytes(k))}={quote_plus(_as_bytes(v))}".encode() for k, v in pairs
        )
    return b"&".join(_as_bytes(k) + b"=" + _as_bytes(v) for k, v in pairs)


# Short text from every Unicode category, surrogates and controls included.
ODD = st.one_of(
    st.sampled_from(ODD_TEXT),
    st.text(st.characters(codec=None, exclude_categories=()), max_size=30),
    st.lists(st.sampled_from(ODD_TEXT), min_size=2, max_size=5).map("".join),
)
# Values far beyond anything Twilio sends (the voice entry's lane reads at most 16 KiB).
HUGE = st.builds(
    lambda char, size: char * size,
    st.sampled_from(["9", "x", "井", "\ud800", "%", "é"]),
    st.integers(min_value=2_000, max_value=10_000),
)
EXTRA_PARAMETER = st.tuples(st.one_of(ODD, st.text(string.ascii_letters, max_size=12)), ODD)
FRESH_SID = st.uuids().map(lambda u: f"CA{u.hex}")


def values_of(plausible: Sequence[str]) -> st.SearchStrategy[list[str]]:
    """Zero, one or several values for a parameter: plausible, odd, numeric, huge."""
    one = st.one_of(
        st.sampled_from(list(plausible)),
        st.sampled_from(list(plausible)),
        ODD,
        st.sampled_from(NUMBERS),
        HUGE,
    )
    return st.one_of(
        st.just([]),  # missing
        one.map(lambda value: [value]),
        one.map(lambda value: [value]),
        one.map(lambda value: [value]),
        st.lists(one, min_size=2, max_size=4),  # repeated
    )


def _pairs_named(name: str) -> Callable[[list[str]], list[tuple[str, str]]]:
    return lambda values: [(name, value) for value in values]


def parameters(
    values: dict[str, list[str]], *, call_sids: Sequence[str], sids: bool
) -> st.SearchStrategy[list[tuple[str, str]]]:
    """Parameters by name (each missing, once or repeated), some unknown ones, and (with
    `sids`) the CallSid and AccountSid every Twilio request has, usually present."""
    named = [values_of(plausible).map(_pairs_named(name)) for name, plausible in values.items()]
    parts = [*named, st.lists(EXTRA_PARAMETER, max_size=3)]
    if sids:
        call_sid = st.one_of(st.sampled_from(list(call_sids)), FRESH_SID, FRESH_SID, ODD, st.none())
        account_sid = st.one_of(st.just(ACCOUNT_SID), st.just(ACCOUNT_SID), ODD, st.none())
        parts.append(call_sid.map(lambda v: [("CallSid", v)] if v is not None else []))
        parts.append(account_sid.map(lambda v: [("AccountSid", v)] if v is not None else []))
    return st.tuples(*parts).map(lambda lists: [pair for pairs in lists for pair in pairs])


def attempts(
    paths: Sequence[str], *, case_numbers: Sequence[str], call_sids: Sequence[str]
) -> st.SearchStrategy[Attempt]:
    """Fuzzed requests (the strategies are built once: building them per draw is slow)."""
    query_values = {**QUERY_VALUES, "case": [*QUERY_VALUES["case"], *case_numbers]}
    encoded_query = parameters(query_values, call_sids=call_sids, sids=False).map(
        lambda pairs: "&".join(
            f"{quote(_as_bytes(k), safe='')}={quote(_as_bytes(v), safe='')}" for k, v in pairs
        )
    )
    query = st.one_of(encoded_query, encoded_query, encoded_query, st.sampled_from(RAW_QUERIES))
    form_values = {
        **TWILIO_VALUES,
        "Digits": [*TWILIO_VALUES["Digits"], *case_numbers],
        "Body": [*TWILIO_VALUES["Body"], *(f"{n} 1" for n in case_numbers)],
    }
    form = parameters(form_values, call_sids=call_sids, sids=True).flatmap(st.permutations)
    method = st.one_of(st.just("POST"), st.just("POST"), st.just("POST"), st.sampled_from(METHODS))
    signing = st.sampled_from(["valid"] * 7 + ["none", "forged", "other-url", "garbage"])
    encoding = st.sampled_from(
        ["form", "form", "form", "form", "raw", "multipart", "json", "binary"]
    )
    form_type = st.sampled_from([FORM, FORM, FORM, *CONTENT_TYPES, None])
    any_type = st.sampled_from([*CONTENT_TYPES, None])

    @st.composite
    def attempt(draw: st.DrawFn) -> Attempt:
        pairs = draw(form)
        how = draw(encoding)
        content_type: str | None = FORM
        multipart = None
        if how == "form":
            body = _pairs_to_body(pairs, percent_encode=True)
            content_type = draw(form_type)
        elif how == "raw":  # bytes as they are: NUL, surrogate bytes, non-UTF-8
            body = _pairs_to_body(pairs, percent_encode=False)
        elif how == "multipart":
            body = b""
            multipart = tuple(
                (_as_bytes(k).decode("utf-8", "replace"), _as_bytes(v).decode("utf-8", "replace"))
                for k, v in pairs
            )
        elif how == "json":
            body = json.dumps(dict(pairs), ensure_ascii=False).encode("utf-8", "surrogatepass")
            content_type = "application/json"
        else:
            body = draw(st.binary(max_size=2_000))
            content_type = draw(any_type)
        return Attempt(
            path=draw(st.sampled_from(list(paths))),
            method=draw(method),
            query=draw(query),
            body=body,
            content_type=content_type,
            multipart=multipart,
            signing=draw(signing),
        )

    return attempt()


def ivr_paths(app: Flask) -> list[str]:
    """Every path under /ivr/ the app routes (none takes a variable part today)."""
    paths = sorted(
        {rule.rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/ivr/")}
    )
    assert all("<" not in path for path in paths), "a path with a variable part: fuzz it too"
    return paths


def is_twiml(body: bytes) -> bool:
    """Whether an answer is a well-formed TwiML document."""
    try:
        return ET.fromstring(body).tag == "Response"
    except ET.ParseError:
        return False


def _seed_calls(fuzz_app: Flask, wiring: Wiring) -> tuple[list[str], list[str]]:
    """A few calls that reached a case, so that status look-ups, the emergency check and the
    ratings meet real numbers and real calls."""
    client = fuzz_app.test_client()
    call_sids = [f"CA{uuid.uuid4().hex}" for _ in range(3)]
    for index, call_sid in enumerate(call_sids):
        base = {"CallSid": call_sid, "AccountSid": ACCOUNT_SID, "From": "+8613912345678"}
        steps = [
            ("/ivr/voice", base),
            (
                "/ivr/recorded?lang=zh-CN&attempt=0",
                {
                    **base,
                    "RecordingUrl": "http://127.0.0.1:9/Recordings/RE" + str(index),
                    "RecordingSid": f"RE{uuid.uuid4().hex}",
                    "RecordingDuration": "7",
                    "Digits": "#",
                },
            ),
        ]
        for path, form in steps:
            signature = VALIDATOR.compute_signature(PUBLIC_BASE_URL + path, form)
            answer = client.post(path, data=form, headers={"X-Twilio-Signature": signature})
            assert answer.status_code == 200, answer.get_data(as_text=True)
    with wiring.database.session() as session:
        numbers = list(session.scalars(select(Case.number)))
    assert numbers, "the seeded calls opened no case"
    return numbers, call_sids


def fuzz(app: Flask, row_counts: RowCounts, errors: ErrorLog, seen: Figures) -> None:
    """Send `examples()` fuzzed requests; raise, with the smallest failing one, if a property
    fails."""
    paths = ivr_paths(app)
    case_numbers, call_sids = _seed_calls(app, wiring_of(app))
    client = app.test_client()

    @settings(
        max_examples=examples(),
        deadline=None,
        database=None,
        # The explain phase replays the failure many times over; the shrunk input is enough.
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(attempts(paths, case_numbers=case_numbers, call_sids=call_sids))
    def one_request(attempt: Attempt) -> None:
        before, errors_before = row_counts(), errors.count
        try:
            answer = client.open(attempt.builder(sign(attempt)))
        except Exception:
            seen.crashes += 1
            raise
        status = answer.status_code
        seen.answered(status)
        # The voice entry writes the call's row behind its answer: let that write fail here.
        row_counts.database.group_commit.flush()
        # An exception caught and answered politely (the IVR apologises with a 200) is still a
        # crash: odd input deserves a clear refusal or a normal answer, not an exception.
        crashed_inside = errors.count > errors_before
        seen.internal_errors += crashed_inside
        assert not crashed_inside, f"the app logged an exception:\n{errors.last[-3000:]}"
        assert status < 500, f"{status} for {attempt}:\n{answer.get_data(as_text=True)[:2000]}"
        # Twilio follows a 200's TwiML; anything but that or a refusal leaves the caller stuck.
        assert status == 200 or status >= 400, f"{status} for {attempt}"
        if attempt.signing != "valid":
            assert status in (403, 405), f"an unsigned or forged request got {status}"
        if status == 200 and attempt.method != "HEAD":
            assert is_twiml(answer.get_data()), f"not TwiML: {answer.get_data()[:500]!r}"
        if 400 <= status < 500:
            written = RowCounts.written(before, row_counts())
            seen.rows_written_by_rejected += sum(written.values())
            assert not written, f"a refused request ({status}) wrote {written}"

    one_request()
