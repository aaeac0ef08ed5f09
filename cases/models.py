"""SQLAlchemy models of the domain. Models never commit; services and their callers do."""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned timezone-aware (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# The largest id an integer primary key holds on PostgreSQL (SQLite's go further). An id read
# from a URL above it means "no such row"; passed to the database, it makes the query fail.
ROW_ID_MAX = 2**31 - 1


class Base(DeclarativeBase):
    """The one declarative base; the naming convention keeps Alembic's constraint names stable."""

    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


class CaseStatus(enum.StrEnum):
    """Where a case stands in its lifecycle."""

    OPEN = "open"  # opened from a call, waiting for transcription and routing
    TRIAGE = "triage"  # with the dispatch desk, to be classified by a person
    ASSIGNED = "assigned"  # pushed to a department, not yet accepted
    ACCEPTED = "accepted"  # a department has taken it and is working on it
    SENT_BACK = "sent_back"  # returned by a department (退单); the desk must rule
    RESOLVED = "resolved"  # the department replied; waiting for the caller's rating
    CLOSED = "closed"
    # A repeat report of the problem another case holds (并单): its reporter is a co-reporter
    # there, told that case's outcome; no department works on it (cases.merging).
    MERGED = "merged"


# A department still has work to do on a case in one of these.
ACTIVE_STATUSES = (
    CaseStatus.OPEN,
    CaseStatus.TRIAGE,
    CaseStatus.ASSIGNED,
    CaseStatus.ACCEPTED,
    CaseStatus.SENT_BACK,
)


class Light(enum.StrEnum):
    """The deadline light: yellow from 75% of the time limit, red once overdue."""

    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"


class Role(enum.StrEnum):
    """What a staff account may do; enforced in the queries (cases.access)."""

    DISPATCHER = "dispatcher"
    DEPARTMENT = "department"
    SUPERVISOR = "supervisor"
    # Answers calls at a seat (cases.seats): the queue rings them, they open the case.
    OPERATOR = "operator"
    ADMIN = "admin"


class Intake(enum.StrEnum):
    """How a report came in."""

    VOICE = "voice"  # a call: the words are the call's transcript
    SMS = "sms"  # a text to the hotline's number
    WEB = "web"  # the public site's report form
    OPEN311 = "open311"  # another system, through Open311 GeoReport v2


# Written reports carry their words on the case (Case.report_text), calls in a Transcript.
WRITTEN_INTAKES = (Intake.SMS, Intake.WEB, Intake.OPEN311)


class Channel(enum.StrEnum):
    """How a message leaves the hotline."""

    WEBHOOK = "webhook"
    EMAIL = "email"
    SMS = "sms"  # to a department's duty officer
    CALLER_SMS = "caller_sms"  # to the citizen who called


class DeliveryStatus(enum.StrEnum):
    """Where an outbox message stands."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # gave up after the retry window; the desk was alerted
    WITHDRAWN = "withdrawn"  # a text to a caller who texted STOP before it was sent


# The receipt of a message no service was set up to send (no SMS sender, no SMTP server): it
# was written to the log, and its row is settled as delivered so that it is not retried.
# Pages must say so, not "delivered".
LOGGED_RECEIPT = "logged"


class RecordingStatus(enum.StrEnum):
    """Whether the recording's audio is stored here yet."""

    PENDING = "pending"
    STORED = "stored"
    MISSING = "missing"  # Twilio never served it
    INVALID = "invalid"  # served, but not usable audio; the bytes are kept for inspection
    PURGED = "purged"  # deleted after the retention period (cases.retention)


class FollowUp(enum.StrEnum):
    """What the desk did about a call that ended without a report."""

    CASE_OPENED = "case_opened"  # a dispatcher opened a case for it
    HANDLED = "handled"  # nothing to open (a wrong number, a prank, called back already)


class SmsStatus(enum.StrEnum):
    """State of the text message that tells the caller the case number."""

    NONE = "none"  # no number to text (caller ID withheld and no callback number)
    PENDING = "pending"
    SENT = "sent"
    LOGGED = "logged"  # SMS not configured: written to the log instead
    FAILED = "failed"
    OPTED_OUT = "opted_out"  # the number texted STOP (cases.texts): nothing is sent to it


class Department(Base):
    """A unit that receives cases; loaded from config/directory.toml."""

    __tablename__ = "departments"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    names: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # How the department receives its cases (`flask --app hotline department set`).
    webhook_url: Mapped[str | None] = mapped_column(Text)
    webhook_secret: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(200))
    sms_number: Mapped[str | None] = mapped_column(String(40))
    # SHA-256 of the department's API key; the key itself is shown once and never stored.
    api_key_hash: Mapped[str | None] = mapped_column(String(64), unique=True)

    def channels(self) -> dict[Channel, str]:
        """The configured channels and their addresses."""
        configured = {
            Channel.WEBHOOK: self.webhook_url,
            Channel.EMAIL: self.email,
            Channel.SMS: self.sms_number,
        }
        return {channel: address for channel, address in configured.items() if address}

    def name(self, locale: str) -> str:
        """The department's name in a locale, falling back to Chinese, then the code."""
        return str(self.names.get(locale) or self.names.get("zh-CN") or self.code)


class Category(Base):
    """A kind of matter, with its responsible department and time limit."""

    __tablename__ = "categories"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    department_code: Mapped[str] = mapped_column(ForeignKey("departments.code"))
    names: Mapped[dict[str, Any]] = mapped_column(default=dict)
    time_limit_hours: Mapped[int | None]
    time_limit_working_days: Mapped[int | None]

    def name(self, locale: str) -> str:
        """The category's name in a locale, falling back to Chinese, then the code."""
        return str(self.names.get(locale) or self.names.get("zh-CN") or self.code)


class Call(Base):
    """One inbound phone call, as Twilio reported it."""

    __tablename__ = "calls"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(64), unique=True)
    account_sid: Mapped[str] = mapped_column(String(64))
    from_number: Mapped[str] = mapped_column(String(40), default="")
    to_number: Mapped[str] = mapped_column(String(40), default="")
    caller_id_withheld: Mapped[bool] = mapped_column(default=False)
    callback_number: Mapped[str | None] = mapped_column(String(40))
    locale: Mapped[str | None] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(20), default="in-progress")
    # The rest of what Twilio sent on the first request (FromCity, FromCountry, ...).
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # How the call ended, from its status callback (set on the Twilio number): the first
    # final status's time, and Twilio's CallDuration. Indexed: the desk lists ended calls.
    ended_at: Mapped[datetime | None] = mapped_column(index=True)
    duration_seconds: Mapped[int | None]
    # How the IVR saw it end without a report (cases.intake.ENDING_*), if it saw it at all.
    ending: Mapped[str | None] = mapped_column(String(30))
    # Set when the caller got what they called for without a report ("status", "operator").
    served: Mapped[str | None] = mapped_column(String(20))
    # The desk's answer to a call that ended without a report (FollowUp), who gave it, when.
    follow_up: Mapped[str | None] = mapped_column(String(20))
    followed_up_by: Mapped[str | None] = mapped_column(String(80))
    followed_up_at: Mapped[datetime | None]
    # Whether the streams process is decoding the call live right now: the report step waits
    # for a live transcript only then, so a burst of callers the CPU can't decode live doesn't
    # hold a web thread each for nothing (ivr.views._wait_for_live_transcript).
    live_decoding: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Whether the report's recording held speech (the IVR's check before opening a case); None
    # for calls from before the check, or that never recorded.
    speech_heard: Mapped[bool | None]

    recordings: Mapped[list[Recording]] = relationship(back_populates="call")

    @property
    def reachable_number(self) -> str | None:
        """The number to call or text back: the caller ID, else the number the caller keyed."""
        return self.callback_number if self.caller_id_withheld else self.from_number


class Case(Base):
    """A work order: one citizen's matter, from the call to its outcome."""

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(12), unique=True)
    # One case per call: a retried webhook finds the case it already opened.
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id"), unique=True)
    status: Mapped[CaseStatus] = mapped_column(String(20), default=CaseStatus.OPEN)
    locale: Mapped[str] = mapped_column(String(10))
    # Indexed: a rating text finds the caller's latest case by it.
    caller_number: Mapped[str | None] = mapped_column(String(40), index=True)
    # Indexed: every inbox lists a department's cases.
    department_code: Mapped[str | None] = mapped_column(ForeignKey("departments.code"), index=True)
    category_code: Mapped[str | None] = mapped_column(ForeignKey("categories.code"))
    urgency: Mapped[str | None] = mapped_column(String(20))
    deadline_at: Mapped[datetime | None]
    place_code: Mapped[str | None] = mapped_column(String(40))
    confidence: Mapped[float | None]
    # The routing decision as it was made, explanation and model version included: a later
    # model never silently changes a past case.
    routing: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    routed_at: Mapped[datetime | None]
    # Set when something failed and a person at the dispatch desk must look at the case.
    needs_review: Mapped[bool] = mapped_column(default=False)
    review_reason: Mapped[str | None] = mapped_column(Text)
    sms_status: Mapped[SmsStatus] = mapped_column(String(20), default=SmsStatus.PENDING)
    sms_message_sid: Mapped[str | None] = mapped_column(String(64))
    # First-responsible (首问负责): the department that accepted the case stays answerable
    # for it until the department it transferred the case to accepts in turn.
    responsible_department_code: Mapped[str | None] = mapped_column(ForeignKey("departments.code"))
    # The department that sent the case back, while the desk rules on it.
    sent_back_by_code: Mapped[str | None] = mapped_column(ForeignKey("departments.code"))
    # When the current department's clock started; the light measures from here.
    assigned_at: Mapped[datetime | None]
    accepted_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    resolution: Mapped[str | None] = mapped_column(Text)
    light: Mapped[Light] = mapped_column(String(10), default=Light.GREEN)
    reminded_at: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]
    # Major matters are copied to leadership from the start.
    major: Mapped[bool] = mapped_column(default=False)
    rating: Mapped[int | None]
    rated_at: Mapped[datetime | None]
    reopen_count: Mapped[int] = mapped_column(default=0)
    # The operator who took the call and opened the case (首问负责, first-responsible for
    # what the caller was told), a username; None for cases the IVR opened by itself.
    owner: Mapped[str | None] = mapped_column(String(80))
    # The knowledge-base article suggested for the matter (cases.knowledge_links). A plain
    # indexed column, no foreign key: a case may name an article the desk later retires.
    article_id: Mapped[str | None] = mapped_column(String(80), index=True)
    # How the report came in (Intake), and a written report's own words.
    intake: Mapped[Intake] = mapped_column(
        String(10), default=Intake.VOICE, server_default=Intake.VOICE.value
    )
    report_text: Mapped[str | None] = mapped_column(Text)
    # The work order (诉求内容): the problem in the desk's words, written or corrected while
    # listening to the call, or the operator's summary at the seat. What departments read
    # first; the caller's own words (transcript, report) stay beside it unchanged.
    work_order: Mapped[str | None] = mapped_column(Text)
    # 延期申请: the deadline the holding department asked for, and why, until the desk rules.
    extension_until: Mapped[datetime | None]
    extension_reason: Mapped[str | None] = mapped_column(Text)
    # Where the reporter put it: an address as written, and a point on the map (web, Open311).
    address: Mapped[str | None] = mapped_column(String(255))
    lat: Mapped[float | None]
    long: Mapped[float | None]
    # 并单: the case this report joined as a co-reporter, and when. Indexed: a case lists its
    # co-reporters. `reporters` counts the people who reported the problem (1 + co-reporters),
    # kept on the case so every list and the department API can show it without a count.
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    merged_at: Mapped[datetime | None]
    reporters: Mapped[int] = mapped_column(default=1, server_default="1")
    # The Open311 client that sent the report (its key's name), and the token it was given.
    open311_client: Mapped[str | None] = mapped_column(String(80))
    open311_token: Mapped[str | None] = mapped_column(String(40), unique=True)
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    call: Mapped[Call | None] = relationship()
    merged_into: Mapped[Case | None] = relationship(
        remote_side=[id], foreign_keys=[merged_into_id], back_populates="co_reporters"
    )
    # The reports merged into this case (并单), each a case of its own with its own number.
    co_reporters: Mapped[list[Case]] = relationship(
        foreign_keys=[merged_into_id], back_populates="merged_into", order_by="Case.id"
    )
    department: Mapped[Department | None] = relationship(foreign_keys=[department_code])
    responsible_department: Mapped[Department | None] = relationship(
        foreign_keys=[responsible_department_code]
    )
    deliveries: Mapped[list[Delivery]] = relationship(back_populates="case", order_by="Delivery.id")
    recordings: Mapped[list[Recording]] = relationship(
        back_populates="case", order_by="Recording.id"
    )
    events: Mapped[list[CaseEvent]] = relationship(back_populates="case", order_by="CaseEvent.id")
    # 协办: departments the desk asked to assist the holder (主办), each with its own part.
    assists: Mapped[list[CaseAssist]] = relationship(
        back_populates="case", order_by="CaseAssist.id"
    )
    transcript: Mapped[Transcript | None] = relationship(back_populates="case")


class Recording(Base):
    """A caller's recorded words: where Twilio has them, and the copy stored here."""

    __tablename__ = "recordings"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"))
    # Null for a report abandoned by hanging up: no case, but the audio is still kept.
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    recording_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    source_url: Mapped[str] = mapped_column(Text)
    reported_duration: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[RecordingStatus] = mapped_column(String(20), default=RecordingStatus.PENDING)
    storage_path: Mapped[str | None] = mapped_column(Text)
    size_bytes: Mapped[int | None]
    sha256: Mapped[str | None] = mapped_column(String(64))
    sample_rate: Mapped[int | None]
    channels: Mapped[int | None]
    duration_seconds: Mapped[float | None]
    fetch_attempts: Mapped[int] = mapped_column(default=0)
    last_attempt_at: Mapped[datetime | None]
    # The job chain fetching it: the Record action and the status callback both queue one,
    # and only one should knock on Twilio's door.
    fetch_job_id: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    stored_at: Mapped[datetime | None]
    # When the audio was deleted after the retention period (cases.retention).
    purged_at: Mapped[datetime | None]

    call: Mapped[Call] = relationship(back_populates="recordings")
    case: Mapped[Case | None] = relationship(back_populates="recordings")


class Transcript(Base):
    """The caller's words as text: from the live stream, or from the stored recording."""

    __tablename__ = "transcripts"

    id: Mapped[int] = mapped_column(primary_key=True)
    # One per call: the live stream writes it first; the batch job fills in what it missed.
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"), unique=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    source: Mapped[str] = mapped_column(String(10))  # "live" or "batch"
    # False when the live stream broke off before its end: the batch job then redoes it.
    complete: Mapped[bool] = mapped_column(default=True)
    text: Mapped[str] = mapped_column(Text, default="")
    words: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    duration_seconds: Mapped[float] = mapped_column(default=0.0)
    engine: Mapped[str] = mapped_column(String(40))
    model: Mapped[str] = mapped_column(String(80))
    processing_seconds: Mapped[float] = mapped_column(default=0.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # When the text and words were cleared after the retention period (cases.retention).
    purged_at: Mapped[datetime | None]

    call: Mapped[Call] = relationship()
    case: Mapped[Case | None] = relationship(back_populates="transcript")


class AdminEvent(Base):
    """One change an administrator made to the hotline's set-up, for the audit log: a
    department's channels or API key, a staff account, a time limit, a reset link."""

    __tablename__ = "admin_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(40), index=True)
    # What was changed: a department's or category's code, a staff member's username.
    target: Mapped[str] = mapped_column(String(120))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class CaseAssist(Base):
    """A department assisting with a case (协办) beside the one holding it (主办): it sees the
    case, does its part and replies; the holder resolves the case once every part is in."""

    __tablename__ = "case_assists"
    __table_args__ = (UniqueConstraint("case_id", "department_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    department_code: Mapped[str] = mapped_column(ForeignKey("departments.code"), index=True)
    # What the desk asked of it, and its reply once its part is done.
    task: Mapped[str] = mapped_column(Text)
    reply: Mapped[str | None] = mapped_column(Text)
    asked_at: Mapped[datetime] = mapped_column(default=utcnow)
    replied_at: Mapped[datetime | None]

    case: Mapped[Case] = relationship(back_populates="assists")


class CaseEvent(Base):
    """One entry in a case's audit trail."""

    __tablename__ = "case_events"
    # The disclosure figures scan events by kind and time.
    __table_args__ = (Index("ix_case_events_kind_created_at", "kind", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(80), default="system")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    case: Mapped[Case] = relationship(back_populates="events")


class User(Base):
    """A staff account: dispatcher, department staff, supervisor or admin."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(String(20))
    # Set for department staff only: the department whose cases they work.
    department_code: Mapped[str | None] = mapped_column(ForeignKey("departments.code"))
    active: Mapped[bool] = mapped_column(default=True)
    locale: Mapped[str] = mapped_column(String(10), default="zh-CN")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A password-reset link an administrator issued: the hash of its one-time token, and when
    # it stops working (`cases.staff.issue_reset_token`).
    reset_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    reset_expires_at: Mapped[datetime | None]

    department: Mapped[Department | None] = relationship()


class Delivery(Base):
    """One outbox message: a case pushed to a department on one channel, or a text to the
    caller. Sent by a job after commit; retried with backoff; its id is stable across retries so
    that receivers can drop duplicates."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("case_id", "recipient", "channel", "topic"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[str] = mapped_column(String(40), unique=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    # A department code, or "caller".
    recipient: Mapped[str] = mapped_column(String(40))
    channel: Mapped[Channel] = mapped_column(String(20))
    # Why it is sent, unique per case and recipient: "assigned", "assigned-2", "reminder", ...
    topic: Mapped[str] = mapped_column(String(40))
    address: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[DeliveryStatus] = mapped_column(String(20), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    # The receiver's reference (a Twilio MessageSid, an SMTP message id, an HTTP status).
    receipt: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_attempt_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]

    case: Mapped[Case] = relationship(back_populates="deliveries")


class ThrottleFailure(Base):
    """One failed guess (a sign-in, a case lookup) at a subject (an account, a case number) from
    an address; kept for a day to slow guessing per (subject, address) pair (cases.throttles)."""

    __tablename__ = "throttle_failures"
    __table_args__ = (
        Index("ix_throttle_failures_pair", "kind", "subject", "remote_addr", "created_at"),
        Index("ix_throttle_failures_address", "kind", "remote_addr", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # "sign_in" or "lookup": a citizen's typos never slow staff sign-in, nor the reverse.
    kind: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str] = mapped_column(String(80))
    remote_addr: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class StaffSession(Base):
    """A signed-in browser. The cookie holds a random token; only its hash is stored, and the
    row is deleted at sign-out, deactivation or a password change, which ends that session even
    for a copy of the cookie."""

    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ArticleSource(enum.StrEnum):
    """Where a knowledge-base article came from."""

    SEED = "seed"  # config/knowledge/articles, loaded by `flask init`
    DESK = "desk"  # written by the desk in the console
    CASE = "case"  # made from a resolved case's answer


class KnowledgeArticle(Base):
    """A knowledge-base article as the desk keeps it: the current text of each language, as
    `knowledge.articles.ArticleText.as_dict()` (knowledge.store reads and writes these)."""

    __tablename__ = "knowledge_articles"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    category: Mapped[str] = mapped_column(String(40))
    department: Mapped[str | None] = mapped_column(String(40), index=True)
    reviewed: Mapped[date]
    texts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    retired: Mapped[bool] = mapped_column(default=False, server_default=false())
    source: Mapped[ArticleSource] = mapped_column(String(10), default=ArticleSource.SEED)
    # The latest revision's number: seeding and editing each add one.
    revision: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_by: Mapped[str] = mapped_column(String(80), default="seed")

    revisions: Mapped[list[KnowledgeRevision]] = relationship(
        back_populates="article", order_by="KnowledgeRevision.revision"
    )


class KnowledgeRevision(Base):
    """One saved version of an article: what it said, who saved it and why. Never edited."""

    __tablename__ = "knowledge_revisions"
    __table_args__ = (UniqueConstraint("article_id", "revision"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[str] = mapped_column(ForeignKey("knowledge_articles.id"))
    revision: Mapped[int]
    # The whole article as saved: category, department, reviewed date and the texts.
    snapshot: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # A staff member's username, or "seed" for the shipped files.
    editor: Mapped[str] = mapped_column(String(80))
    note: Mapped[str] = mapped_column(Text, default="")
    # Retired or restored with this revision (the snapshot's text is unchanged then).
    action: Mapped[str] = mapped_column(String(20), default="edit")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    article: Mapped[KnowledgeArticle] = relationship(back_populates="revisions")


class SeatStatus(enum.StrEnum):
    """Where an operator's seat stands. The operator chooses the first four; the queue moves
    the seat through the others (cases.seats)."""

    SIGNED_OUT = "signed_out"
    AVAILABLE = "available"
    BUSY = "busy"  # at the seat, but doing something else: rings no calls
    ON_BREAK = "on_break"
    OFFERED = "offered"  # a call to the seat's phone is ringing to put a caller through
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"  # after a call: writing it up, for the configured wrap-up time
    AWAY = "away"  # an offered call went unanswered: rings nothing until set available again


class WrapUpCode(enum.StrEnum):
    """How a call that asked for a person ended: chosen by the operator, or set by the queue
    for a caller no operator reached."""

    ANSWERED = "answered"
    CASE_OPENED = "case_opened"
    TRANSFERRED = "transferred"
    CALLBACK_NEEDED = "callback_needed"
    NUISANCE = "nuisance"
    SILENT = "silent"
    # Set by the queue itself:
    ABANDONED = "abandoned"  # hung up while waiting
    CALLBACK_REQUESTED = "callback_requested"  # pressed 1 while waiting, or at "no seat"
    NO_OPERATOR = "no_operator"  # no seat open, after hours, or waited past the limit


class Seat(Base):
    """An operator's place on the line: the phone that rings them and their status."""

    __tablename__ = "seats"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), unique=True)
    # E.164 or a sip: address: what Twilio dials to ring the operator.
    address: Mapped[str] = mapped_column(String(120))
    status: Mapped[SeatStatus] = mapped_column(String(20), default=SeatStatus.SIGNED_OUT)
    # Since when: the longest-idle available seat is offered the next caller.
    status_since: Mapped[datetime] = mapped_column(default=utcnow)
    # The call placed to the seat to put a caller through (its own CallSid once answered),
    # and which offer it was: a late callback about an older offer changes nothing.
    offer: Mapped[int] = mapped_column(default=0)
    seat_call_sid: Mapped[str | None] = mapped_column(String(64))
    # The queue entry the seat is talking to or wrapping up. No foreign key: the entry names
    # its seat, and a key each way would make the two tables a cycle.
    entry_id: Mapped[int | None]
    wrap_up_until: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    user: Mapped[User] = relationship()
    entry: Mapped[QueueEntry | None] = relationship(
        primaryjoin="foreign(Seat.entry_id) == QueueEntry.id", viewonly=True
    )


class QueueEntry(Base):
    """One caller's time in the queue for a person, from joining to the wrap-up code. The
    service-level figures are read from these rows."""

    __tablename__ = "queue_entries"
    __table_args__ = (Index("ix_queue_entries_enqueued_at", "enqueued_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # One entry per call: a retried webhook finds it (a call asks for a person once).
    call_sid: Mapped[str] = mapped_column(String(64), unique=True)
    caller_number: Mapped[str | None] = mapped_column(String(40))
    locale: Mapped[str] = mapped_column(String(10))
    # Why the call wants a person (cases.seats.WHY_A_PERSON keys).
    reason: Mapped[str] = mapped_column(String(30))
    # The report the caller made before asking for a person (0 during the recording).
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    enqueued_at: Mapped[datetime] = mapped_column(default=utcnow)
    # None while waiting or talking; then Twilio's QueueResult (bridged, hangup, leave, ...),
    # or "no_seat" for a caller never put in the queue.
    result: Mapped[str | None] = mapped_column(String(30))
    left_at: Mapped[datetime | None]
    # Seconds waited, as Twilio counted them (QueueTime): the service level's own measure.
    wait_seconds: Mapped[int | None]
    # Why the caller left before a person answered: "callback" (pressed 1), "limit".
    leave_reason: Mapped[str | None] = mapped_column(String(20))
    last_position: Mapped[int | None]
    # Put through to a seat: when, to whom, and how long they talked.
    answered_at: Mapped[datetime | None]
    seat_id: Mapped[int | None] = mapped_column(ForeignKey("seats.id"))
    operator: Mapped[str | None] = mapped_column(String(80))
    handled_seconds: Mapped[int | None]
    # What the caller said so far while talking to the operator (the live stream's words),
    # and the emergency heard in them, if any ({"kind": ..., "number": ...}).
    live_text: Mapped[str] = mapped_column(Text, default="")
    live_updated_at: Mapped[datetime | None]
    emergency: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    wrap_up: Mapped[WrapUpCode | None] = mapped_column(String(30))
    wrap_up_by: Mapped[str | None] = mapped_column(String(80))
    wrap_up_at: Mapped[datetime | None]

    case: Mapped[Case | None] = relationship(foreign_keys=[case_id])
    seat: Mapped[Seat | None] = relationship(foreign_keys=[seat_id])


class CallbackTask(Base):
    """A caller who asked for a person and reached none is called back (12345's rule)."""

    __tablename__ = "callback_tasks"
    __table_args__ = (Index("ix_callback_tasks_status_created_at", "status", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    caller_number: Mapped[str] = mapped_column(String(40))
    locale: Mapped[str] = mapped_column(String(10))
    # cases.seats.CALLBACK_REASONS keys: hung up in the queue, asked, no seat open...
    reason: Mapped[str] = mapped_column(String(30))
    # The call it came from (one task per call: a retried webhook finds it).
    call_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("queue_entries.id"))
    # The case the desk asked for this call back about (from the case's page); None when the
    # queue made the task.
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # "open" until called back ("done"), given up after the last attempt ("failed"), or
    # "withdrawn" by a caller who recorded a report instead.
    status: Mapped[str] = mapped_column(String(10), default="open")
    attempts: Mapped[int] = mapped_column(default=0)
    closed_at: Mapped[datetime | None]

    attempt_rows: Mapped[list[CallbackAttempt]] = relationship(
        back_populates="task", order_by="CallbackAttempt.id"
    )
    case: Mapped[Case | None] = relationship()


class CallbackAttempt(Base):
    """One try at calling a caller back: the operator is rung first, then the citizen."""

    __tablename__ = "callback_attempts"
    __table_args__ = (UniqueConstraint("task_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("callback_tasks.id"))
    number: Mapped[int]  # 1, 2, 3
    operator: Mapped[str] = mapped_column(String(80))
    seat_id: Mapped[int | None] = mapped_column(ForeignKey("seats.id"))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    # None while under way; then the citizen's DialCallStatus (completed, no-answer, busy,
    # failed), or "operator-unreached" when the operator's own phone did not answer.
    outcome: Mapped[str | None] = mapped_column(String(30))
    ended_at: Mapped[datetime | None]
    talked_seconds: Mapped[int | None]

    task: Mapped[CallbackTask] = relationship(back_populates="attempt_rows")


class InboundText(Base):
    """A text to the hotline's number, as Twilio delivered it: a retried webhook (same
    MessageSid) finds its row and gets the same answer; the parts of one long report, sent
    within a minute, join one case."""

    __tablename__ = "inbound_texts"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_sid: Mapped[str] = mapped_column(String(64), unique=True)
    # Indexed: the next part of a report looks up the sender's latest text.
    from_number: Mapped[str] = mapped_column(String(40), index=True)
    body: Mapped[str] = mapped_column(Text, default="")
    # What the text was taken as ("report", "part", "rating", "stop", "help", ...).
    kind: Mapped[str] = mapped_column(String(20))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    # The answer given, so that a retry gets the very same one.
    reply_key: Mapped[str | None] = mapped_column(String(60))
    reply_locale: Mapped[str | None] = mapped_column(String(10))
    reply_values: Mapped[dict[str, Any]] = mapped_column(default=dict)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)

    case: Mapped[Case | None] = relationship()


class TextOptOut(Base):
    """A number that texted STOP: the hotline texts it nothing until it texts START."""

    __tablename__ = "text_opt_outs"

    number: Mapped[str] = mapped_column(String(40), primary_key=True)
    opted_out_at: Mapped[datetime] = mapped_column(default=utcnow)


class Attachment(Base):
    """A file a reporter sent with a report (a photo from the web form, an Open311 media
    link's copy), stored like recordings: on disk under the media folder, checked first."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # "photo"
    content_type: Mapped[str] = mapped_column(String(80))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    # Relative to the media folder.
    path: Mapped[str] = mapped_column(String(400))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When the file was deleted after the retention period (cases.retention).
    purged_at: Mapped[datetime | None]

    case: Mapped[Case] = relationship()


class PhoneVerification(Base):
    """A code texted to a phone number that a web reporter must type back, so that updates
    about their case go to a phone that is theirs. Only the code's hash is kept."""

    __tablename__ = "phone_verifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Indexed: sending is throttled per number.
    number: Mapped[str] = mapped_column(String(40), index=True)
    code_hash: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(default=0)
    verified_at: Mapped[datetime | None]


class Open311Key(Base):
    """An API key another system posts Open311 requests with. Only its hash is kept: the key
    is printed once, when made (`flask --app hotline open311 key add NAME`)."""

    __tablename__ = "open311_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
