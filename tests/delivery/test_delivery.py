"""Delivery of cases to departments and texts to callers: signatures, backoff, the real worker
against local receivers (HTTP, SMTP, Twilio's API in Prism), and what a permanent failure does.

Tests that need the worker not to race them write their rows in a session without the
after-commit hook (`quiet_session`): as after a broker outage, nothing is queued for them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cases import lifecycle, outbox, staff, texts
from cases.access import DISPATCH_DESK
from cases.models import Case, Channel, Delivery, DeliveryStatus, Department, utcnow
from delivery import services, tasks
from delivery.mail import email_message
from delivery.messages import MAX_BACKOFF, DeliveryError, Outgoing, next_attempt_at
from delivery.webhook import send_webhook, sign, verify_signature, webhook_body
from hotline.db import Database
from hotline.wiring import Wiring
from tests.conftest import PUBLIC_BASE_URL, free_port, wait_until
from tests.support.factories import DEFAULT_WORDS, case_named, make_case, quiet_session
from tests.support.flaky_proxy import FlakyProxy
from tests.support.receivers import (
    SMTPReceiver,
    WebhookReceiver,
    make_department,
    new_caller_number,
    shared_smtp_receiver,
)

SECRET = "department-secret-0123456789"


@pytest.fixture(scope="module")
def smtp_server(environ: dict[str, str]) -> SMTPReceiver:
    return shared_smtp_receiver(int(environ["SMTP_PORT"]))


def deliveries_of(database: Database, case_number: str) -> list[Delivery]:
    with database.session() as session:
        case = session.scalars(select(Case).where(Case.number == case_number)).one()
        return list(case.deliveries)


def delivery_row(database: Database, row_id: int) -> Delivery:
    with database.session() as session:
        return session.get_one(Delivery, row_id)


def outgoing(**overrides: Any) -> Outgoing:
    values: dict[str, Any] = {
        "delivery_id": "dlv_" + "a" * 32,
        "channel": Channel.WEBHOOK,
        "recipient": "urban_mgmt",
        "address": "http://127.0.0.1:9/none",
        "payload": {
            "event": "assigned",
            "case": {
                "number": "123456782",
                "category": "streetlight",
                "urgency": "normal",
                "major": False,
                "deadline_at": "2030-05-01T10:00:00+00:00",
                "department": "urban_mgmt",
                "caller_number": "*********0000",
                "transcript": DEFAULT_WORDS,
            },
        },
        "attempt": 1,
        "webhook_secret": SECRET,
        "category_name": "路灯",
    }
    values.update(overrides)
    return Outgoing(**values)


# --- Pure parts ------------------------------------------------------------------------------


def test_a_signature_verifies_only_with_the_same_secret_body_and_a_fresh_time() -> None:
    body = webhook_body(outgoing())
    header = sign(SECRET, body, timestamp=1_700_000_000)

    assert verify_signature(SECRET, header, body, now=1_700_000_060)
    assert not verify_signature("another-secret", header, body, now=1_700_000_060)
    assert not verify_signature(SECRET, header, body + b" ", now=1_700_000_060)
    assert not verify_signature(SECRET, header, body, now=1_700_000_000 + 301)  # replayed late
    malformed_headers = (
        "",
        "v1=abc",
        "t=1700000000",
        "t=soon,v1=" + "0" * 64,
        "garbage",
        "t=²,v1=" + "0" * 64,  # a digit to str.isdigit(), not to int()
        "t=1700000000,v1=é" + "0" * 63,  # compare_digest refuses non-ASCII text
    )
    for malformed in malformed_headers:
        assert not verify_signature(SECRET, malformed, body, now=1_700_000_000)
    # While a secret is rotated a sender may sign with both; either match will do.
    rotated = sign("old-secret", body, timestamp=1_700_000_000) + ",v1=" + header.split("v1=")[1]
    assert verify_signature(SECRET, rotated, body, now=1_700_000_000)


def test_the_body_is_the_payload_with_the_delivery_id_and_the_same_on_every_try() -> None:
    first, again = outgoing(attempt=1), outgoing(attempt=7)

    assert webhook_body(first) == webhook_body(again)
    document = json.loads(webhook_body(first))
    assert document["delivery_id"] == first.delivery_id
    assert document["event"] == "assigned"
    assert document["case"]["number"] == "123456782"


def test_backoff_doubles_is_capped_at_an_hour_and_ends_on_the_window() -> None:
    created = datetime(2030, 1, 1, tzinfo=UTC)
    window = timedelta(hours=24)

    def due(attempts: int, last: datetime | None) -> datetime:
        return next_attempt_at(
            attempts=attempts,
            last_attempt_at=last,
            created_at=created,
            backoff=30.0,
            retry_window=window,
        )

    assert due(0, None) == created  # never tried: at once
    last = created + timedelta(minutes=5)
    assert [due(n, last) - last for n in (1, 2, 3, 4)] == [
        timedelta(seconds=s) for s in (30, 60, 120, 240)
    ]
    assert due(9, last) - last == MAX_BACKOFF == timedelta(hours=1)
    assert due(40, last) - last == MAX_BACKOFF
    late = created + window - timedelta(minutes=10)
    assert due(20, late) == created + window  # the last try falls on the window's end


def test_an_email_is_readable_and_keeps_its_message_id_when_resent() -> None:
    message = outgoing(channel=Channel.EMAIL, address="duty@urban.example.test")

    first = email_message(
        message, mail_from="hotline@city.example", public_base_url=PUBLIC_BASE_URL
    )
    resent = email_message(
        replace(message, attempt=5),
        mail_from="hotline@city.example",
        public_base_url=PUBLIC_BASE_URL,
    )

    assert first["Message-ID"] == resent["Message-ID"] == f"<{message.delivery_id}@city.example>"
    assert "123456782" in first["Subject"]
    text = first.get_content()
    assert "路灯 (streetlight)" in text
    assert "2030-05-01 18:00" in text  # the deadline in Beijing time
    assert DEFAULT_WORDS in text
    assert f"{PUBLIC_BASE_URL}/console/cases/123456782" in text


def test_a_webhook_without_a_secret_is_a_permanent_error() -> None:
    with pytest.raises(DeliveryError) as raised:
        send_webhook(outgoing(webhook_secret=None), timeout=1)
    assert raised.value.permanent


# --- Through the real worker -----------------------------------------------------------------


@pytest.mark.usefixtures("celery_worker")
def test_a_push_reaches_the_department_signed_and_is_recorded_on_the_case(
    database: Database,
) -> None:
    with WebhookReceiver(secret=SECRET) as receiver:
        with database.session() as session, session.begin():
            code = make_department(session, webhook_url=receiver.url, webhook_secret=SECRET)
            number = make_case(session, department_code=code, caller_number=None).number

        pushes = wait_until(
            lambda: receiver.accepted_for(number), timeout=60, what="the push to arrive"
        )
        row = wait_until(
            lambda: [d for d in deliveries_of(database, number) if d.delivered_at],
            timeout=30,
            what="the delivery to be recorded",
        )[0]

    push = pushes[0]
    assert push.signature_valid
    assert push.delivery_id == row.delivery_id == push.document["delivery_id"]
    assert push.headers["X-Hotline-Event"] == "assigned"
    assert push.document["case"]["department"] == code
    assert (row.status, row.receipt, row.attempts) == (DeliveryStatus.DELIVERED, "HTTP 200", 1)
    delivered = [e for e in case_named(database, number).events if e.kind == "delivered"]
    assert [e.data["delivery_id"] for e in delivered] == [row.delivery_id]


@pytest.mark.usefixtures("celery_worker")
def test_a_receiver_answering_503_is_retried_with_the_same_delivery_id_until_it_accepts(
    database: Database,
) -> None:
    with WebhookReceiver(secret=SECRET) as receiver:
        receiver.fail_next(3)
        with database.session() as session, session.begin():
            code = make_department(session, webhook_url=receiver.url, webhook_secret=SECRET)
            number = make_case(session, department_code=code, caller_number=None).number

        wait_until(lambda: receiver.accepted_for(number), timeout=60, what="the push to succeed")
        row = wait_until(
            lambda: [d for d in deliveries_of(database, number) if d.delivered_at],
            timeout=30,
            what="the delivery to be recorded",
        )[0]
        arrived = receiver.received_for(number)

    assert [push.status for push in arrived] == [503, 503, 503, 200]
    assert {push.delivery_id for push in arrived} == {row.delivery_id}
    assert len({push.body for push in arrived}) == 1  # the same document each time
    assert [push.headers["X-Hotline-Attempt"] for push in arrived] == ["1", "2", "3", "4"]
    assert all(push.signature_valid for push in arrived)
    assert (row.status, row.attempts, row.last_error) == (DeliveryStatus.DELIVERED, 4, None)


@pytest.mark.usefixtures("celery_worker")
def test_a_receiver_that_is_down_and_comes_back_gets_the_case(database: Database) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/hotline/push"
    with database.session() as session, session.begin():
        code = make_department(session, webhook_url=url, webhook_secret=SECRET)
        number = make_case(session, department_code=code, caller_number=None).number

    # `attempts` counts a try when it is claimed, before it is sent, so a row at 2 may still
    # have its second try in flight. Two tries are surely refused once the third is claimed.
    refused = wait_until(
        lambda: [d for d in deliveries_of(database, number) if d.attempts >= 3],
        timeout=60,
        what="two refused tries",
    )[0]
    assert refused.status == DeliveryStatus.PENDING
    assert "Connection" in (refused.last_error or "")

    with WebhookReceiver(secret=SECRET, port=port) as receiver:
        pushes = wait_until(
            lambda: receiver.accepted_for(number), timeout=60, what="the push once it is back"
        )
        row = wait_until(
            lambda: [d for d in deliveries_of(database, number) if d.delivered_at],
            timeout=30,
            what="the delivery to be recorded",
        )[0]
    assert [push.delivery_id for push in pushes] == [row.delivery_id]
    # The try that lands is the one in flight when the receiver came back, or a later one.
    assert pushes[0].headers["X-Hotline-Attempt"] == str(row.attempts)
    assert row.status == DeliveryStatus.DELIVERED and row.attempts >= refused.attempts


@pytest.mark.usefixtures("celery_worker")
def test_an_email_reaches_the_smtp_server(database: Database, smtp_server: SMTPReceiver) -> None:
    address = f"duty-{uuid.uuid4().hex[:8]}@urban.example.test"
    with database.session() as session, session.begin():
        code = make_department(session, email=address)
        number = make_case(session, department_code=code, caller_number=None).number

    message = wait_until(lambda: smtp_server.messages_for(number), timeout=60, what="the e-mail")[0]
    row = wait_until(
        lambda: [d for d in deliveries_of(database, number) if d.delivered_at],
        timeout=30,
        what="the delivery to be recorded",
    )[0]

    assert message["To"] == address
    assert message["From"] == "hotline@hotline.example.test"
    assert message["Message-ID"] == f"<{row.delivery_id}@hotline.example.test>" == row.receipt
    assert message["X-Hotline-Delivery"] == row.delivery_id
    text = message.get_content()
    assert DEFAULT_WORDS in text
    assert f"{PUBLIC_BASE_URL}/console/cases/{number}" in text


@pytest.mark.usefixtures("celery_worker")
def test_the_duty_officer_is_texted_through_twilio(
    database: Database, twilio_api: FlakyProxy
) -> None:
    officer = new_caller_number()
    with database.session() as session, session.begin():
        code = make_department(session, sms_number=officer)
        number = make_case(session, department_code=code, caller_number=None).number

    (text,) = wait_until(
        lambda: twilio_api.messages_to(officer), timeout=60, what="the duty officer's text"
    )
    row = wait_until(
        lambda: [d for d in deliveries_of(database, number) if d.delivered_at],
        timeout=30,
        what="the delivery to be recorded",
    )[0]

    body = text["form"]["Body"]
    assert text["status"] == 201
    assert body.startswith(f"【马上就办一线通】新派工单：工单{number}，路灯，时限")
    assert body.endswith(f"{PUBLIC_BASE_URL}/console/cases/{number}")
    assert row.channel == Channel.SMS and row.receipt and row.receipt.startswith("SM")


@pytest.mark.usefixtures("celery_worker")
def test_the_caller_is_texted_in_their_language_on_accept_and_resolve(
    database: Database,
    twilio_api: FlakyProxy,
) -> None:
    caller = new_caller_number()
    twilio_api.fail_next(1, to=caller)  # Twilio has a bad moment: the text is retried
    with database.session() as session, session.begin():
        code = make_department(session)
        case = make_case(session, department_code=code, caller_number=caller, locale="en-US")
        actor = staff.department_actor(session.get_one(Department, code))
        lifecycle.accept(session, case=case, actor=actor)
        lifecycle.resolve(session, case=case, actor=actor, reply="The lamp was replaced.")
        number = case.number

    texts = wait_until(
        lambda: len(twilio_api.messages_to(caller)) >= 2 and twilio_api.messages_to(caller),
        timeout=60,
        what="both texts to reach Twilio",
    )
    bodies = [text["form"]["Body"] for text in texts]
    assert any(f"case {number} has been accepted" in body for body in bodies)
    resolved = next(body for body in bodies if "is resolved" in body)
    assert "The lamp was replaced." in resolved and "1 to 5" in resolved
    assert twilio_api.failures_for(caller) == 1
    assert all(text["status"] == 201 for text in texts)  # Prism checked them against the spec

    def delivered_texts() -> list[Delivery]:
        rows = [
            d
            for d in deliveries_of(database, number)
            if d.channel == Channel.CALLER_SMS and d.status == DeliveryStatus.DELIVERED
        ]
        return rows if len(rows) == 2 else []

    rows = wait_until(delivered_texts, timeout=30, what="both texts recorded as delivered")
    assert {row.topic for row in rows} == {"accepted", "resolved"}
    assert all(row.receipt and row.receipt.startswith("SM") for row in rows)


# --- In this process: failures and claims ------------------------------------------------------


@contextmanager
def desk_pushed_to(database: Database, receiver: WebhookReceiver) -> Iterator[None]:
    """The dispatch desk's webhook points at `receiver` for the block, then is put back."""
    with database.session() as session, session.begin():
        desk = session.get_one(Department, DISPATCH_DESK)
        saved = (desk.webhook_url, desk.webhook_secret)
        staff.set_department_channels(
            session, code=DISPATCH_DESK, webhook_url=receiver.url, webhook_secret=SECRET
        )
    try:
        yield
    finally:
        with database.session() as session, session.begin():
            desk = session.get_one(Department, DISPATCH_DESK)
            desk.webhook_url, desk.webhook_secret = saved


def attempt(wiring: Wiring, row_id: int, **config_changes: Any) -> tasks.AttemptResult:
    """One try of the row, in this process, with these delivery settings changed."""
    senders = replace(wiring.senders, config=replace(wiring.senders.config, **config_changes))
    return tasks.attempt_delivery(wiring.database.sessions, senders, row_id)


def test_a_failure_past_the_retry_window_fails_for_good_and_alerts_the_desk(
    database: Database, wiring: Wiring
) -> None:
    dead_url = f"http://127.0.0.1:{free_port()}/gone"
    with quiet_session(database) as session:
        code = make_department(session, webhook_url=dead_url, webhook_secret=SECRET)
        case = make_case(session, department_code=code, caller_number=None)
        number, row_id = case.number, case.deliveries[0].id

    with WebhookReceiver(secret=SECRET) as desk, desk_pushed_to(database, desk):
        result = attempt(wiring, row_id, retry_window=timedelta(0))
        alerts = [
            d
            for d in deliveries_of(database, number)
            if d.recipient == DISPATCH_DESK and d.topic == "delivery_failed"
        ]
        assert len(alerts) == 1
        # The desk's alert is an ordinary delivery: it is sent like any other.
        attempt(wiring, alerts[0].id)
        alert = wait_until(lambda: desk.accepted_for(number), timeout=30, what="the desk alert")[0]

    assert result.outcome == "failed"
    failed = delivery_row(database, row_id)
    assert failed.status == DeliveryStatus.FAILED
    assert "Connection" in (failed.last_error or "")
    case = case_named(database, number)
    assert case.needs_review and "failed after 1 tries" in (case.review_reason or "")
    kinds = [event.kind for event in case.events]
    assert "delivery_failed" in kinds and "flagged_for_review" in kinds
    assert alert.document["event"] == "delivery_failed"
    assert alert.document["failed_delivery"]["delivery_id"] == failed.delivery_id
    assert alert.document["failed_delivery"]["recipient"] == code


def test_a_failed_push_to_the_desk_itself_raises_no_second_alert(
    database: Database, wiring: Wiring
) -> None:
    with quiet_session(database) as session:
        case = make_case(session, department_code=DISPATCH_DESK, caller_number=None, triage=True)
        # As if the desk's webhook had been set when the case was pushed there.
        case.deliveries.append(
            Delivery(
                delivery_id=f"dlv_{uuid.uuid4().hex}",
                recipient=DISPATCH_DESK,
                channel=Channel.WEBHOOK,
                topic="assigned-test",
                address=f"http://127.0.0.1:{free_port()}/desk",
                payload={"event": "assigned", "case": {"number": case.number}},
            )
        )
        session.flush()
        number, row_id = case.number, case.deliveries[-1].id

    result = attempt(wiring, row_id, retry_window=timedelta(0))

    assert result.outcome == "failed"
    case = case_named(database, number)
    assert case.needs_review
    assert not [d for d in case.deliveries if d.topic.startswith("delivery_failed")]


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(410, "failed"), (401, "failed"), (429, "retry"), (408, "retry"), (503, "retry")],
)
def test_a_refusal_fails_at_once_but_busy_answers_are_retried(
    status: int,
    outcome: str,
    database: Database,
    wiring: Wiring,
) -> None:
    with WebhookReceiver(secret=SECRET) as receiver:
        receiver.fail_next(1, status=status)
        with quiet_session(database) as session:
            code = make_department(session, webhook_url=receiver.url, webhook_secret=SECRET)
            case = make_case(session, department_code=code, caller_number=None)
            row_id = case.deliveries[0].id

        result = attempt(wiring, row_id)

    row = delivery_row(database, row_id)
    assert result.outcome == outcome
    assert (row.last_error or "").startswith(f"HTTP {status}")
    if outcome == "failed":
        assert row.status == DeliveryStatus.FAILED and row.attempts == 1
    else:
        assert row.status == DeliveryStatus.PENDING
        assert result.retry_in is not None and 0 <= result.retry_in <= 0.2


def test_an_smtp_refusal_is_permanent(
    database: Database, wiring: Wiring, smtp_server: SMTPReceiver
) -> None:
    address = f"nobody-{uuid.uuid4().hex[:8]}@urban.example.test"
    smtp_server.refused_recipients.add(address)
    with quiet_session(database) as session:
        code = make_department(session, email=address)
        case = make_case(session, department_code=code, caller_number=None)
        row_id = case.deliveries[0].id

    result = attempt(wiring, row_id)

    row = delivery_row(database, row_id)
    assert result.outcome == "failed"
    assert row.status == DeliveryStatus.FAILED and "550" in (row.last_error or "")


def test_two_jobs_never_claim_the_same_try(database: Database, wiring: Wiring) -> None:
    with quiet_session(database) as session:
        code = make_department(session, email="duty@claims.example.test")
        case = make_case(session, department_code=code, caller_number=None)
        row_id = case.deliveries[0].id
    config = wiring.senders.config
    now = utcnow()

    with Session(database.engine) as first, first.begin():
        claimed = services.claim_delivery(first, delivery_row_id=row_id, now=now, config=config)
        assert claimed is not None and claimed.attempts == 1
    with Session(database.engine) as second, second.begin():
        # A duplicate message (the after-commit send and the re-send job both queued it)
        # finds the try taken and not yet due again.
        assert (
            services.claim_delivery(second, delivery_row_id=row_id, now=now, config=config) is None
        )
        # The chain that made try 1 may make try 2 when its retry fires...
        again = services.claim_delivery(
            second, delivery_row_id=row_id, now=now, config=config, after_attempt=1
        )
        assert again is not None and again.attempts == 2
    with Session(database.engine) as third, third.begin():
        # ...but only once: a redelivered copy of that retry finds try 2 taken.
        stale = services.claim_delivery(
            third, delivery_row_id=row_id, now=now, config=config, after_attempt=1
        )
        assert stale is None
    assert delivery_row(database, row_id).attempts == 2


def test_a_text_queued_before_the_caller_texted_stop_is_withdrawn_not_sent(
    database: Database, wiring: Wiring
) -> None:
    caller = "+86139" + uuid.uuid4().hex[:8].translate(str.maketrans("abcdef", "123456"))
    with quiet_session(database) as session:
        case = make_case(session, caller_number=caller)
        queued = outbox.text_caller(session, case=case, message="accepted")
        assert queued is not None
        row_id = queued.id
    with database.session() as session, session.begin():
        texts.opt_out(session, number=caller, now=utcnow())

    assert attempt(wiring, row_id).outcome == "withdrawn"
    withdrawn = delivery_row(database, row_id)
    assert withdrawn.status == DeliveryStatus.WITHDRAWN and withdrawn.attempts == 1
    assert withdrawn.delivered_at is None
