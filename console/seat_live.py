"""What the seat page shows of the call an operator is on, read from the database: the caller,
why they asked for a person, the words heard so far, the router's and the knowledge base's
suggestions for those words, the caller's earlier cases, and an emergency heard live.

The page shows this as of its load; `seat_stream` keeps it live over server-sent events.

Why server-sent events fed by polling the database, not a socket fed by the streams process:
nothing may depend on one process's memory. The words are decoded in the `streams` process,
the page is served by any of several `web` processes (on any machine), and the queue's
webhooks land on any of them too; the one place they all meet is the database
(`QueueEntry.live_text`, written a few times a second). So each open seat page polls its own
seat's row about twice a second, in a short transaction, and sends an event only when
something changed. SSE is plain HTTP: the session cookie authenticates it like any page, it
needs no other server, and EventSource reconnects by itself, so each stream ends after
`STREAM_SECONDS` and a gunicorn gthread worker's thread is never held for good.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cases import staff
from cases.models import Call, Case, CaseStatus, Category, QueueEntry, Seat, SeatStatus, utcnow
from cases.seats import current_entry, earlier_cases, seat_of
from cases.timeline import last_event
from hotline.wiring import Wiring
from routing.decide import Decision, Route
from routing.router import routes_from_categories

log = logging.getLogger("hotline.console")

# How long one stream lasts before the browser reconnects (EventSource does so by itself).
STREAM_SECONDS = 55.0
# How often a stream reads its seat's row.
POLL_SECONDS = 0.5
# A comment line this often keeps proxies from closing a quiet stream.
KEEP_ALIVE_SECONDS = 15.0
# How soon EventSource reconnects after a stream ends (milliseconds).
RECONNECT_MILLISECONDS = 1000
# How much of an earlier case's words the seat page shows.
EARLIER_TEXT_CHARS = 160


@dataclass(frozen=True)
class LiveCall:
    """The call the operator is on (or has just had), as the page shows it."""

    entry_id: int
    call_sid: str
    caller_number: str | None
    locale: str
    reason: str
    waited_seconds: int
    live_text: str
    live_updated_at: datetime | None
    emergency: Mapping[str, str] | None
    on_call: bool


@dataclass(frozen=True)
class EarlierCase:
    """One of the caller's earlier cases, in a line."""

    number: str
    status: CaseStatus
    category_code: str | None
    department_code: str | None
    opened_at: datetime
    words: str


@dataclass(frozen=True)
class SeatView:
    """The operator's seat as of one read: plain values, usable after the session closes."""

    seat_id: int
    address: str
    status: SeatStatus
    status_since: datetime
    wrap_up_until: datetime | None
    call: LiveCall | None
    # The case the operator opened for this call, once they have.
    opened_case: str | None
    earlier: tuple[EarlierCase, ...]

    @property
    def wrap_up_seconds_left(self) -> int:
        """Seconds of wrap-up time left now (0 when not wrapping up)."""
        if self.wrap_up_until is None:
            return 0
        return max(int((self.wrap_up_until - utcnow()).total_seconds()), 0)

    def fingerprint(self) -> str:
        """What a change of which is worth an event (not the clock: the page counts down)."""
        call = self.call
        return json.dumps(
            [
                self.address,
                str(self.status),
                self.status_since.isoformat(),
                self.wrap_up_until.isoformat() if self.wrap_up_until else None,
                call.entry_id if call else None,
                call.live_text if call else None,
                dict(call.emergency) if call and call.emergency else None,
                call.on_call if call else None,
                self.opened_case,
                [case.number + str(case.status) for case in self.earlier],
            ]
        )


@dataclass(frozen=True)
class Article:
    """The knowledge base's article for the words heard so far."""

    id: str
    title: str
    answer: str
    confidence: float


@dataclass(frozen=True)
class Advice:
    """The machine's suggestions for the words heard so far."""

    decision: Decision | None
    article: Article | None

    def shown(self) -> dict[str, Any] | None:
        """The routing suggestion in the shape the console's templates show one
        (`console.presenters.suggestion`), with the place and deadline besides."""
        decision = self.decision
        if decision is None:
            return None
        explanation = decision.explanation
        rule = explanation.get("emergency_rule") or explanation.get("urgent_rule")
        return {
            "category": decision.category,
            "department": decision.department,
            "urgency": decision.urgency,
            "confidence": decision.confidence,
            "top": [(item[0], item[1]) for item in explanation.get("top") or []],
            "rule": rule,
            "override": explanation.get("override"),
            "triage": explanation.get("triage"),
            "threshold": explanation.get("threshold"),
            "place": explanation.get("place"),
            "deadline_rule": explanation.get("deadline_rule"),
            "deadline": decision.deadline,
        }


NO_ADVICE = Advice(decision=None, article=None)


def active_entry(session: Session, *, seat_id: int) -> QueueEntry | None:
    """The call the seat is on, or has had and not yet wrapped up; None otherwise."""
    seat = session.get(Seat, seat_id)
    if seat is None:
        return None
    entry = current_entry(session, seat=seat)
    if entry is None or entry.operator != seat.user.username:
        return None
    if entry.wrap_up is not None and seat.status != SeatStatus.ON_CALL:
        return None
    return entry


def case_of_call(session: Session, *, call_sid: str) -> Case | None:
    """The case the call made (its report, or the one its operator opened), if any."""
    return session.scalars(
        select(Case).join(Call, Case.call_id == Call.id).where(Call.call_sid == call_sid)
    ).one_or_none()


def _earlier(session: Session, entry: QueueEntry) -> tuple[EarlierCase, ...]:
    rows = []
    own = case_of_call(session, call_sid=entry.call_sid)
    for case in earlier_cases(session, number=entry.caller_number):
        if own is not None and case.id == own.id:
            continue  # this call's own report is not an earlier case
        opened = last_event(case, "opened_at_seat")
        words = case.transcript.text if case.transcript is not None else ""
        if not words and opened is not None:
            words = str(opened.data.get("summary") or "")
        rows.append(
            EarlierCase(
                number=case.number,
                status=CaseStatus(case.status),
                category_code=case.category_code,
                department_code=case.department_code,
                opened_at=case.opened_at,
                words=words[:EARLIER_TEXT_CHARS],
            )
        )
    return tuple(rows)


@dataclass
class EarlierCache:
    """A stream's copy of the earlier cases of the call it shows: read once per call, not on
    every poll."""

    entry_id: int | None = None
    cases: tuple[EarlierCase, ...] = ()


def read_seat(
    session: Session, *, user_id: int, cache: EarlierCache | None = None
) -> SeatView | None:
    """The operator's seat and its call as the database holds them now; None without a seat."""
    seat = seat_of(session, user_id=user_id)
    if seat is None:
        return None
    entry = active_entry(session, seat_id=seat.id)
    call: LiveCall | None = None
    opened: str | None = None
    earlier: tuple[EarlierCase, ...] = ()
    if entry is not None:
        now = utcnow()
        waited = entry.wait_seconds
        if waited is None:
            waited = int(((entry.answered_at or now) - entry.enqueued_at).total_seconds())
        call = LiveCall(
            entry_id=entry.id,
            call_sid=entry.call_sid,
            caller_number=entry.caller_number,
            locale=entry.locale,
            reason=entry.reason,
            waited_seconds=max(waited, 0),
            live_text=entry.live_text or "",
            live_updated_at=entry.live_updated_at,
            emergency=dict(entry.emergency) if entry.emergency else None,
            on_call=seat.status == SeatStatus.ON_CALL,
        )
        own = case_of_call(session, call_sid=entry.call_sid)
        if own is not None and own.owner == seat.user.username:
            opened = own.number
        if cache is None:
            earlier = _earlier(session, entry)
        else:
            if cache.entry_id != entry.id:
                cache.entry_id, cache.cases = entry.id, _earlier(session, entry)
            earlier = cache.cases
    return SeatView(
        seat_id=seat.id,
        address=seat.address,
        status=SeatStatus(seat.status),
        status_since=seat.status_since,
        wrap_up_until=seat.wrap_up_until,
        call=call,
        opened_case=opened,
        earlier=earlier,
    )


def is_earlier_case(session: Session, *, user_id: int, number: str) -> bool:
    """Whether the case is one of the earlier cases of the caller the operator is talking to
    now (the only cases an operator sees that they do not own)."""
    view = read_seat(session, user_id=user_id)
    return view is not None and any(case.number == number for case in view.earlier)


def directory_routes(session: Session) -> dict[str, Route]:
    """The time limits admins set, for the router."""
    return routes_from_categories(session.scalars(select(Category)))


def suggest_article(wiring: Wiring, session: Session, text: str, locale: str) -> Article | None:
    """The knowledge base's article for the words, or None (also when retrieval fails: the
    seat page must show whatever happens)."""
    if not text.strip():
        return None
    try:
        suggestion = wiring.knowledge.suggest(session, text, locale)
    except Exception:  # a broken index costs the suggestion, never the page
        log.exception("knowledge suggestion failed at a seat")
        return None
    if suggestion is None:
        return None
    article_text = suggestion.article.text(locale)
    return Article(
        id=suggestion.article.id,
        title=article_text.title,
        answer=article_text.answer,
        confidence=suggestion.confidence,
    )


def decide(wiring: Wiring, text: str, routes: Mapping[str, Route]) -> Decision | None:
    """The router's decision, with its explanation, for the words heard so far; None for no
    words yet, or when the router fails (the operator decides without it)."""
    if not text.strip():
        return None
    try:
        return wiring.router.decide(text, opened_at=utcnow(), directory=routes or None)
    except Exception:
        log.exception("routing suggestion failed at a seat")
        return None


def event(name: str, data: Mapping[str, Any]) -> str:
    """One server-sent event: its data is one line of JSON."""
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False, default=str)}\n\n"


def seat_stream(
    wiring: Wiring,
    *,
    user_id: int,
    token: str,
    render: Callable[[SeatView, Advice], Mapping[str, Any]],
) -> Iterator[str]:
    """Server-sent events of the operator's seat: the state now, then each change, a comment
    every KEEP_ALIVE_SECONDS, until STREAM_SECONDS have passed or the staff session behind
    `token` has ended (signed out, deactivated: the reconnect then meets the sign-in page).

    Each read is its own short transaction (on SQLite every transaction passes the write
    gate); the router runs outside it, and only when the words changed.
    """
    yield f"retry: {RECONNECT_MILLISECONDS}\n\n"
    ends = time.monotonic() + STREAM_SECONDS
    last_fingerprint, last_words, advice = None, None, NO_ADVICE
    last_sent = time.monotonic()
    earlier = EarlierCache()
    while time.monotonic() < ends:
        with wiring.database.session() as session, session.begin():
            if staff.user_for_session(session, token=token, now=utcnow()) is None:
                return
            view = read_seat(session, user_id=user_id, cache=earlier)
            words = (view.call.entry_id, view.call.live_text) if view and view.call else None
            if view is not None and words != last_words and view.call is not None:
                article = suggest_article(wiring, session, view.call.live_text, view.call.locale)
                routes = directory_routes(session)
            else:
                article, routes = None, None
        if view is None:
            yield event("seat", {"seat": None})
            return
        if words != last_words:
            decision = None
            if view.call is not None and routes is not None:
                decision = decide(wiring, view.call.live_text, routes)
            advice, last_words = Advice(decision=decision, article=article), words
        fingerprint = view.fingerprint()
        if fingerprint != last_fingerprint:
            yield event("seat", render(view, advice))
            last_fingerprint, last_sent = fingerprint, time.monotonic()
        elif time.monotonic() - last_sent >= KEEP_ALIVE_SECONDS:
            yield ": keep-alive\n\n"
            last_sent = time.monotonic()
        time.sleep(POLL_SECONDS)
