"""What the console's templates show, in the staff member's language: labels of statuses,
lights, roles and events, the directory's names, case rows with their lights, the classifier's
suggestion, and an event's details."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import format_datetime, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from cases.access import DISPATCH_DESK, LEADERSHIP, Actor
from cases.clock import display_light
from cases.models import (
    ACTIVE_STATUSES,
    LOGGED_RECEIPT,
    AdminEvent,
    Case,
    CaseEvent,
    CaseStatus,
    Category,
    Channel,
    Delivery,
    DeliveryStatus,
    Department,
    Intake,
    Light,
    Role,
    utcnow,
)
from console import forms

# Status filters on case lists: "active" (the default) is what still needs work.
STATUS_FILTERS: dict[str, tuple[CaseStatus, ...] | None] = {
    "active": ACTIVE_STATUSES,
    "all": None,
    **{str(status): (status,) for status in CaseStatus},
}
STATUS_LABELS = {
    CaseStatus.OPEN: _l("Open"),
    CaseStatus.TRIAGE: _l("Triage"),
    CaseStatus.ASSIGNED: _l("Assigned"),
    CaseStatus.ACCEPTED: _l("Accepted"),
    CaseStatus.SENT_BACK: _l("Sent back"),
    CaseStatus.RESOLVED: _l("Resolved"),
    CaseStatus.CLOSED: _l("Closed"),
    CaseStatus.MERGED: _l("Merged"),
}
# How a report came in (cases.models.Intake).
INTAKE_LABELS = {
    Intake.VOICE: _l("Phone call"),
    Intake.SMS: _l("Text message"),
    Intake.WEB: _l("Web form"),
    Intake.OPEN311: _l("Open311"),
}
# Where a transcript came from (cases.models.Transcript.source).
TRANSCRIPT_SOURCE_LABELS = {
    "live": _l("the live stream, during the call"),
    "batch": _l("the recording, after the call"),
}
# The caller's language in the reader's (the seat's switch names each in its own instead).
LANGUAGE_LABELS = {"zh-CN": _l("Mandarin"), "en-US": _l("English"), "ko-KR": _l("Korean")}
LIGHT_LABELS = {Light.GREEN: _l("On time"), Light.YELLOW: _l("Due soon"), Light.RED: _l("Overdue")}
URGENCY_LABELS = forms.URGENCY_LABELS

# How routing writes a deadline's rule into the case's explanation (`routing.decide`):
# "24 h", "5 working days", "2 h (urgent)". Kept as written, shown in the reader's words.
_HOURS_RULE = re.compile(r"^(\d+) h(?: \((\w+)\))?$")
_WORKING_DAYS_RULE = re.compile(r"^(\d+) working days?$")
# Why a rule overrode the category's limit (the urgency it names).
_RULE_URGENCY_LABELS = {"urgent": _l("urgent matter"), "emergency": _l("emergency")}


def deadline_rule_label(rule: str | None) -> str:
    """A routing deadline rule as staff read it ("5 个工作日", "2 小时（紧急事项）"); a rule
    in no known form is shown as written, a missing one as a dash."""
    if not rule:
        return "—"
    if hours := _HOURS_RULE.match(rule):
        count, urgency = int(hours.group(1)), hours.group(2)
        text = str(ngettext("%(num)d hour", "%(num)d hours", count))
        if urgency:
            urgency_label = _RULE_URGENCY_LABELS.get(urgency, urgency)
            text = str(_("%(limit)s (%(urgency)s)", limit=text, urgency=urgency_label))
        return text
    if days := _WORKING_DAYS_RULE.match(rule):
        count = int(days.group(1))
        return str(ngettext("%(num)d working day", "%(num)d working days", count))
    return rule


# Who wrote a timeline entry when no member of staff did (`cases.timeline.add_event`'s actor).
MACHINE_ACTOR_LABELS = {
    "system": _l("System"),
    "ivr": _l("Voice menu"),
    "caller": _l("Caller"),
    "sms": _l("Text message"),
    "web": _l("Web report form"),
    "seat": _l("Operator seat"),
    # The knowledge base's shipped articles (config/knowledge), loaded by `flask init`.
    "seed": _l("Shipped with the system"),
}


def actor_label(actor: str) -> str:
    """A timeline entry's author as staff read it: a machine's part named in their language,
    an Open311 client by its name, a member of staff by their username."""
    if actor in MACHINE_ACTOR_LABELS:
        return str(MACHINE_ACTOR_LABELS[actor])
    if actor.startswith("open311:"):
        return str(_("Open311 client %(client)s", client=actor.removeprefix("open311:")))
    return actor


ROLE_LABELS = {
    Role.DISPATCHER: _l("Dispatcher"),
    Role.DEPARTMENT: _l("Department staff"),
    Role.SUPERVISOR: _l("Supervisor"),
    Role.OPERATOR: _l("Operator"),
    Role.ADMIN: _l("Administrator"),
}
EVENT_LABELS = {
    "opened": _l("Case opened from a call"),
    "recording_stored": _l("Recording stored"),
    "flagged_for_review": _l("Flagged for the desk"),
    "transcribed": _l("Transcribed"),
    "routing_suggested": _l("Routing suggested"),
    "routed": _l("Routed"),
    "emergency_transfer": _l("Put through to emergency services"),
    "copied_to_leadership": _l("Copied to leadership"),
    "accepted": _l("Accepted"),
    "note": _l("Note"),
    "transferred": _l("Transferred"),
    "sent_back": _l("Sent back to the desk"),
    "ruling": _l("Desk ruling"),
    "triaged": _l("Triaged"),
    "opened_at_seat": _l("Written up by the operator who took the call"),
    "work_order_written": _l("Work order written"),
    "answered_by_desk": _l("Answered by the dispatch desk"),
    "callback_requested": _l("Call back to the caller asked for"),
    "assist_asked": _l("Department asked to assist (协办)"),
    "assist_replied": _l("Assisting department replied for its part"),
    "extension_requested": _l("More time asked for"),
    "extension_approved": _l("More time approved"),
    "extension_refused": _l("More time refused"),
    "resolved": _l("Resolved"),
    "rated": _l("Rated by the caller"),
    "closed": _l("Closed"),
    "reopened": _l("Reopened"),
    "escalated": _l("Escalated to leadership"),
    "supervised": _l("Supervision notice"),
    "light": _l("Deadline light changed"),
    "overdue_reminder": _l("Overdue reminder"),
    "sms_sent": _l("Case number texted to the caller"),
    "sms_logged": _l("Case number not texted: no SMS service is set up (written to the log only)"),
    "sms_failed": _l("Case number text failed"),
    "sms_opted_out": _l("Case number not texted: the caller texted STOP"),
    "report_part_added": _l("More of the text report arrived"),
    "delivered": _l("Delivered"),
    "delivery_failed": _l("Delivery failed: the desk was alerted"),
    "open311_received": _l("Received from another system (Open311)"),
    "open311_update": _l("Update from a citizen, through another system (Open311)"),
    "answered_at_once": _l("Answered at once"),
    "article_suggested": _l("Knowledge-base article suggested"),
    "check_skipped": _l("A check in the call could not run"),
    # 并单 (cases.merging): on the report that joined, and on the case it joined.
    "merged_into": _l("Merged into another case as a repeat report"),
    "reporter_joined": _l("A repeat report joined this case"),
    "split_from": _l("Split off the case it had joined"),
    "reporter_split": _l("A report was split off this case"),
}
# A written report's "opened" event says how it came in, not "from a call".
OPENED_LABELS = {
    Intake.SMS: _l("Case opened from a text message"),
    Intake.WEB: _l("Case opened from the web form"),
    Intake.OPEN311: _l("Case opened from an Open311 request"),
}
# How a merge was decided (the `how` of a merged_into / reporter_joined event).
MERGE_HOW_LABELS = {
    "desk": _l("by the desk"),
    "similar": _l("by the system: a similar report"),
}
# What a `check_skipped` event names (ivr/checks.py CHECKS, and the report step's reasons).
CHECK_SKIPPED_WORDS = {
    "emergency": _l("emergency"),
    "knowledge": _l("knowledge-base answer"),
    "live transcript late": _l("the live transcript came too late"),
    "no live transcript": _l("there was no live transcript"),
    "no live model for the locale": _l("no speech model hears this language live"),
    "database error": _l("the database could not be reached"),
    "knowledge base not ready in time": _l("the knowledge base was not ready in time"),
    "knowledge base failed": _l("the knowledge base failed"),
}
DETAIL_LABELS = {
    "reason": _l("Reason"),
    "text": _l("Note"),
    "work_order": _l("Work order"),
    "task": _l("Asked to do"),
    "summary": _l("Work order"),
    "before": _l("Before"),
    "until": _l("New deadline"),
    "previous_deadline": _l("Deadline before"),
    "reply": _l("Reply"),
    "ruling": _l("Ruling"),
    "instruction": _l("Instruction"),
    "department": _l("Department"),
    "from_department": _l("From"),
    "to_department": _l("To"),
    "responsible": _l("First-responsible"),
    "released": _l("Released"),
    "by": _l("By"),
    "sent_back_by": _l("Sent back by"),
    "upheld": _l("Send-back upheld"),
    "category": _l("Category"),
    "suggested": _l("Suggested"),
    "urgency": _l("Urgency"),
    "confidence": _l("Confidence"),
    "score": _l("Rating"),
    "light": _l("Light"),
    "on_time": _l("Resolved on time"),
    "automatic": _l("Automatic"),
    "previous_reply": _l("Previous reply"),
    "source": _l("Source"),
    "service": _l("Service"),
    "number": _l("Number"),
    "duration": _l("Seconds"),
    "duration_seconds": _l("Seconds"),
    "locale": _l("Language"),
    "error": _l("Error"),
    "recipient": _l("Recipient"),
    "channel": _l("Channel"),
    "topic": _l("Why"),
    "attempts": _l("Attempts"),
    "note": _l("Note"),
    "article": _l("Article"),
    "revision": _l("Revision"),
    "checks": _l("Checks"),
    "into": _l("Merged into"),
    "case_number": _l("Case"),
    "with_case": _l("With case"),
    "report": _l("Report"),
    "reports": _l("Reports"),
    "reporters": _l("Reporters"),
    "how": _l("How"),
    "intake": _l("Came in by"),
    "service_code": _l("Category the client suggested"),
    "client": _l("Sent by"),
    "description": _l("Description"),
    "updated_datetime": _l("Updated at"),
    "media_url": _l("Link"),
}
# Event data that names other cases (并单): shown as links to them.
CASE_NUMBER_KEYS = {"into", "case_number", "with_case", "report", "reports"}
DEPARTMENT_KEYS = {
    "department",
    "from_department",
    "to_department",
    "responsible",
    "released",
    "by",
    "sent_back_by",
}
# Event data that holds a moment (ISO 8601), shown on the city's clock.
TIME_KEYS = {"until", "previous_deadline"}
# Event data that is bulky or only for machines; the classification section shows routing.
HIDDEN_DETAILS = {
    # A delivery's bookkeeping (its id, the provider's receipt) and a failure's raw error,
    # which the log keeps: the deliveries table says what happened in words.
    "delivery_id",
    "receipt",
    "error",
    "explanation",
    # The callback task's row id: the case page links the task itself.
    "callback_task",
    "model_version",
    "call_sid",
    "recording_sid",
    "message_sid",
    "deadline",
    "needs_triage",
    "place",
    "emergency",
    "model",
    "size_bytes",
    # An Open311 client's bookkeeping: how a retried POST is known, its own ids, and the
    # citizen's status word (the description says it in words).
    "fingerprint",
    "address_id",
    "attributes",
    "update_id",
    "status",
    "submission",  # the web form's one-time token
}


def by_name(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """(code, name) pairs in the order a reader looks for a name: Chinese by pinyin, as
    GB 2312 orders its common characters (a rare one sorts after them), others by letters."""

    return sorted(pairs, key=lambda pair: pair[1].casefold().encode("gb18030", errors="replace"))


@dataclass
class NamedDirectory:
    """Departments and categories by code, named in the console's language."""

    departments: dict[str, Department]
    categories: dict[str, Category]
    locale: str

    def department_name(self, code: str | None) -> str:
        """A department's name, or a dash."""
        if not code:
            return "—"
        department = self.departments.get(code)
        return department.name(self.locale) if department else code

    def category_name(self, code: str | None) -> str:
        """A category's name, or a dash."""
        if not code:
            return "—"
        category = self.categories.get(code)
        return category.name(self.locale) if category is not None else code

    def handling_departments(self) -> list[tuple[str, str]]:
        """(code, name) of the departments that handle cases (not the desk, not leadership),
        in the reader's alphabetical order."""
        return by_name(
            (code, self.department_name(code))
            for code in self.departments
            if code not in (DISPATCH_DESK, LEADERSHIP)
        )

    def category_choices(self) -> list[tuple[str, str]]:
        """(code, name) of every category, in the reader's alphabetical order."""
        return by_name((code, self.category_name(code)) for code in self.categories)

    @classmethod
    def read(cls, session: Session, *, locale: str) -> NamedDirectory:
        """The directory as the database holds it now, named in `locale`."""
        departments = {
            d.code: d for d in session.scalars(select(Department).order_by(Department.code))
        }
        categories = {c.code: c for c in session.scalars(select(Category).order_by(Category.code))}
        return cls(departments=departments, categories=categories, locale=locale)


@dataclass(frozen=True)
class CaseRow:
    """One line of a case list."""

    case: Case
    light: Light


# Why a case went to the desk, as the domain and the jobs record it (in English, with the
# technical detail, which the log keeps too), said for the people who act on it.
REVIEW_REASONS: list[tuple[re.Pattern[str], Any]] = [
    (
        re.compile(r"^opened by the desk from a call"),
        _l("Opened by the desk from a call that ended without a report"),
    ),
    (
        re.compile(r"^no speech model"),
        _l("No speech model for the caller's language is installed: listen to the recording"),
    ),
    (
        re.compile(r"^unreadable audio"),
        _l("The recording could not be read: listen to it or call the caller back"),
    ),
    (
        re.compile(r"^transcription failed"),
        _l("The recording could not be transcribed: listen to it"),
    ),
    (
        re.compile(r"^recording \w+"),
        _l("The recording could not be fetched: call the caller back"),
    ),
    (
        re.compile(r"delivery to .* failed after"),
        _l("A message about the case could not be delivered: see its deliveries"),
    ),
    (
        re.compile(r"classifier", re.IGNORECASE),
        _l("The classifier is not installed: classify the case by hand"),
    ),
]


def review_reason_text(reason: str | None) -> str:
    """Why the desk should look at the case, in the reader's language: each recorded reason
    by its kind (a reason already written for people is kept as written)."""
    shown: list[str] = []
    for part in (part.strip() for part in (reason or "").split("; ")):
        if not part:
            continue
        if not re.search(r"[A-Za-z]{3,}", part):
            label = part
        else:
            label = next(
                (str(text) for pattern, text in REVIEW_REASONS if pattern.search(part)),
                str(_("Look at this case: the details are in the log")),
            )
        if label not in shown:
            shown.append(label)
    return "；".join(shown)


def problem_text(case: Case) -> str:
    """What the case is about, as staff read it first: the desk's work order (诉求内容), else
    the caller's own words (what they wrote, or the transcript of the call)."""
    if case.work_order:
        return case.work_order
    if case.report_text:
        return case.report_text
    return case.transcript.text if case.transcript is not None else ""


def case_rows(cases: list[Case]) -> list[CaseRow]:
    """Cases with the light each shows now."""
    now = utcnow()
    return [CaseRow(case=case, light=display_light(case, now=now)) for case in cases]


def suggestion(case: Case) -> dict[str, Any]:
    """What the classifier said about the case, in the shape the templates show."""
    routing = case.routing or {}
    explanation = routing.get("explanation") or {}
    rule = None
    if explanation.get("emergency_rule"):
        rule = explanation["emergency_rule"]
    elif explanation.get("urgent_rule"):
        rule = explanation["urgent_rule"]
    return {
        "category": routing.get("category"),
        "department": routing.get("department"),
        "urgency": routing.get("urgency"),
        "confidence": routing.get("confidence"),
        "top": [(item[0], item[1]) for item in explanation.get("top") or [] if len(item) == 2],
        "rule": rule,
        "override": explanation.get("override"),
        "triage": explanation.get("triage"),
        "threshold": explanation.get("threshold"),
        "place": explanation.get("place"),
        "deadline_rule": explanation.get("deadline_rule"),
        "model_version": routing.get("model_version"),
    }


@dataclass(frozen=True)
class EventDetail:
    """One line of an event's details: its label, the value shown, and the numbers of the
    other cases it names (并单), which the page links."""

    label: str
    value: str
    case_numbers: tuple[str, ...] = ()


CHANNEL_LABELS = {
    Channel.WEBHOOK: _l("Webhook"),
    Channel.EMAIL: _l("E-mail"),
    Channel.SMS: _l("Text to the duty officer"),
    Channel.CALLER_SMS: _l("Text to the caller"),
}
DELIVERY_STATUS_LABELS = {
    DeliveryStatus.PENDING: _l("Waiting to be sent"),
    DeliveryStatus.DELIVERED: _l("Delivered"),
    DeliveryStatus.FAILED: _l("Failed"),
    DeliveryStatus.WITHDRAWN: _l("Not sent: the caller texted STOP"),
}
# A message settled with LOGGED_RECEIPT: nothing was sent, whatever the row's status says.
LOGGED_LABELS: dict[Channel | None, Any] = {
    Channel.SMS: _l("Not sent: no SMS service is set up (written to the log only)"),
    Channel.CALLER_SMS: _l("Not sent: no SMS service is set up (written to the log only)"),
    Channel.EMAIL: _l("Not sent: no mail server is set up (written to the log only)"),
    None: _l("Not sent: no service is set up to send it (written to the log only)"),
}
# Why a message left, by its outbox topic (a repeat is "assigned-2": the same reason again).
TOPIC_LABELS = {
    "assigned": _l("Case assigned"),
    "assigned-after-split": _l("Case assigned after a split"),
    "copy": _l("Copy to leadership"),
    "assist": _l("Asked to assist"),
    "escalated": _l("Escalated"),
    "merged": _l("Merged into another case"),
    "overdue": _l("Overdue reminder"),
    "reopened": _l("Reopened by the caller"),
    "sent_back": _l("Sent back"),
    "supervision": _l("Supervision notice"),
    "delivery_failed": _l("Delivery failed: the desk was alerted"),
    "case_opened": _l("The case number"),
    "accepted": _l("Case accepted"),
    "answer": _l("The answer"),
    "resolved": _l("The department's reply"),
    "rating_thanks": _l("Thanks for the rating"),
}


def only_logged(delivery: Delivery) -> bool:
    """Whether the message was settled without being sent: no service was set up for it."""
    return delivery.status == DeliveryStatus.DELIVERED and delivery.receipt == LOGGED_RECEIPT


def delivery_labels(delivery: Delivery) -> dict[str, str]:
    """A delivery's channel, reason and status as the staff member reads them: a message no
    service was set up to send is said to be in the log, never "delivered"."""
    topic = re.sub(r"-\d+$", "", delivery.topic)
    if only_logged(delivery):
        status = LOGGED_LABELS.get(delivery.channel, LOGGED_LABELS[None])
    else:
        status = DELIVERY_STATUS_LABELS.get(DeliveryStatus(delivery.status), delivery.status)
    return {
        "channel": str(CHANNEL_LABELS.get(Channel(delivery.channel), delivery.channel)),
        "topic": str(TOPIC_LABELS.get(topic, topic)),
        "status": str(status),
    }


def event_label(event: CaseEvent) -> str:
    """What the timeline calls the event, in the staff member's language."""
    data = event.data or {}
    intake = data.get("intake")
    if event.kind == "opened" and intake in OPENED_LABELS:
        return str(OPENED_LABELS[intake])
    if event.kind == "delivered" and data.get("receipt") == LOGGED_RECEIPT:
        # Keyed by Channel, a StrEnum: the event's plain string finds its entry.
        return str(LOGGED_LABELS.get(data.get("channel"), LOGGED_LABELS[None]))
    return str(EVENT_LABELS.get(event.kind, event.kind))


def _shown(event: CaseEvent, key: str, value: Any, directory: NamedDirectory) -> str:
    if key in DEPARTMENT_KEYS and isinstance(value, str):
        return directory.department_name(value)
    if key in ("category", "suggested") and isinstance(value, str):
        return directory.category_name(value)
    if isinstance(value, bool):
        return str(_("yes") if value else _("no"))
    if key == "urgency" and isinstance(value, str):
        return str(URGENCY_LABELS.get(value, value))
    if key == "confidence" and isinstance(value, int | float):
        return f"{value:.0%}"
    if key == "channel" and isinstance(value, str) and value in set(Channel):
        return str(CHANNEL_LABELS[Channel(value)])
    if key == "recipient" and isinstance(value, str):
        return str(_("caller")) if value == "caller" else directory.department_name(value)
    if key == "topic" and isinstance(value, str):
        topic = re.sub(r"-\d+$", "", value)
        return str(TOPIC_LABELS.get(topic, topic))
    if event.kind == "flagged_for_review" and key == "reason" and isinstance(value, str):
        return review_reason_text(value)
    if key in TIME_KEYS and isinstance(value, str):
        return str(format_datetime(datetime.fromisoformat(value), "yyyy-MM-dd HH:mm"))
    if event.kind == "check_skipped" and key in ("checks", "reason"):
        words = value if isinstance(value, list) else [value]
        return "、".join(str(CHECK_SKIPPED_WORDS.get(str(w), w)) for w in words)
    if key == "how" and isinstance(value, str):
        return str(MERGE_HOW_LABELS.get(value, value))
    if key == "intake" and value in INTAKE_LABELS:
        return str(INTAKE_LABELS[value])
    if key in CASE_NUMBER_KEYS and isinstance(value, list):
        return "、".join(str(number) for number in value)
    return str(value)


def event_details(event: CaseEvent, directory: NamedDirectory) -> list[EventDetail]:
    """An event's data as labelled lines, department codes as names, other cases' numbers
    kept apart so the page can link them."""
    details = []
    for key, value in (event.data or {}).items():
        if key in HIDDEN_DETAILS or value is None or value == "":
            continue
        numbers: tuple[str, ...] = ()
        if key in CASE_NUMBER_KEYS:
            numbers = tuple(str(n) for n in (value if isinstance(value, list) else [value]))
        details.append(
            EventDetail(
                label=str(DETAIL_LABELS.get(key, key)),
                value=_shown(event, key, value, directory),
                case_numbers=numbers,
            )
        )
    return details


def shows_full_number(who: Actor) -> bool:
    """Dispatchers and admins may call the citizen back; everyone else sees a masked number."""
    return who.role in (Role.DISPATCHER, Role.ADMIN)


# The administrators' audit log (cases.audit), by action.
AUDIT_LABELS = {
    "channels": _l("Department channels set"),
    "api_key": _l("Department API key issued"),
    "user_added": _l("Account added"),
    "user_activated": _l("Account reactivated"),
    "user_deactivated": _l("Account deactivated"),
    "user_unlocked": _l("Account unlocked"),
    "reset_link": _l("Password reset link issued"),
    "time_limit": _l("Time limit changed"),
}
# Audit actions whose target is a staff account (a username, shown as a name).
AUDIT_ACCOUNT_ACTIONS = {"user_added", "user_activated", "user_deactivated", "user_unlocked"}
AUDIT_ACCOUNT_ACTIONS |= {"reset_link"}


def audit_target(event: AdminEvent, directory: NamedDirectory) -> str:
    """What an audited change was made to, named (a username is returned as it is)."""
    if event.action in ("channels", "api_key"):
        return directory.department_name(event.target)
    if event.action == "time_limit":
        return directory.category_name(event.target)
    return event.target


def _limit(hours: Any, working_days: Any) -> str:
    if hours is not None:
        return str(ngettext("%(num)s hour", "%(num)s hours", int(hours)))
    if working_days is not None:
        return str(ngettext("%(num)s working day", "%(num)s working days", int(working_days)))
    return "—"


def audit_details(event: AdminEvent, directory: NamedDirectory) -> str:
    """What an audited change did, in the reader's language."""
    data = event.data or {}
    if event.action == "channels":
        channels = [str(CHANNEL_LABELS.get(c, c)) for c in data.get("channels") or []]
        return "、".join(channels) or str(_("no channel: the console inbox only"))
    if event.action == "user_added":
        role_code = str(data.get("role") or "")
        role = str(ROLE_LABELS[Role(role_code)]) if role_code in set(Role) else role_code
        department = data.get("department")
        return f"{role} · {directory.department_name(department)}" if department else role
    if event.action == "user_unlocked":
        return str(_("%(count)s failed sign-ins forgotten", count=data.get("failures") or 0))
    if event.action == "time_limit":
        before = _limit(data.get("before_hours"), data.get("before_working_days"))
        after = _limit(data.get("hours"), data.get("working_days"))
        return str(_("from %(before)s to %(after)s", before=before, after=after))
    return ""
