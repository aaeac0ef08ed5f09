"""The lifecycle rules against a real database: first-responsible, transfer, send-back and
ruling, resolve and rating, escalation, the deadline sweep with time frozen, and visibility."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cases import clock, intake, lifecycle, queries
from cases.access import Actor, get_visible_case, visible_cases
from cases.errors import (
    InvalidInputError,
    InvalidTransitionError,
    NotAllowedError,
    UnknownCaseError,
)
from cases.models import Case, CaseEvent, CaseStatus, Channel, Delivery, Light, Role
from hotline.db import Database
from tests.support.factories import make_case

URBAN = Actor(name="urban-staff", role=Role.DEPARTMENT, department_code="urban_mgmt")
HOUSING = Actor(name="housing-staff", role=Role.DEPARTMENT, department_code="housing")
WATER = Actor(name="water-staff", role=Role.DEPARTMENT, department_code="water")
LEADER = Actor(name="leader", role=Role.DEPARTMENT, department_code="leadership")
DISPATCHER = Actor(name="dispatcher", role=Role.DISPATCHER)
SUPERVISOR = Actor(name="supervisor", role=Role.SUPERVISOR)
GRACE = timedelta(hours=24)


@pytest.fixture
def session(database: Database) -> Iterator[Session]:
    """A session whose work is rolled back at the end: each test leaves nothing behind."""
    with database.session() as session:
        session.begin()
        yield session
        session.rollback()


def kinds(case: Case) -> list[str]:
    return [event.kind for event in case.events]


def deliveries(session: Session, case: Case, recipient: str) -> list[Delivery]:
    return list(
        session.scalars(
            select(Delivery).where(Delivery.case_id == case.id, Delivery.recipient == recipient)
        )
    )


def test_first_responsible_department_stays_responsible_until_the_next_accepts(
    session: Session,
) -> None:
    case = make_case(session, department_code="urban_mgmt")
    assert case.status == CaseStatus.ASSIGNED and case.responsible_department_code is None

    lifecycle.accept(session, case=case, actor=URBAN)
    # cast: mypy keeps the narrowing from the assert above past the call that changed it
    assert cast(CaseStatus, case.status) == CaseStatus.ACCEPTED
    assert case.responsible_department_code == "urban_mgmt"
    # A retried accept changes nothing.
    lifecycle.accept(session, case=case, actor=URBAN)
    assert kinds(case).count("accepted") == 1

    lifecycle.transfer(
        session, case=case, actor=URBAN, department_code="housing", reason="manhole, not a lamp"
    )
    assert case.status == CaseStatus.ASSIGNED
    assert case.department_code == "housing"
    # Still urban_mgmt's responsibility, and still visible to it, until housing accepts.
    assert case.responsible_department_code == "urban_mgmt"
    assert get_visible_case(session, actor=URBAN, number=case.number) is case
    with pytest.raises(NotAllowedError):
        lifecycle.resolve(session, case=case, actor=URBAN, reply="done")

    lifecycle.accept(session, case=case, actor=HOUSING)
    assert case.responsible_department_code == "housing"
    session.flush()
    with pytest.raises(UnknownCaseError):
        get_visible_case(session, actor=URBAN, number=case.number)
    accepted = [event for event in case.events if event.kind == "accepted"]
    assert accepted[-1].data["released"] == "urban_mgmt"
    # The caller hears about the first acceptance only.
    caller_texts = [d.topic for d in deliveries(session, case, "caller")]
    assert caller_texts == ["accepted"]


def test_transfer_needs_a_reason_and_a_real_other_department(session: Session) -> None:
    case = make_case(session, department_code="urban_mgmt")
    before = kinds(case)
    for department, reason in (
        ("housing", "  "),
        ("nowhere", "wrong department"),
        ("urban_mgmt", "same one"),
        ("hotline_office", "send-backs go another way"),
    ):
        with pytest.raises(InvalidInputError):
            lifecycle.transfer(
                session, case=case, actor=URBAN, department_code=department, reason=reason
            )
    assert kinds(case) == before and case.department_code == "urban_mgmt"
    with pytest.raises(NotAllowedError):
        lifecycle.transfer(
            session, case=case, actor=WATER, department_code="housing", reason="not mine"
        )


def test_send_back_goes_to_the_desk_which_rules(session: Session) -> None:
    case = make_case(session, department_code="water", category_code="water_supply")
    lifecycle.send_back(session, case=case, actor=WATER, reason="this is a private pipe")
    assert case.status == CaseStatus.SENT_BACK
    assert case.department_code == "hotline_office"
    assert case.sent_back_by_code == "water"
    assert [d.topic for d in deliveries(session, case, "water")] == []  # no channels configured
    # Only the desk may rule; the department cannot pass it straight on.
    with pytest.raises(NotAllowedError):
        lifecycle.transfer(
            session, case=case, actor=WATER, department_code="housing", reason="theirs"
        )
    with pytest.raises(NotAllowedError):
        lifecycle.rule_on_send_back(
            session, case=case, actor=WATER, department_code="housing", ruling="x"
        )

    deadline = datetime(2030, 1, 1, tzinfo=UTC)
    lifecycle.rule_on_send_back(
        session,
        case=case,
        actor=DISPATCHER,
        department_code="housing",
        ruling="a private pipe inside a housing estate: housing",
        deadline_at=deadline,
    )
    # cast: mypy keeps the narrowing from the assert above past the call that changed it
    assert cast(CaseStatus, case.status) == CaseStatus.ASSIGNED
    assert case.department_code == "housing" and case.deadline_at == deadline
    assert case.sent_back_by_code is None
    ruling = next(event for event in case.events if event.kind == "ruling")
    assert ruling.data["upheld"] is True and ruling.data["sent_back_by"] == "water"


def test_rejected_send_back_returns_to_the_same_department(session: Session) -> None:
    case = make_case(session, department_code="water", category_code="water_supply")
    lifecycle.send_back(session, case=case, actor=WATER, reason="not ours")
    lifecycle.rule_on_send_back(
        session, case=case, actor=DISPATCHER, department_code="water", ruling="it is yours"
    )
    ruling = next(event for event in case.events if event.kind == "ruling")
    assert ruling.data["upheld"] is False
    assert case.department_code == "water" and case.status == CaseStatus.ASSIGNED


def test_accepted_case_cannot_be_sent_back(session: Session) -> None:
    case = make_case(session, department_code="water", category_code="water_supply")
    lifecycle.accept(session, case=case, actor=WATER)
    with pytest.raises(InvalidTransitionError):
        lifecycle.send_back(session, case=case, actor=WATER, reason="changed our mind")
    assert case.status == CaseStatus.ACCEPTED


def test_resolve_then_good_rating_closes(session: Session) -> None:
    case = make_case(session, department_code="urban_mgmt")
    with pytest.raises(InvalidInputError):
        lifecycle.resolve(session, case=case, actor=URBAN, reply="")
    lifecycle.resolve(session, case=case, actor=URBAN, reply="路灯已修复")
    # Resolving an unaccepted case accepts it first: the resolver is responsible.
    assert kinds(case)[-2:] == ["accepted", "resolved"]
    assert case.status == CaseStatus.RESOLVED and case.resolution == "路灯已修复"
    assert (
        queries.case_awaiting_rating(session, caller_number=cast(str, case.caller_number)) is case
    )
    texts = {d.topic: d.payload for d in deliveries(session, case, "caller")}
    assert texts["resolved"]["reply"] == "路灯已修复"

    outcome = lifecycle.rate(session, case=case, score=5, message_sid="SM1")
    assert not outcome.reopened
    # cast: mypy keeps the narrowing from the assert above past the call that changed it
    assert cast(CaseStatus, case.status) == CaseStatus.CLOSED and case.rating == 5
    with pytest.raises(InvalidTransitionError):
        lifecycle.rate(session, case=case, score=1, message_sid="SM2")


def test_low_rating_reopens_to_the_responsible_department(session: Session) -> None:
    case = make_case(session, department_code="urban_mgmt")
    lifecycle.accept(session, case=case, actor=URBAN)
    lifecycle.resolve(session, case=case, actor=URBAN, reply="fixed")
    new_deadline = datetime(2030, 6, 1, tzinfo=UTC)
    with pytest.raises(InvalidInputError):
        lifecycle.rate(session, case=case, score=7, message_sid="SMx")
    outcome = lifecycle.rate(
        session, case=case, score=2, message_sid="SM3", reopen_deadline_at=new_deadline
    )
    assert outcome.reopened
    assert case.status == CaseStatus.ASSIGNED and case.department_code == "urban_mgmt"
    assert case.rating == 2 and case.reopen_count == 1 and case.deadline_at == new_deadline
    reopened = next(event for event in case.events if event.kind == "reopened")
    assert reopened.data["score"] == 2 and reopened.data["previous_reply"] == "fixed"


def test_urgent_cases_are_copied_to_leadership(session: Session) -> None:
    urgent = make_case(
        session, department_code="housing", category_code="road_facility", urgency="urgent"
    )
    normal = make_case(session, department_code="housing", category_code="road_facility")
    assert urgent.major and not normal.major
    assert "copied_to_leadership" in kinds(urgent)
    visible = set(session.scalars(visible_cases(LEADER).where(Case.id.in_([urgent.id, normal.id]))))
    assert visible == {urgent}


def test_escalation_is_for_the_desk_and_supervisors(session: Session) -> None:
    case = make_case(session)
    with pytest.raises(NotAllowedError):
        lifecycle.escalate(session, case=case, actor=URBAN, reason="please")
    lifecycle.escalate(session, case=case, actor=SUPERVISOR, reason="third complaint this month")
    assert case.escalated_at is not None and case.major
    lifecycle.supervise(session, case=case, actor=DISPATCHER, instruction="fix it today")
    assert kinds(case)[-2:] == ["escalated", "supervised"]


def test_sweep_yellow_red_reminder_and_escalation_with_time_frozen(
    session: Session, database: Database
) -> None:
    start = datetime(2031, 3, 2, 8, 0, tzinfo=UTC)
    deadline = start + timedelta(hours=24)
    case = make_case(session, department_code="urban_mgmt", deadline_at=deadline, opened_at=start)
    case.assigned_at = start
    session.flush()

    def sweep(at: datetime) -> clock.SweepResult:
        result = clock.sweep_deadlines(session, now=at, escalation_grace=GRACE)
        session.flush()
        return result

    assert case.number not in sweep(start + timedelta(hours=17)).yellow
    assert case.light == Light.GREEN
    # 75% of 24 h is 18 h.
    assert case.number in sweep(start + timedelta(hours=18)).yellow
    # cast: mypy keeps the narrowing from the assert above past the call that changed it
    assert cast(Light, case.light) == Light.YELLOW
    assert case.number not in sweep(start + timedelta(hours=20)).yellow  # once only

    just_before = deadline - timedelta(seconds=1)
    assert case.number not in sweep(just_before).red
    assert case.number in sweep(deadline).red
    assert cast(Light, case.light) == Light.RED and case.reminded_at == deadline
    overdue = [d for d in deliveries(session, case, "urban_mgmt") if d.topic == "overdue"]
    assert case.number not in sweep(deadline + timedelta(hours=1)).red  # one reminder
    assert kinds(case).count("overdue_reminder") == 1
    assert case.escalated_at is None
    assert overdue == [d for d in deliveries(session, case, "urban_mgmt") if d.topic == "overdue"]

    assert case.number not in sweep(deadline + GRACE - timedelta(seconds=1)).escalated
    assert case.number in sweep(deadline + GRACE).escalated
    assert case.escalated_at == deadline + GRACE
    assert case.number not in sweep(deadline + GRACE + timedelta(hours=1)).escalated
    assert kinds(case).count("escalated") == 1
    # Leadership now sees it.
    assert get_visible_case(session, actor=LEADER, number=case.number) is case


def test_sweep_leaves_resolved_cases_alone(session: Session) -> None:
    start = datetime(2031, 4, 1, tzinfo=UTC)
    case = make_case(session, deadline_at=start + timedelta(hours=24), opened_at=start)
    lifecycle.resolve(session, case=case, actor=URBAN, reply="done")
    result = clock.sweep_deadlines(session, now=start + timedelta(days=10), escalation_grace=GRACE)
    assert case.number not in result.red and case.light == Light.GREEN


def test_visibility_is_in_the_query(session: Session) -> None:
    theirs = make_case(session, department_code="water", category_code="water_supply")
    ours = make_case(session, department_code="urban_mgmt")
    ids = [theirs.id, ours.id]
    seen_by_urban = set(session.scalars(visible_cases(URBAN).where(Case.id.in_(ids))))
    assert seen_by_urban == {ours}
    with pytest.raises(UnknownCaseError):
        get_visible_case(session, actor=URBAN, number=theirs.number)
    for actor in (DISPATCHER, SUPERVISOR):
        assert set(session.scalars(visible_cases(actor).where(Case.id.in_(ids)))) == {theirs, ours}
    nobody = Actor(name="x", role=Role.DEPARTMENT, department_code=None)
    assert list(session.scalars(visible_cases(nobody).where(Case.id.in_(ids)))) == []


def test_department_push_is_queued_per_configured_channel(session: Session) -> None:
    from cases.staff import set_department_channels

    set_department_channels(
        session,
        code="power",
        webhook_url="https://power.example.test/hook",
        webhook_secret="s3cret",
        email="duty@power.example.test",
    )
    case = make_case(session, department_code="power", category_code="power_supply")
    pushed = deliveries(session, case, "power")
    assert {d.channel for d in pushed} == {Channel.WEBHOOK, Channel.EMAIL}
    assert {d.topic for d in pushed} == {"assigned"}
    assert len({d.delivery_id for d in pushed}) == 2
    assert pushed[0].payload["case"]["caller_number"].endswith("0000")
    assert not pushed[0].payload["case"]["caller_number"].startswith("+86")
    # Sent back and assigned again: a second, distinct push.
    actor = Actor(name="p", role=Role.DEPARTMENT, department_code="power")
    lifecycle.send_back(session, case=case, actor=actor, reason="not ours")
    lifecycle.rule_on_send_back(
        session, case=case, actor=DISPATCHER, department_code="power", ruling="yours"
    )
    assert {d.topic for d in deliveries(session, case, "power")} == {"assigned", "assigned-2"}
    assert session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id)).first()


def test_a_triaged_case_is_not_routed_again_by_a_late_transcript(session: Session) -> None:

    case = make_case(session, department_code="hotline_office", category_code="other", triage=True)
    # As if the desk took it while transcription was still running: not yet routed.
    case.routed_at, case.status = None, CaseStatus.OPEN
    deadline = datetime(2030, 1, 1, tzinfo=UTC)
    lifecycle.triage(
        session,
        case=case,
        actor=DISPATCHER,
        category_code="water_supply",
        department_code="water",
        urgency="normal",
        deadline_at=deadline,
    )
    lifecycle.accept(session, case=case, actor=WATER)
    late = intake.RoutingOutcome(
        category="other",
        department="hotline_office",
        urgency="normal",
        confidence=0.1,
        place_code=None,
        deadline=deadline,
        needs_triage=True,
        emergency=None,
        explanation={},
        model_version="late",
    )
    assert intake.route_case(session, case=case, outcome=late) is False
    assert (case.status, case.department_code) == (CaseStatus.ACCEPTED, "water")


def test_a_reopened_case_without_a_new_deadline_gets_a_fresh_one(session: Session) -> None:
    past = datetime(2020, 1, 1, tzinfo=UTC)
    case = make_case(session, opened_at=past, deadline_at=past + timedelta(hours=24))
    lifecycle.resolve(session, case=case, actor=URBAN, reply="done")
    case.escalated_at = past
    lifecycle.rate(session, case=case, score=1, message_sid="SM9")
    assert case.deadline_at is not None and case.deadline_at > datetime.now(UTC)
    assert case.escalated_at is None  # overdue again later means escalated again


def test_phone_numbers_in_provider_errors_are_masked() -> None:
    from cases.privacy import hide_phone_numbers

    text = "HTTP 400: The 'To' number +8613912345678 is not a valid phone number (21211)"
    assert hide_phone_numbers(text) == (
        "HTTP 400: The 'To' number **********5678 is not a valid phone number (21211)"
    )
    assert hide_phone_numbers("550 no such user at 2026-11-26 04:00") == (
        "550 no such user at 2026-11-26 04:00"
    )
    assert "05374412345" not in hide_phone_numbers("landline 05374412345 refused")
