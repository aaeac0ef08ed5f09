"""The state machine as one table (`cases.lifecycle.TRANSITIONS`): which actions each person is
offered on a case in each state. Pure: cases built in memory, no database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cases import lifecycle
from cases.access import DISPATCH_DESK, SYSTEM, Actor
from cases.errors import InvalidTransitionError, NotAllowedError
from cases.models import Case, CaseStatus, Role

WATER = Actor(name="li.wei", role=Role.DEPARTMENT, department_code="water")
POWER = Actor(name="zhao.li", role=Role.DEPARTMENT, department_code="power")
DISPATCHER = Actor(name="desk1", role=Role.DISPATCHER)
DESK_STAFF = Actor(name="desk2", role=Role.DEPARTMENT, department_code=DISPATCH_DESK)
SUPERVISOR = Actor(name="sup1", role=Role.SUPERVISOR)
ADMIN = Actor(name="root", role=Role.ADMIN)
OPERATOR = Actor(name="op1", role=Role.OPERATOR)


def case(status: CaseStatus, **values: object) -> Case:
    return Case(
        number="123456782",
        status=status,
        locale="zh-CN",
        department_code=values.pop("department_code", "water"),
        **values,
    )


@pytest.mark.parametrize(
    ("actor", "status", "offered"),
    [
        (WATER, CaseStatus.ASSIGNED, {"accept", "note", "transfer", "send_back", "resolve"}),
        # First-responsible: once accepted, transfer but not send back.
        (WATER, CaseStatus.ACCEPTED, {"note", "transfer", "resolve"}),
        (WATER, CaseStatus.RESOLVED, {"note"}),
        # Another department sees nothing to do on water's case.
        (POWER, CaseStatus.ASSIGNED, set()),
        (
            DISPATCHER,
            CaseStatus.TRIAGE,
            {
                "note",
                "work_order",
                "transfer",
                "triage",
                "answer_by_desk",
                "escalate",
                "supervise",
                "merge",
            },
        ),
        (
            DESK_STAFF,
            CaseStatus.SENT_BACK,
            {"note", "work_order", "ruling", "escalate", "supervise", "merge"},
        ),
        # 并单: a merged report is split off by the desk; nobody else acts on it.
        (DISPATCHER, CaseStatus.MERGED, {"note", "split"}),
        (WATER, CaseStatus.MERGED, {"note"}),
        (SUPERVISOR, CaseStatus.ACCEPTED, {"escalate", "supervise"}),
        (SUPERVISOR, CaseStatus.CLOSED, set()),
        # Admins run the system; they do not work cases in a department's name.
        (
            ADMIN,
            CaseStatus.ASSIGNED,
            {"note", "work_order", "transfer", "add_assist", "escalate", "supervise", "merge"},
        ),
        # An operator writes a case up from their seat's own form, never the case page.
        (OPERATOR, CaseStatus.ASSIGNED, set()),
        (OPERATOR, CaseStatus.OPEN, set()),
    ],
)
def test_each_person_is_offered_the_actions_the_table_allows(
    actor: Actor, status: CaseStatus, offered: set[str]
) -> None:
    department = DISPATCH_DESK if status in (CaseStatus.TRIAGE, CaseStatus.SENT_BACK) else "water"
    assert lifecycle.allowed_actions(actor, case(status, department_code=department)) == offered


def test_the_holder_asks_for_more_time_once_and_only_the_desk_rules_on_it() -> None:
    # 延期申请 is offered on a case with a deadline, one request at a time.
    deadline = datetime(2030, 5, 1, 10, tzinfo=UTC)
    dated = case(CaseStatus.ACCEPTED, deadline_at=deadline)
    assert "request_extension" in lifecycle.allowed_actions(WATER, dated)
    assert "request_extension" not in lifecycle.allowed_actions(POWER, dated)
    assert "decide_extension" not in lifecycle.allowed_actions(DISPATCHER, dated)
    asked = case(CaseStatus.ACCEPTED, deadline_at=deadline, extension_until=deadline)
    assert "request_extension" not in lifecycle.allowed_actions(WATER, asked)
    assert "decide_extension" in lifecycle.allowed_actions(DISPATCHER, asked)
    assert "decide_extension" not in lifecycle.allowed_actions(SUPERVISOR, asked)
    assert "decide_extension" not in lifecycle.allowed_actions(WATER, asked)


def test_the_first_responsible_department_keeps_its_notes_after_a_transfer() -> None:
    transferred = case(CaseStatus.ASSIGNED, department_code="power")
    transferred.responsible_department_code = "water"
    assert lifecycle.allowed_actions(WATER, transferred) == {"note"}


def test_an_escalated_case_is_not_offered_escalation_again() -> None:
    escalated = case(CaseStatus.ACCEPTED, escalated_at=datetime(2026, 1, 1, tzinfo=UTC))
    assert "escalate" not in lifecycle.allowed_actions(SUPERVISOR, escalated)
    assert "supervise" in lifecycle.allowed_actions(SUPERVISOR, escalated)


def test_ratings_are_the_callers_never_a_staff_button() -> None:
    resolved = case(CaseStatus.RESOLVED)
    for actor in (WATER, DISPATCHER, SUPERVISOR, ADMIN):
        assert "rate" not in lifecycle.allowed_actions(actor, resolved)
    with pytest.raises(NotAllowedError):
        lifecycle.check_actor("rate", actor=ADMIN, case=resolved)


def test_refusals_say_who_may_and_what_state_is_wrong() -> None:
    assigned = case(CaseStatus.ASSIGNED)
    with pytest.raises(NotAllowedError, match="Only the department holding the case can accept"):
        lifecycle.check_actor("accept", actor=POWER, case=assigned)
    with pytest.raises(InvalidTransitionError, match="cannot rule on a case that is assigned"):
        lifecycle.check_status("ruling", case=assigned)
    with pytest.raises(InvalidTransitionError, match="transfer it, as you are first-responsible"):
        lifecycle.check_status("send_back", case=case(CaseStatus.ACCEPTED))


def test_every_action_offered_is_taken_from_the_statuses_the_table_names() -> None:
    for status in CaseStatus:
        for actor in (WATER, DISPATCHER, DESK_STAFF, SUPERVISOR, ADMIN):
            for name in lifecycle.allowed_actions(actor, case(status)):
                lifecycle.check_actor(name, actor=actor, case=case(status))
                lifecycle.check_status(name, case=case(status))


def reopened(department_code: str = "water", *, responsible: str = "water") -> Case:
    """A case a low rating reopened: assigned again to the department first-responsible."""
    again = case(CaseStatus.ASSIGNED, department_code=department_code, reopen_count=1)
    again.responsible_department_code = responsible
    return again


def test_a_department_that_accepted_a_reopened_case_is_not_offered_send_back() -> None:
    # 首问负责: having accepted it once, water stays responsible, reopened or not.
    assert lifecycle.allowed_actions(WATER, reopened()) == {"accept", "note", "transfer", "resolve"}
    with pytest.raises(InvalidTransitionError, match="stays first-responsible"):
        lifecycle.check_status("send_back", case=reopened())


def test_a_case_ruled_back_to_the_department_that_accepted_it_cannot_be_sent_back_again() -> None:
    # Water accepted, transferred to power, power sent it back, the desk ruled it back to water.
    with pytest.raises(InvalidTransitionError, match="stays first-responsible"):
        lifecycle.check_status("send_back", case=reopened("water", responsible="water"))


def test_a_department_that_never_accepted_may_still_send_back() -> None:
    # Water accepted and transferred to power; power has not accepted, so it may send back.
    transferred = reopened("power", responsible="water")
    assert "send_back" in lifecycle.allowed_actions(POWER, transferred)
    lifecycle.check_status("send_back", case=transferred)


def test_every_action_offered_on_a_reopened_case_is_one_the_checks_allow() -> None:
    for actor in (WATER, POWER, DISPATCHER, DESK_STAFF, SUPERVISOR, ADMIN):
        for name in lifecycle.allowed_actions(actor, reopened()):
            lifecycle.check_actor(name, actor=actor, case=reopened())
            lifecycle.check_status(name, case=reopened())


def test_the_desk_is_offered_answering_at_once_only_with_an_article_attached() -> None:
    # 当即解答 closes the case with the attached article's answer: no article, no button.
    for status in (CaseStatus.OPEN, CaseStatus.TRIAGE, CaseStatus.ASSIGNED):
        with_article = case(status, department_code=DISPATCH_DESK, article_id="hotline-service")
        assert "answer_at_once" in lifecycle.allowed_actions(DISPATCHER, with_article)
        assert "answer_at_once" in lifecycle.allowed_actions(DESK_STAFF, with_article)
        assert "answer_at_once" not in lifecycle.allowed_actions(
            DISPATCHER, case(status, department_code=DISPATCH_DESK)
        )
    for actor in (WATER, SUPERVISOR):
        assigned = case(CaseStatus.ASSIGNED, article_id="hotline-service")
        assert "answer_at_once" not in lifecycle.allowed_actions(actor, assigned)
        with pytest.raises(NotAllowedError, match="Only the dispatch desk answers"):
            lifecycle.check_actor("answer_at_once", actor=actor, case=assigned)


@pytest.mark.parametrize(
    "status",
    [CaseStatus.ACCEPTED, CaseStatus.SENT_BACK, CaseStatus.RESOLVED, CaseStatus.CLOSED],
)
def test_a_case_a_department_took_up_or_that_is_done_is_not_answered_at_once(
    status: CaseStatus,
) -> None:
    with pytest.raises(InvalidTransitionError, match="cannot answer at once"):
        lifecycle.check_status("answer_at_once", case=case(status, article_id="hotline-service"))
    lifecycle.check_actor("answer_at_once", actor=SYSTEM, case=case(status))


def test_the_operator_who_took_the_call_writes_it_up_once_before_a_department_accepts() -> None:
    routed = case(CaseStatus.ASSIGNED)  # the machine routed the report meanwhile
    lifecycle.check_actor("route_at_seat", actor=OPERATOR, case=routed)
    lifecycle.check_status("route_at_seat", case=routed)
    with pytest.raises(NotAllowedError):
        lifecycle.check_actor("route_at_seat", actor=DISPATCHER, case=routed)
    mine = case(CaseStatus.ASSIGNED, owner="op1")
    with pytest.raises(InvalidTransitionError, match="written up already"):
        lifecycle.check_status("route_at_seat", case=mine)
    other_operator = Actor(name="op2", role=Role.OPERATOR)
    with pytest.raises(NotAllowedError):
        lifecycle.check_actor("route_at_seat", actor=other_operator, case=mine)
    with pytest.raises(InvalidTransitionError):
        lifecycle.check_status("route_at_seat", case=case(CaseStatus.ACCEPTED))
