"""并单 against a real database: a repeat report joins an open case (the routing job's rule and
the desk's hand), the case kept counts its reporters and is pushed once, every co-reporter hears
the outcome, and the desk can split a wrong join off."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cases import lifecycle, merging
from cases.access import Actor
from cases.errors import InvalidInputError, NotAllowedError
from cases.models import Case, CaseStatus, Delivery, Department, Role
from hotline.db import Database
from routing import tasks as routing_tasks
from routing.similarity import load_merge_rules
from tests.support.factories import make_case

DESK = Actor(name="dispatcher", role=Role.DISPATCHER)
URBAN = Actor(name="urban-staff", role=Role.DEPARTMENT, department_code="urban_mgmt")
LIGHT = "鲁城街道鼓楼大街的路灯坏了，晚上一片漆黑"


@pytest.fixture
def session(database: Database) -> Iterator[Session]:
    """A session whose work is rolled back at the end."""
    with database.session() as session:
        session.begin()
        # Pushed by e-mail, so that each push is an outbox row to count (rolled back after).
        session.get_one(Department, "urban_mgmt").email = "urban@example.org"
        yield session
        session.rollback()


def pushes(session: Session, case: Case, recipient: str = "urban_mgmt") -> list[str]:
    return list(
        session.scalars(
            select(Delivery.topic).where(
                Delivery.case_id == case.id, Delivery.recipient == recipient
            )
        )
    )


def kinds(case: Case) -> list[str]:
    return [event.kind for event in case.events]


# Reports from a day of their own, years back, so that no open case another test left in the
# database is within a merging window of them: other tests write theirs now, or on fixed days
# before 2005 or from 2020 on. (This range once reached into 2027, and CI met this week's.)
DAY = datetime(2005, 1, 1, 8, tzinfo=UTC) + timedelta(days=random.randrange(5000))


def report(session: Session, text: str = LIGHT, **values: object) -> Case:
    case = make_case(session, text=text, opened_at=DAY, **values)  # type: ignore[arg-type]
    case.place_code = "lucheng"
    session.flush()
    return case


def test_the_routing_job_joins_a_repeat_to_the_open_case_and_pushes_it_once(
    session: Session,
) -> None:
    rules = load_merge_rules()
    first = report(session)
    # The second report's push is what the routing job holds back: made here without one.
    repeat = report(session, text="鼓楼大街路灯不亮了，在鲁城这边", caller_number="+8613900000001")
    session.query(Delivery).filter(Delivery.case_id == repeat.id).delete()
    repeat.assigned_at = None
    routing_tasks._join_if_repeat(session, case=repeat, rules=rules)
    lifecycle.deliver_routed_case(session, case=repeat)
    session.flush()
    assert repeat.status == CaseStatus.MERGED and repeat.merged_into is first
    assert first.reporters == 2 and first.co_reporters == [repeat]
    assert pushes(session, repeat) == [] and pushes(session, first) == ["assigned"]
    assert "merged_into" in kinds(repeat) and "reporter_joined" in kinds(first)
    assert merging.followed_case(repeat) is first


def test_a_report_of_another_problem_or_place_opens_its_own_case(session: Session) -> None:
    rules = load_merge_rules()
    report(session)
    elsewhere = report(session, text="吴村镇的路灯坏了", caller_number="+8613900000002")
    elsewhere.place_code = "wucun"
    water = report(
        session,
        text="鲁城街道鼓楼大街停水了",
        category_code="water_supply",
        department_code="water",
    )
    for case in (elsewhere, water):
        routing_tasks._join_if_repeat(session, case=case, rules=rules)
        assert case.status == CaseStatus.ASSIGNED and case.merged_into is None


def test_every_co_reporter_is_told_the_outcome_and_may_rate_it(session: Session) -> None:
    kept = report(session)
    repeat = report(session, caller_number="+8613900000003")
    merging.join(session, case=repeat, into=kept, actor="system", how="similar")
    lifecycle.resolve(session, case=kept, actor=URBAN, reply="已更换灯泡")
    session.flush()
    assert repeat.status == CaseStatus.RESOLVED and repeat.resolution == "已更换灯泡"
    assert "resolved" in pushes(session, repeat, recipient="caller")
    # Each reporter rates their own contact; the co-reporter's rating closes only theirs.
    lifecycle.rate(session, case=repeat, score=5, message_sid=None)
    assert CaseStatus(repeat.status) is CaseStatus.CLOSED and kept.status == CaseStatus.RESOLVED


def test_a_co_reporter_who_says_it_is_not_solved_gets_a_case_of_their_own(
    session: Session,
) -> None:
    kept = report(session)
    repeat = report(session, caller_number="+8613900000005")
    merging.join(session, case=repeat, into=kept, actor="system", how="similar")
    lifecycle.accept(session, case=kept, actor=URBAN)
    lifecycle.resolve(session, case=kept, actor=URBAN, reply="已更换灯泡")
    outcome = lifecycle.rate(session, case=repeat, score=1, message_sid=None)
    assert outcome.reopened and repeat.merged_into is None and kept.reporters == 1
    assert repeat.status == CaseStatus.ASSIGNED and repeat.department_code == "urban_mgmt"
    assert repeat.responsible_department_code == "urban_mgmt"
    assert "reporter_split" in kinds(kept) and kept.status == CaseStatus.RESOLVED


def test_the_desk_merges_by_hand_and_splits_a_wrong_join_off(session: Session) -> None:
    kept = report(session)
    other = report(session, caller_number="+8613900000004")
    merging.merge_by_hand(session, case=other, into_number=kept.number, actor=DESK)
    assert other.status == CaseStatus.MERGED and kept.reporters == 2
    # Its department had it: told that it lives on in the kept case.
    assert "merged" in pushes(session, other)

    merging.split(session, case=other, actor=DESK)
    session.flush()
    assert other.merged_into is None and CaseStatus(other.status) is CaseStatus.ASSIGNED
    assert kept.reporters == 1
    assert "assigned-after-split" in pushes(session, other)
    assert "split_from" in kinds(other)
    assert "reporter_split" in kinds(kept)


def test_a_case_merged_with_its_co_reporters_hands_them_over(session: Session) -> None:
    kept, middle, repeat = report(session), report(session), report(session)
    merging.join(session, case=repeat, into=middle, actor="system", how="similar")
    merging.merge_by_hand(session, case=middle, into_number=kept.number, actor=DESK)
    assert kept.reporters == 3 and middle.reporters == 1
    assert repeat.merged_into is kept and middle.co_reporters == []
    # Naming a merged report as the target means the case it joined.
    late = report(session)
    merging.merge_by_hand(session, case=late, into_number=repeat.number, actor=DESK)
    assert late.merged_into is kept and kept.reporters == 4


def test_merging_by_hand_is_refused_with_a_reason(session: Session) -> None:
    case, closed = report(session), report(session)
    closed.status = CaseStatus.CLOSED
    with pytest.raises(InvalidInputError, match="No case has that number"):
        merging.merge_by_hand(session, case=case, into_number="999999999999", actor=DESK)
    with pytest.raises(InvalidInputError, match="into itself"):
        merging.merge_by_hand(session, case=case, into_number=case.number, actor=DESK)
    with pytest.raises(InvalidInputError, match="still being worked on"):
        merging.merge_by_hand(session, case=case, into_number=closed.number, actor=DESK)
    with pytest.raises(NotAllowedError):
        merging.merge_by_hand(session, case=case, into_number=closed.number, actor=URBAN)
    assert case.status == CaseStatus.ASSIGNED and case.merged_into is None
