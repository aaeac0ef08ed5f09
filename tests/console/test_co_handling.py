"""主办/协办: the desk asks another department to assist the holder; the assisting department
sees the case, is sent it, and replies for its part; the holder resolves it only once every
part is in. Nobody else acts for a part."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from cases.models import Case, CaseStatus
from hotline.db import Database
from tests.support.factories import make_case
from tests.support.receivers import make_department
from tests.support.staff import Console


def load(database: Database, number: str) -> Case:
    with database.session() as session:
        case = session.scalars(select(Case).where(Case.number == number)).one()
        _ = case.events, case.assists, case.deliveries
        return case


def test_a_case_is_resolved_by_its_holder_once_the_assisting_department_has_replied(
    signed_in: Callable[..., Console], database: Database
) -> None:
    with database.session() as session, session.begin():
        lead, helper, stranger = (make_department(session) for _ in range(3))
        number = make_case(session, department_code=lead).number
    desk, holder = signed_in("dispatcher"), signed_in("department", lead)
    assistant, outsider = signed_in("department", helper), signed_in("department", stranger)
    assert f'id="case-row-{number}"' not in assistant.get("/console/").get_data(as_text=True)

    asked = desk.post(
        f"/console/cases/{number}/assist",
        {"assist-department": helper, "assist-task": "请排查地下管网是否渗漏"},
    )
    assert asked.status_code == 302
    # Asked twice for the same department: refused, nothing added.
    again = desk.post(
        f"/console/cases/{number}/assist", {"assist-department": helper, "assist-task": "再查"}
    )
    assert again.status_code == 400
    case = load(database, number)
    assert [(a.department_code, a.reply) for a in case.assists] == [(helper, None)]
    assert [d.topic for d in case.deliveries if d.recipient == helper] in ([], ["assist"])

    # The assisting department sees it in its inbox, tagged, and on its page; others do not.
    inbox = assistant.get("/console/").get_data(as_text=True)
    row = inbox[inbox.index(f'id="case-row-{number}"') :]
    assert "协办" in row[: row.index("</tr>")]
    assert outsider.get(f"/console/cases/{number}").status_code == 404

    # The holder may not resolve while a part is out.
    holder.post(f"/console/cases/{number}/accept")
    early = holder.post(f"/console/cases/{number}/resolve", {"resolve-reply": "已处理"})
    assert early.status_code == 400
    assert "协办部门尚未答复" in early.get_data(as_text=True)
    assert load(database, number).status == CaseStatus.ACCEPTED

    # Only the assisting department replies for its part, once.
    part = {"assist-reply-reply": "已排查，管网无渗漏，系楼内水管老化"}
    assert holder.post(f"/console/cases/{number}/assist-reply", part).status_code == 403
    assert outsider.post(f"/console/cases/{number}/assist-reply", part).status_code == 404
    assert assistant.post(f"/console/cases/{number}/assist-reply", part).status_code == 302
    assert assistant.post(f"/console/cases/{number}/assist-reply", part).status_code in (400, 403)
    page = holder.get(f"/console/cases/{number}").get_data(as_text=True)
    assert "系楼内水管老化" in page[page.index('id="assists"') :]

    done = holder.post(f"/console/cases/{number}/resolve", {"resolve-reply": "已更换楼内水管"})
    assert done.status_code == 302
    resolved = load(database, number)
    assert resolved.status == CaseStatus.RESOLVED
    kinds = [event.kind for event in resolved.events]
    assert kinds.index("assist_asked") < kinds.index("assist_replied") < kinds.index("resolved")
