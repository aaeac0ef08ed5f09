"""Open311 GeoReport v2 in the domain's terms: the keys other systems post with, a case seen as
a service request, the searches the spec allows, the requests they post (opened as written
reports), and the updates each side sends the other (FixMyStreet's `servicerequestupdates`).

What a service request shows is public: no phone, e-mail or name, and the words only of a
report that came in through Open311 itself (the client published them already); a call's
transcript or a text can name people, so it is never shown. Statuses: a case still worked on is
`open`, a resolved or closed one `closed`, and a repeat report (并单) follows the case it joined.

api/open311.py reads the HTTP requests and renders XML and JSON; this module decides.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import tomllib
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, aliased, selectinload

from cases import numbers, throttles
from cases.errors import InvalidInputError, UnknownCaseError
from cases.free_text import LINE, PROSE, TextRule, readable
from cases.intake import WrittenReport, open_case_from_writing
from cases.locales import LOCALES
from cases.merging import followed_case
from cases.models import (
    ACTIVE_STATUSES,
    Case,
    CaseEvent,
    CaseStatus,
    Category,
    Department,
    Intake,
    Open311Key,
    utcnow,
)
from cases.privacy import hide_phone_numbers
from cases.timeline import add_event

KEY_PREFIX = "o311_"
# The spec's limits on a search: at most 90 days, and the first 1,000 requests.
MAX_SPAN = timedelta(days=90)
MAX_RESULTS = 1000
# A POST repeated within this time by the same client, with the same service code, words,
# place, device and account, is a retry (FixMyStreet resends a report whose answer it missed):
# it gets the case the first one opened.
RETRY_WINDOW = timedelta(minutes=10)
CLOSED_STATUSES = (CaseStatus.RESOLVED, CaseStatus.CLOSED)
# A link sent with a report or an update (a photo's URL).
URL = TextRule(max_length=2000, multiline=False)
# The event kinds this module adds to a case's timeline.
RECEIVED = "open311_received"
CLIENT_UPDATE = "open311_update"
# FixMyStreet's statuses for an update (it reads them in any case, `_` for a space).
UPDATE_STATUSES = frozenset(
    {
        "open",
        "closed",
        "fixed",
        "in_progress",
        "action_scheduled",
        "investigating",
        "duplicate",
        "not_councils_responsibility",
        "no_further_action",
        "internal_referral",
        "for_triage",
        "cancelled",
        "reopen",
    }
)
# A client's POSTs, per minute: a FixMyStreet sends its reports in batches every few minutes.
POST_POLICY = throttles.Policy(
    kind="open311_post",
    # Only the ceiling counts: every POST is one "failure" of the client's (its name stands
    # where an address stands), and past `address_ceiling` in a minute the client waits.
    free=10**9,
    base=timedelta(seconds=1),
    cap=timedelta(seconds=1),
    address_ceiling=120,
    ceiling_window=timedelta(minutes=1),
    memory=timedelta(minutes=2),
)


class UnknownServiceError(InvalidInputError):
    """No category has that service code."""

    def __init__(self, code: str) -> None:
        super().__init__(f"service_code {code!r} was not found")
        self.code = code


class BadRequestError(InvalidInputError):
    """A parameter is missing or malformed (the spec's 400)."""


class UnknownTokenError(InvalidInputError):
    """No request was given that token."""

    def __init__(self, token: str) -> None:
        super().__init__(f"token {token!r} was not found")


# Keys ----------------------------------------------------------------------------------------


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def make_key(session: Session, *, name: str) -> str:
    """A new key for the client `name`, returned once (only its hash is kept). A revoked
    client's name can be given a new key; a client with a working key keeps it."""
    name = LINE.clean(name, field="name")
    if len(name) > 80:
        raise InvalidInputError("the name is longer than 80 characters")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = session.scalars(select(Open311Key).where(Open311Key.name == name)).one_or_none()
    if row is not None and row.revoked_at is None:
        raise InvalidInputError(f"{name!r} has a key already: revoke it first")
    if row is None:
        row = Open311Key(name=name, key_hash=_key_hash(key))
        session.add(row)
    else:
        row.key_hash, row.revoked_at, row.created_at = _key_hash(key), None, utcnow()
    session.flush()
    return key


def revoke_key(session: Session, *, name: str) -> None:
    """Stop the client's key working at once."""
    row = session.scalars(select(Open311Key).where(Open311Key.name == name)).one_or_none()
    if row is None or row.revoked_at is not None:
        raise InvalidInputError(f"no working Open311 key is named {name!r}")
    row.revoked_at = utcnow()


def client_for_key(session: Session, *, key: str) -> str | None:
    """The name of the client whose working key this is, or None. Every working key's hash is
    compared in constant time, so how long this takes tells nothing about any key."""
    digest = _key_hash(key)
    rows = session.execute(
        select(Open311Key.name, Open311Key.key_hash).where(Open311Key.revoked_at.is_(None))
    ).all()
    found = None
    for name, stored in rows:
        if hmac.compare_digest(stored, digest):
            found = name
    return found


def check_post_rate(session: Session, *, client: str, now: datetime) -> throttles.Verdict:
    """Whether the client may post now; counts this POST if it may."""
    verdict = throttles.check(
        session, policy=POST_POLICY, subject="post", remote_addr=client, now=now
    )
    if verdict.allowed:
        throttles.record_failure(
            session, policy=POST_POLICY, subject="post", remote_addr=client, now=now
        )
    return verdict


# Dates ---------------------------------------------------------------------------------------

# The W3C note's profile of ISO 8601 (https://www.w3.org/TR/NOTE-datetime): a complete date, or
# one with hours and minutes, seconds and a decimal fraction optional, and then the zone.
_W3C = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2}))?"
)


def parse_w3c(value: str, *, field: str, zone: ZoneInfo) -> datetime:
    """A W3C datetime; a date alone is its midnight on the city's clock. The spec requires the
    zone on a datetime, so one without it is refused like any malformed date."""
    # A "+" left unescaped in a query string arrives as a space: "...T10:00:00 08:00".
    match = _W3C.fullmatch(re.sub(r" (\d{2}:\d{2})$", r"+\1", value.strip()))
    if match is None:
        raise BadRequestError(
            f"{field} must be a W3C datetime with its zone, such as 2026-12-03T19:49:00+08:00"
        )
    year, month, day, hour, minute, second, fraction, tz = match.groups()
    text = f"{year}-{month}-{day}"
    if hour is not None:
        text += f"T{hour}:{minute}:{second or '00'}"
        text += f".{(fraction or '0')[:6].ljust(6, '0')}"
        text += "+00:00" if tz == "Z" else tz
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequestError(f"{field} is not a real date and time: {value!r}") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=zone)


def w3c(value: datetime, *, zone: ZoneInfo) -> str:
    """A timestamp as the spec writes it: to the second, on the city's clock, with its offset."""
    return value.astimezone(zone).replace(microsecond=0).isoformat()


def search_window(
    start: datetime | None, end: datetime | None, *, now: datetime
) -> tuple[datetime, datetime]:
    """The span searched: as given, else the 90 days before `end` (or now), never more."""
    if start is None and end is None:
        return now - MAX_SPAN, now
    try:
        if start is None:
            assert end is not None
            return end - MAX_SPAN, end
        if end is None:
            return start, start + MAX_SPAN
    except OverflowError:  # 0001-01-01 or 9999-12-31: no span of 90 days fits the calendar
        raise BadRequestError("start_date or end_date is out of range") from None
    if start > end:
        raise BadRequestError("start_date is after end_date")
    if end - start > MAX_SPAN:
        raise BadRequestError("start_date and end_date may not span more than 90 days")
    return start, end


# Wording -------------------------------------------------------------------------------------

Wording = Mapping[str, Mapping[str, str]]


def load_wording(path: Path) -> dict[str, dict[str, str]]:
    """The texts of config/open311.toml per locale; every locale must have every key."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    missing_locales = [locale for locale in LOCALES if locale not in data]
    if missing_locales:
        raise ValueError(f"{path}: no texts for {', '.join(missing_locales)}")
    keys = set(data[LOCALES[0]])
    for locale in LOCALES:
        if set(data[locale]) != keys:
            raise ValueError(f"{path}: [{locale}] lacks {sorted(keys ^ set(data[locale]))}")
    return {locale: {key: str(text) for key, text in data[locale].items()} for locale in LOCALES}


@dataclass(frozen=True)
class Speech:
    """Everything an answer is written with: the texts and names of one locale, and the clock."""

    locale: str
    texts: Mapping[str, str]
    zone: ZoneInfo
    categories: Mapping[str, Category]
    departments: Mapping[str, Department]

    def say(self, key: str, **values: object) -> str:
        """A text of config/open311.toml with its placeholders filled in."""
        return self.texts[key].format(**values)

    def department_name(self, code: str | None) -> str | None:
        """A department's name in this locale, or None."""
        department = self.departments.get(code or "")
        return department.name(self.locale) if department is not None else code

    def local_time(self, value: datetime) -> str:
        """A date and time as people read it, on the city's clock."""
        return value.astimezone(self.zone).strftime("%Y-%m-%d %H:%M")


def speech(session: Session, *, wording: Wording, locale: str, zone: ZoneInfo) -> Speech:
    """The speech of one answer: the directory is small and read once per request."""
    return Speech(
        locale=locale,
        texts=wording[locale],
        zone=zone,
        categories={c.code: c for c in session.scalars(select(Category))},
        departments={d.code: d for d in session.scalars(select(Department))},
    )


# Services ------------------------------------------------------------------------------------


def _limit(category: Category, speech: Speech) -> str:
    if category.time_limit_hours is not None:
        return speech.say("limit_hours", hours=category.time_limit_hours)
    return speech.say("limit_working_days", days=category.time_limit_working_days)


def service_record(category: Category, speech: Speech) -> dict[str, Any]:
    """One category as a GeoReport service, its fields in the spec's order."""
    name = category.name(speech.locale)
    department = speech.department_name(category.department_code)
    # Its names in every language: a client searching in another language still finds it.
    keywords = dict.fromkeys([name, *(str(n) for n in category.names.values()), category.code])
    return {
        "service_code": category.code,
        "service_name": name,
        "description": speech.say(
            "service_description", name=name, department=department, limit=_limit(category, speech)
        ),
        # No attributes: the words and the place are all a report needs.
        "metadata": False,
        "type": "realtime",
        "keywords": ", ".join(keywords),
        "group": department,
    }


def service_records(speech: Speech) -> list[dict[str, Any]]:
    """Every category as a service, by code."""
    return [service_record(speech.categories[code], speech) for code in sorted(speech.categories)]


def service_definition(code: str, speech: Speech) -> dict[str, Any]:
    """The definition of a service: no attributes are asked for."""
    if code not in speech.categories:
        raise UnknownServiceError(code)
    return {"service_code": code, "attributes": []}


# Service requests ----------------------------------------------------------------------------


def public_status(case: Case) -> str:
    """`open` while the problem is worked on, `closed` once resolved or closed; a repeat report
    has the status of the case it joined."""
    return "closed" if followed_case(case).status in CLOSED_STATUSES else "open"


def _status_notes(case: Case, speech: Speech) -> str:
    followed = followed_case(case)
    department = speech.department_name(followed.department_code) or ""
    if followed is not case:
        note = speech.say("notes_merged", number=followed.number)
        if followed.status in CLOSED_STATUSES and _public_reply(case):
            note += "\n" + _public_reply(case)
        return note
    if case.status in CLOSED_STATUSES:
        return _public_reply(case) or speech.say("notes_closed")
    if case.status == CaseStatus.ACCEPTED:
        return speech.say("notes_accepted", department=department)
    if case.status == CaseStatus.ASSIGNED:
        return speech.say("notes_assigned", department=department)
    return speech.say("notes_dispatching")


def _service_notice(case: Case, speech: Speech) -> str:
    followed = followed_case(case)
    if followed.department_code and followed.deadline_at and followed.status in ACTIVE_STATUSES:
        return speech.say(
            "notice_deadline",
            department=speech.department_name(followed.department_code),
            deadline=speech.local_time(followed.deadline_at),
        )
    if followed.status in CLOSED_STATUSES:
        return speech.say("notes_closed")
    return speech.say("notice_dispatching")


def _updated_at(case: Case) -> datetime:
    followed = followed_case(case)
    if followed.status in CLOSED_STATUSES:
        # The spec: for a closed request, the time it was closed.
        return followed.closed_at or followed.resolved_at or followed.updated_at
    return max(case.updated_at, followed.updated_at)


def _hinted_service_code(case: Case) -> str | None:
    received = next((e for e in case.events if e.kind == RECEIVED), None)
    return received.data.get("service_code") if received is not None else None


def _public_text(text: str | None) -> str:
    """A reporter's or a department's words, with any phone number in them masked."""
    return readable(hide_phone_numbers(text)) if text else ""


def _public_reply(case: Case) -> str:
    """The department's reply, for a report an Open311 client sent: written to its reporter,
    who reads it there anyway. A reply to a caller can greet them by name: never shown."""
    followed = followed_case(case)
    # Both: a report an Open311 client sent, merged into a caller's case, has that caller's
    # reply, which is not for the public.
    if case.intake != Intake.OPEN311 or followed.intake != Intake.OPEN311:
        return ""
    return _public_text(followed.resolution)


def request_record(case: Case, speech: Speech) -> dict[str, Any]:
    """A case as a GeoReport service request, its fields in the spec's order. Public: nothing
    of its reporter, and words and place only from an Open311 client (see the module's note)."""
    followed = followed_case(case)
    code = followed.category_code or case.category_code
    if code is None and case.intake == Intake.OPEN311:
        code = _hinted_service_code(case)  # not classified yet: the client's own code
    category = speech.categories.get(code or "")
    from_open311 = case.intake == Intake.OPEN311
    return {
        "service_request_id": case.number,
        "status": public_status(case),
        "status_notes": readable(_status_notes(case, speech)),
        "service_name": category.name(speech.locale) if category is not None else None,
        "service_code": code,
        "description": _public_text(case.report_text) if from_open311 else None,
        "agency_responsible": speech.department_name(followed.department_code),
        "service_notice": _service_notice(case, speech),
        "requested_datetime": w3c(case.opened_at, zone=speech.zone),
        "updated_datetime": w3c(_updated_at(case), zone=speech.zone),
        "expected_datetime": w3c(followed.deadline_at, zone=speech.zone)
        if followed.deadline_at is not None
        else None,
        "address": readable(case.address) if from_open311 and case.address else None,
        "address_id": None,
        "zipcode": None,
        "lat": case.lat if from_open311 else None,
        "long": case.long if from_open311 else None,
        "media_url": None,
    }


@dataclass(frozen=True)
class RequestSearch:
    """GET requests' filters, as the spec defines them."""

    numbers: tuple[str, ...] = ()
    service_codes: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None


def _listed() -> Select[Case]:
    # The joined case is read for every row; the events only for a request not yet classified.
    return select(Case).options(selectinload(Case.merged_into))


def find_requests(
    session: Session, *, search: RequestSearch, speech: Speech, now: datetime
) -> list[Case]:
    """The cases a search finds, newest first, at most 1,000. Listed ids override every other
    filter (the spec's rule); an id that is no case is left out."""
    if search.numbers:
        # Only what could be a case number reaches the database (PostgreSQL refuses a NUL).
        wanted = [n for n in search.numbers if numbers.could_be_a_case_number(n)][:MAX_RESULTS]
        cases = session.scalars(_listed().where(Case.number.in_(wanted))).all()
        order = {number: position for position, number in enumerate(search.numbers)}
        return sorted(cases, key=lambda case: order[case.number])
    unknown = [code for code in search.service_codes if code not in speech.categories]
    if unknown:
        raise BadRequestError(f"service_code {', '.join(map(repr, unknown))} was not found")
    start, end = search_window(search.start, search.end, now=now)
    joined = aliased(Case)
    query = (
        _listed()
        .outerjoin(joined, Case.merged_into_id == joined.id)
        .where(Case.opened_at >= start, Case.opened_at <= end)
    )
    if search.service_codes:
        query = query.where(
            func.coalesce(joined.category_code, Case.category_code).in_(search.service_codes)
        )
    if search.statuses and set(search.statuses) != {"open", "closed"}:
        status = func.coalesce(joined.status, Case.status)
        closed = [str(s) for s in CLOSED_STATUSES]
        query = query.where(
            status.in_(closed) if "closed" in search.statuses else ~status.in_(closed)
        )
    return list(
        session.scalars(query.order_by(Case.opened_at.desc(), Case.id.desc()).limit(MAX_RESULTS))
    )


def get_request(session: Session, *, number: str) -> Case:
    """The case with this number, or UnknownCaseError."""
    if not numbers.could_be_a_case_number(number):
        raise UnknownCaseError(number)
    case = session.scalars(_listed().where(Case.number == number)).one_or_none()
    if case is None:
        raise UnknownCaseError(number)
    return case


# What `secrets.token_urlsafe` makes, at most the column's width.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,40}")


def number_for_token(session: Session, *, token: str) -> str:
    """The case number a POST's token stands for, or UnknownTokenError."""
    if not _TOKEN.fullmatch(token):
        raise UnknownTokenError(token)
    number = session.scalars(select(Case.number).where(Case.open311_token == token)).first()
    if number is None:
        raise UnknownTokenError(token)
    return number


# Posting a request ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PostedRequest:
    """A POST requests' parameters, as read (the adapter checks the key and that a location
    was given)."""

    client: str
    service_code: str
    description: str
    point: tuple[float, float] | None = None
    address: str | None = None
    address_id: str | None = None
    device_id: str | None = None
    account_id: str | None = None
    media_url: str | None = None
    attributes: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def fingerprint(self) -> str:
        """What makes two POSTs the same report (the retry rule, `RETRY_WINDOW`)."""
        parts = [
            self.service_code,
            self.description,
            self.point,
            self.address,
            self.address_id,
            self.device_id,
            self.account_id,
            sorted((key, list(values)) for key, values in self.attributes.items()),
        ]
        return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode()).hexdigest()


@dataclass(frozen=True)
class Received:
    """The case a POST opened (or, for a retry, had opened), and whether this POST opened it."""

    case: Case
    created: bool


def written_locale(text: str) -> str:
    """The language a report is written in, by its letters: Hangul, Han, else English."""
    letters = [char for char in text if char.isalpha()]
    hangul = sum(1 for char in letters if "HANGUL" in unicodedata.name(char, ""))
    han = sum(1 for char in letters if "CJK" in unicodedata.name(char, ""))
    if hangul and hangul >= han:
        return "ko-KR"
    if han:
        return "zh-CN"
    return "en-US"


def _earlier_post(session: Session, *, posted: PostedRequest, since: datetime) -> Case | None:
    events = session.scalars(
        select(CaseEvent)
        .join(Case, CaseEvent.case_id == Case.id)
        .where(
            Case.open311_client == posted.client,
            Case.opened_at >= since,
            CaseEvent.kind == RECEIVED,
        )
        .order_by(CaseEvent.id)
    ).all()
    fingerprint = posted.fingerprint()
    return next((e.case for e in events if e.data.get("fingerprint") == fingerprint), None)


def receive_request(session: Session, *, posted: PostedRequest, now: datetime) -> Received:
    """Open a case for a posted request, or find the one its earlier copy opened.

    The client's service code is kept on the timeline as its hint; the classifier still reads
    the words and routes (a code chosen from a list is often the nearest, not the right one),
    and a decision it is unsure of goes to the desk, which sees the hint. The adapter queues
    the routing after commit.
    """
    # The client's key row is locked: two copies of one POST in flight run one after the
    # other, and the second finds the first's case.
    session.scalars(
        select(Open311Key.id).where(Open311Key.name == posted.client).with_for_update()
    ).all()
    code = posted.service_code
    # Printable ASCII before any query: PostgreSQL refuses a NUL, and codes are plain words.
    if not (code.isascii() and code.isprintable()) or session.get(Category, code) is None:
        raise UnknownServiceError(code)
    text = PROSE.clean(posted.description, field="description")
    earlier = _earlier_post(session, posted=posted, since=now - RETRY_WINDOW)
    if earlier is not None:
        return Received(case=earlier, created=False)
    actor = f"open311:{posted.client}"[:80]
    case = open_case_from_writing(
        session,
        report=WrittenReport(
            intake=Intake.OPEN311,
            text=text,
            locale=written_locale(text),
            address=LINE.clean(posted.address, field="address_string", required=False) or None,
            point=posted.point,
            open311_client=posted.client,
            open311_token=secrets.token_urlsafe(18),
        ),
        actor=actor,
    )
    add_event(
        session,
        case=case,
        kind=RECEIVED,
        actor=actor,
        service_code=code,
        fingerprint=posted.fingerprint(),
        address_id=LINE.clean(posted.address_id, field="address_id", required=False) or None,
        media_url=URL.clean(posted.media_url, field="media_url", required=False) or None,
        attributes={
            LINE.clean(key, field="attribute"): [
                PROSE.clean(value, field=f"attribute[{key}]", required=False) for value in values
            ]
            for key, values in posted.attributes.items()
        },
    )
    session.flush()
    return Received(case=case, created=True)


# Updates (FixMyStreet's servicerequestupdates) -----------------------------------------------


@dataclass(frozen=True)
class UpdateKind:
    """How one kind of timeline event reads as an update: its status, and its text."""

    status: str
    text: str
    # The event's data item that names the department, if the text names one.
    department_from: str | None = None


# The events a reporter may hear about; working notes, escalations and the like stay inside.
UPDATE_KINDS: dict[str, UpdateKind] = {
    "routed": UpdateKind("open", "update_assigned", "department"),
    "triaged": UpdateKind("open", "update_assigned", "department"),
    "ruling": UpdateKind("open", "update_assigned", "to_department"),
    "accepted": UpdateKind("in_progress", "update_accepted", "department"),
    "transferred": UpdateKind("internal_referral", "update_transferred", "to_department"),
    "sent_back": UpdateKind("for_triage", "update_sent_back"),
    "resolved": UpdateKind("fixed", "update_resolved"),
    "closed": UpdateKind("closed", "update_closed"),
    "reopened": UpdateKind("open", "update_reopened"),
    "merged_into": UpdateKind("duplicate", "update_merged"),
    "split_from": UpdateKind("open", "update_split"),
}


def update_id(case: Case, event: CaseEvent) -> str:
    """An update's id: stable, unique, and naming the case it is about."""
    return f"{case.number}-{event.id}"


def _update_text(event: CaseEvent, kind: UpdateKind, speech: Speech) -> str:
    case = event.case
    if event.kind == "resolved":
        reply = _public_reply(case)
        if reply:
            return reply
    if event.kind == "routed" and event.data.get("needs_triage"):
        return speech.say("update_triage")
    if event.kind == "merged_into":
        return speech.say("update_merged", number=event.data.get("into", ""))
    department = event.data.get(kind.department_from) if kind.department_from else None
    named = speech.department_name(department or case.department_code) or ""
    return speech.say(kind.text, department=named)


def _update_status(event: CaseEvent, kind: UpdateKind) -> str:
    if event.kind == "routed" and event.data.get("needs_triage"):
        return "for_triage"
    return kind.status


def update_record(event: CaseEvent, speech: Speech) -> dict[str, Any]:
    """One timeline event as a `request_update`, its fields in FixMyStreet's order."""
    kind = UPDATE_KINDS[event.kind]
    return {
        "update_id": update_id(event.case, event),
        "service_request_id": event.case.number,
        "status": _update_status(event, kind),
        "updated_datetime": w3c(event.created_at, zone=speech.zone),
        "description": readable(_update_text(event, kind, speech)),
        "media_url": None,
    }


def find_updates(
    session: Session, *, start: datetime | None, end: datetime | None, now: datetime
) -> list[CaseEvent]:
    """The status changes in the window, oldest first, at most 1,000 (the search's rules)."""
    start, end = search_window(start, end, now=now)
    return list(
        session.scalars(
            select(CaseEvent)
            .options(selectinload(CaseEvent.case).selectinload(Case.merged_into))
            .where(
                CaseEvent.kind.in_(list(UPDATE_KINDS)),
                CaseEvent.created_at >= start,
                CaseEvent.created_at <= end,
            )
            .order_by(CaseEvent.created_at, CaseEvent.id)
            .limit(MAX_RESULTS)
        )
    )


@dataclass(frozen=True)
class PostedUpdate:
    """A client's update on a request (a citizen's comment on FixMyStreet)."""

    client: str
    number: str
    update_id: str
    status: str
    updated_at: datetime
    description: str
    media_url: str | None = None


def record_update(session: Session, *, posted: PostedUpdate) -> str:
    """Put the citizen's update on the timeline of the case the request leads to, once per
    client and update id, and answer our id for it. It changes no status: the department and
    the desk read it and act (a "fixed" from a citizen is their view, not the department's
    reply). Names and addresses sent with it are not kept."""
    if not numbers.could_be_a_case_number(posted.number):
        raise UnknownCaseError(posted.number)
    case = session.scalars(
        select(Case).where(Case.number == posted.number).with_for_update()
    ).one_or_none()
    # A client speaks for the reports it sent, not for others' (whose numbers the public
    # searches list): anything else is, to it, a request it does not have.
    if case is None or case.open311_client != posted.client:
        raise UnknownCaseError(posted.number)
    status = posted.status.strip().lower().replace(" ", "_")
    if status not in UPDATE_STATUSES:
        raise BadRequestError(f"status {posted.status!r} is not one this server knows")
    update_key = LINE.clean(posted.update_id, field="update_id")
    followed = followed_case(case)
    for event in [*case.events, *followed.events]:
        if (
            event.kind == CLIENT_UPDATE
            and event.data.get("client") == posted.client
            and event.data.get("update_id") == update_key
        ):
            return update_id(event.case, event)
    event = add_event(
        session,
        case=followed,
        kind=CLIENT_UPDATE,
        actor=f"open311:{posted.client}"[:80],
        client=posted.client,
        update_id=update_key,
        report=case.number,
        status=status,
        description=PROSE.clean(posted.description, field="description", required=False),
        updated_datetime=posted.updated_at.isoformat(),
        media_url=URL.clean(posted.media_url, field="media_url", required=False) or None,
    )
    session.flush()
    return update_id(followed, event)
