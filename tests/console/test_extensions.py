"""延期申请: the holding department asks for more working days with a reason; the desk sees it
in its list and approves (the deadline moves, the light starts green) or refuses (it stands).
One request waits at a time; only the holder asks and only the desk rules."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select
from werkzeug.test import TestResponse

from cases.models import Case, Light, utcnow
from hotline.db import Database
from tests.support.factories import make_case
from tests.support.receivers import make_department
from tests.support.staff import Console


def load(database: Database, number: str) -> Case:
    with database.session() as session:
        case = session.scalars(select(Case).where(Case.number == number)).one()
        _ = case.events
        return case


def ask(
    clerk: Console, number: str, days: str = "3", reason: str = "需协调供电公司停电检修"
) -> TestResponse:
    return clerk.post(
        f"/console/cases/{number}/extension",
        {"extension-working_days": days, "extension-reason": reason},
    )


def test_the_desk_approves_a_request_for_more_time_and_the_deadline_moves(
    signed_in: Callable[..., Console], database: Database
) -> None:
    with database.session() as session, session.begin():
        code = make_department(session)
        case = make_case(session, department_code=code, deadline_at=utcnow() + timedelta(hours=5))
        case.light = Light.YELLOW
        number, deadline = case.number, case.deadline_at
    clerk = signed_in("department", code)
    assert 'id="extension-form"' in clerk.get(f"/console/cases/{number}").get_data(as_text=True)
    assert ask(clerk, number).status_code == 302
    asked = load(database, number)
    assert asked.deadline_at == deadline  # it stands until the desk rules
    assert deadline is not None and asked.extension_until is not None
    assert asked.extension_until > deadline
    until = asked.extension_until
    # One request at a time: the button is gone, and a second post is refused.
    page = clerk.get(f"/console/cases/{number}").get_data(as_text=True)
    assert 'id="extension-form"' not in page and 'id="case-extension"' in page
    assert ask(clerk, number, days="5").status_code in (400, 403, 409)
    assert load(database, number).extension_until == until

    desk = signed_in("dispatcher")
    listed = desk.get("/console/extension-requests").get_data(as_text=True)
    assert f'id="case-row-{number}"' in listed
    ruling = desk.get(f"/console/cases/{number}").get_data(as_text=True)
    assert "需协调供电公司停电检修" in ruling[ruling.index('id="extension-ruling-form"') :]
    response = desk.post(
        f"/console/cases/{number}/extension-ruling",
        {"extension-ruling-decision": "approve", "extension-ruling-note": "同意"},
    )
    assert response.status_code == 302
    approved = load(database, number)
    assert approved.deadline_at == until
    assert approved.extension_until is None and approved.light == Light.GREEN
    kinds = [event.kind for event in approved.events]
    assert kinds[-2:] == ["extension_requested", "extension_approved"]
    assert f'id="case-row-{number}"' not in desk.get("/console/extension-requests").get_data(
        as_text=True
    )
    shown = clerk.get(f"/console/cases/{number}").get_data(as_text=True)
    assert "延期申请已批准" in shown


def test_a_refused_request_leaves_the_deadline_and_only_the_right_people_act(
    signed_in: Callable[..., Console], database: Database
) -> None:
    with database.session() as session, session.begin():
        code = make_department(session)
        other = make_department(session)
        number = make_case(session, department_code=code).number
    stranger = signed_in("department", other)
    assert ask(stranger, number).status_code == 404  # another department's case is not there
    desk = signed_in("dispatcher")
    assert ask(desk, number).status_code == 403  # the desk rules; it does not ask
    clerk = signed_in("department", code)
    refused_input = ask(clerk, number, days="0")
    assert refused_input.status_code == 400
    assert "1" in refused_input.get_data(as_text=True)
    assert load(database, number).extension_until is None

    deadline = load(database, number).deadline_at
    assert ask(clerk, number).status_code == 302
    assert (
        clerk.post(
            f"/console/cases/{number}/extension-ruling",
            {"extension-ruling-decision": "approve"},
        ).status_code
        == 403
    )
    response = desk.post(
        f"/console/cases/{number}/extension-ruling",
        {"extension-ruling-decision": "refuse", "extension-ruling-note": "请按期办结"},
    )
    assert response.status_code == 302
    refused = load(database, number)
    assert refused.deadline_at == deadline
    assert refused.extension_until is None
    assert [event.kind for event in refused.events][-1] == "extension_refused"
    # Refused, the department may ask again (with a better reason).
    assert ask(clerk, number, reason="配件到货需五个工作日").status_code == 302
