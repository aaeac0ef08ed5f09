"""One whole case, end to end, with every part real: a call in the emulator, real Vosk, the
classifier, a real Celery worker, a department's webhook receiver over HTTP, the department's
API, Twilio's REST API mocked by Prism from Twilio's own OpenAPI file, and the rating text."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import select

from cases import lifecycle, serialise, staff
from cases.access import Actor
from cases.models import Call, Case, CaseStatus, Category, Department, Role, utcnow
from emulator import RecordingServer, Speak, TwilioEmulator
from hotline.db import Database
from hotline.wiring import wiring_of
from tests.conftest import ACCOUNT_SID, AUDIO, AUTH_TOKEN, PUBLIC_BASE_URL, wait_until
from tests.support.flaky_proxy import FlakyProxy
from tests.support.receivers import ReceivedPush, WebhookReceiver, new_caller_number

pytestmark = pytest.mark.usefixtures("celery_worker")

SECRET = "e2e-department-secret"
REPLY = "路灯已于今天下午更换，感谢您的反映。"
# Leadership only receives copies; every other department can hold a case.
COPIES_ONLY = ("leadership",)


@pytest.fixture
def receiver(database: Database) -> Iterator[WebhookReceiver]:
    """A department system's endpoint, configured on every handling department (wherever
    routing sends the case, the push comes here) and unconfigured afterwards."""
    with WebhookReceiver(secret=SECRET) as receiver:
        with database.session() as session, session.begin():
            codes = [
                code
                for code in session.scalars(select(Department.code))
                if code not in COPIES_ONLY and not code.startswith("t_")
            ]
            for code in codes:
                staff.set_department_channels(
                    session, code=code, webhook_url=receiver.url, webhook_secret=SECRET
                )
        try:
            yield receiver
        finally:
            with database.session() as session, session.begin():
                for code in codes:
                    staff.set_department_channels(
                        session, code=code, webhook_url="", webhook_secret=""
                    )


def read_case(database: Database, number: str) -> Case:
    with database.session() as session:
        case = session.scalars(select(Case).where(Case.number == number)).one()
        _ = case.events, case.deliveries, case.transcript, case.call, case.recordings
        _ = case.merged_into, case.co_reporters
        return case


def test_a_call_is_routed_pushed_resolved_through_the_api_texted_and_rated(
    app: Flask,
    database: Database,
    live_server: str,
    streams_server: str,
    recording_server: RecordingServer,
    twilio_api: FlakyProxy,
    receiver: WebhookReceiver,
) -> None:
    caller = new_caller_number()
    # A caller of our own: "the caller's latest resolved case" must be this one.
    emulator = TwilioEmulator(
        public_base_url=PUBLIC_BASE_URL,
        app_url=live_server,
        streams_url=streams_server,
        auth_token=AUTH_TOKEN,
        account_sid=ACCOUNT_SID,
        recordings=recording_server,
        from_number=caller,
    )

    # The call: Korean, report, the caller describes a broken street light and presses #.
    log = emulator.call(["3", "1", Speak((AUDIO / "ko_streetlight.wav").read_bytes())])
    with database.session() as session:
        number = session.scalars(
            select(Case.number)
            .join(Call, Case.call_id == Call.id)
            .where(Call.call_sid == log.call_sid)
        ).one()

    # 1. Transcribed and routed by the worker.
    wait_until(
        lambda: read_case(database, number).routed_at is not None,
        timeout=120,
        what="the case to be transcribed and routed",
    )
    case = read_case(database, number)
    assert case.transcript is not None and case.transcript.complete
    if case.status == CaseStatus.TRIAGE:
        # espeak's Korean is hard on the small model: if routing was not confident, the
        # dispatch desk received it (the push below proves it) and a dispatcher triages it.
        wait_until(lambda: receiver.accepted_for(number), timeout=60, what="the desk's push")
        with database.session() as session, session.begin():
            held = session.scalars(select(Case).where(Case.number == number)).one()
            lifecycle.triage(
                session,
                case=held,
                actor=Actor(name="dispatcher-e2e", role=Role.DISPATCHER),
                category_code="streetlight",
                department_code="urban_mgmt",
                urgency="normal",
                deadline_at=wiring_of(app).router.deadline_for(
                    category=session.get_one(Category, "streetlight"),
                    urgency="normal",
                    start=utcnow(),
                ),
            )
        case = read_case(database, number)
    assert case.status == CaseStatus.ASSIGNED
    holder = case.department_code
    assert holder is not None

    # 2. The push reaches the department's receiver, signed with its secret.
    def pushed_to_holder() -> list[ReceivedPush]:
        return [
            push
            for push in receiver.accepted_for(number)
            if push.document["case"]["department"] == holder
        ]

    (push,) = wait_until(pushed_to_holder, timeout=60, what="the push to the department")
    assert push.signature_valid and push.delivery_id.startswith("dlv_")
    assert push.document["event"] == "assigned"
    assert caller not in push.body.decode()  # the caller's number travels masked

    # 3. The department's own system accepts and resolves it through the API.
    with database.session() as session, session.begin():
        key = staff.issue_api_key(session, code=holder)
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {key}"
    accepted = api.post(f"{live_server}/api/v1/cases/{number}/accept", timeout=10)
    assert accepted.status_code == 200, accepted.text
    resolved = api.post(
        f"{live_server}/api/v1/cases/{number}/resolve",
        json={"reply": REPLY},
        headers={"Idempotency-Key": str(uuid.uuid4())},
        timeout=10,
    )
    assert resolved.status_code == 200, resolved.text
    assert read_case(database, number).status == CaseStatus.RESOLVED

    # 4. The caller's text with the reply reaches Twilio (Prism, from Twilio's OpenAPI file).
    def reply_texted() -> list[dict[str, Any]]:
        return [m for m in twilio_api.messages_to(caller) if REPLY in str(m["form"].get("Body"))]

    (text,) = wait_until(reply_texted, timeout=60, what="the resolution text to the caller")
    assert number in str(text["form"]["Body"])

    # 5. The caller answers "5": the case is closed.
    message_sid = "SM" + uuid.uuid4().hex
    rating = emulator.post(
        "/ivr/sms",
        {
            "MessageSid": message_sid,
            "SmsSid": message_sid,
            "AccountSid": ACCOUNT_SID,
            "From": caller,
            "To": "+865374412345",
            "Body": "5",
            "NumMedia": "0",
        },
    )
    assert rating.status_code == 200, rating.body
    case = read_case(database, number)
    assert (case.status, case.rating) == (CaseStatus.CLOSED, 5)

    timeline = serialise.case_record(case)["events"]
    print(f"\nTimeline of case {number}:")
    for event in timeline:
        print(f"  {event['at']}  {event['kind']:<22} {event['actor']:<20} {event['data']}")
    kinds = [event["kind"] for event in timeline]
    for expected in ("opened", "accepted", "resolved", "rated", "closed"):
        assert expected in kinds
    assert kinds.index("accepted") < kinds.index("resolved") < kinds.index("rated")
