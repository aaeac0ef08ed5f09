"""The work order (诉求内容): the desk writes the problem up beside the recording, corrects it
with the old text kept in the timeline, and departments read it first (inbox, case page, push)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from cases.models import Case
from cases.serialise import case_snapshot
from hotline.db import Database
from tests.support.factories import make_case
from tests.support.receivers import make_department
from tests.support.staff import Console


def load(database: Database, number: str) -> Case:
    with database.session() as session:
        case = session.scalars(select(Case).where(Case.number == number)).one()
        _ = case.events, case.transcript, case.merged_into, case.assists
        return case


def test_the_desk_writes_and_corrects_the_work_order_and_the_timeline_keeps_both(
    signed_in: Callable[..., Console], database: Database
) -> None:
    with database.session() as session, session.begin():
        code = make_department(session)
        number = make_case(session, department_code=code, text="那个路灯嗯坏了好几天").number
    desk = signed_in("dispatcher")
    page = desk.get(f"/console/cases/{number}").get_data(as_text=True)
    # The form starts from the caller's words as heard, right under the player.
    form = page[page.index('id="work-order-form"') :]
    assert "那个路灯嗯坏了好几天" in form[: form.index("</form>")]
    assert page.index('id="recording-section"') < page.index('id="work-order-form"')

    first = "鲁城街道春秋路路灯不亮已三天，请尽快维修。"
    response = desk.post(f"/console/cases/{number}/work-order", {"work-order-text": first})
    assert response.status_code == 302
    second = "鲁城街道春秋路东段两盏路灯不亮已三天，请尽快维修。"
    desk.post(f"/console/cases/{number}/work-order", {"work-order-text": second})
    desk.post(f"/console/cases/{number}/work-order", {"work-order-text": second})  # resubmitted

    case = load(database, number)
    assert case.work_order == second
    assert case.transcript is not None and case.transcript.text == "那个路灯嗯坏了好几天"
    written = [event.data for event in case.events if event.kind == "work_order_written"]
    assert written == [
        {"work_order": first, "before": None},
        {"work_order": second, "before": first},
    ]
    assert case_snapshot(case)["work_order"] == second
    shown = desk.get(f"/console/cases/{number}").get_data(as_text=True)
    assert "填写诉求内容" in shown and "修改前" in shown
    assert 'id="case-language">普通话' in shown  # the caller's language named, not coded

    # The department reads it first: in its inbox row and on the case page, and cannot edit it.
    clerk = signed_in("department", code)
    inbox = clerk.get("/console/").get_data(as_text=True)
    row = inbox[inbox.index(f'id="case-row-{number}"') :]
    assert "鲁城街道春秋路东段两盏路灯" in row[: row.index("</tr>")]
    case_page = clerk.get(f"/console/cases/{number}").get_data(as_text=True)
    assert f'id="case-work-order">{second}' in case_page
    assert 'id="work-order-form"' not in case_page
    refused = clerk.post(f"/console/cases/{number}/work-order", {"work-order-text": "改掉"})
    assert refused.status_code == 403
    assert load(database, number).work_order == second


def test_an_empty_or_unsavable_work_order_is_refused_in_chinese_and_nothing_changes(
    signed_in: Callable[..., Console], database: Database
) -> None:
    with database.session() as session, session.begin():
        number = make_case(session).number
    desk = signed_in("dispatcher")
    for text in ("", "路灯\x00坏了"):
        response = desk.post(f"/console/cases/{number}/work-order", {"work-order-text": text})
        assert response.status_code == 400, text
        page = response.get_data(as_text=True)
        assert 'class="field-error"' in page
    case = load(database, number)
    assert case.work_order is None
    assert not [event for event in case.events if event.kind == "work_order_written"]
