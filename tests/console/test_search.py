"""The case search and its export: each field finds what it says, within what the person may
see, with callers' numbers masked for departments; exports for the roles that may have them."""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from openpyxl import load_workbook

from cases.models import CaseStatus
from hotline.db import Database
from tests.support.factories import make_case
from tests.support.receivers import make_department
from tests.support.staff import Console


def unique_phone() -> str:
    """A mobile number no other test's case has (the session's cases share one database)."""
    return "+86139" + str(uuid.uuid4().int)[:8]


def found_numbers(page: str) -> list[str]:
    return re.findall(r'id="case-row-(\d+)"', page)


def search(browser: Console, **query: str) -> str:
    response = browser.get("/console/search", query_string=query)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def test_a_search_by_phone_finds_the_callers_cases_from_any_way_the_number_is_written(
    signed_in: Callable[..., Console], database: Database
) -> None:
    phone = unique_phone()
    with database.session() as session, session.begin():
        older = make_case(session, caller_number=phone, opened_at=datetime(2026, 3, 1, tzinfo=UTC))
        newer = make_case(session, caller_number=phone)
        other = make_case(session, caller_number=unique_phone())
        numbers = older.number, newer.number, other.number
    desk = signed_in("dispatcher")
    local = phone.removeprefix("+86")
    for typed in (phone, local, f"{local[:3]} {local[3:7]} {local[7:]}", f"+86-{local}"):
        page = search(desk, phone=typed)
        assert found_numbers(page) == [numbers[1], numbers[0]], typed  # newest first
        assert phone in page  # the desk calls back: the whole number
    # The last four digits find it too, among others perhaps.
    assert {numbers[0], numbers[1]} <= set(found_numbers(search(desk, phone=local[-4:])))
    assert numbers[2] not in found_numbers(search(desk, phone=local))


def test_a_phone_too_short_to_search_by_is_refused_in_the_staff_members_language(
    signed_in: Callable[..., Console],
) -> None:
    page = search(signed_in("dispatcher"), phone="13")
    assert "请至少输入电话号码的 4 位数字。" in page
    assert 'id="search-results"' not in page


def test_a_department_searches_only_its_own_cases_and_sees_numbers_masked(
    signed_in: Callable[..., Console], database: Database
) -> None:
    phone = unique_phone()
    with database.session() as session, session.begin():
        code = make_department(session)
        own = make_case(session, department_code=code, caller_number=phone).number
        elsewhere = make_case(session, caller_number=phone).number
    clerk = signed_in("department", code)
    page = search(clerk, phone=phone)
    assert found_numbers(page) == [own]
    assert elsewhere not in page
    results = page[page.index('id="search-results"') :]
    assert phone not in results  # only in the box the clerk typed it into
    assert "*" * (len(phone) - 4) + phone[-4:] in results
    # Nor may a department export: its list is its inbox.
    export = clerk.get("/console/search/export.csv", query_string={"phone": phone})
    assert export.status_code == 403
    assert phone not in export.get_data(as_text=True)


def test_words_are_found_in_the_transcript_report_and_address_and_filters_narrow(
    signed_in: Callable[..., Console], database: Database
) -> None:
    marker = f"柳荫街{uuid.uuid4().int % 10_000}号"
    with database.session() as session, session.begin():
        spoken = make_case(session, text=f"{marker}的路灯不亮了")
        written = make_case(session, category_code="noise_pollution", department_code="environment")
        written.report_text = f"{marker}施工噪音"
        addressed = make_case(session)
        addressed.address = f"曲阜市{marker}"
        resolved = make_case(session, text=f"{marker}井盖")
        resolved.status = CaseStatus.RESOLVED
        numbers = [spoken.number, written.number, addressed.number, resolved.number]
    desk = signed_in("dispatcher")
    assert set(found_numbers(search(desk, text=marker))) == set(numbers)
    assert found_numbers(search(desk, text=marker, category="noise_pollution")) == [numbers[1]]
    assert found_numbers(search(desk, text=marker, department="environment")) == [numbers[1]]
    assert found_numbers(search(desk, text=marker, status="resolved")) == [numbers[3]]
    assert numbers[3] not in found_numbers(search(desk, text=marker, status="active"))
    # A % or _ is a character to find, not a pattern that matches every case.
    assert not set(numbers) & set(found_numbers(search(desk, text=f"{marker}%")))


def test_a_search_by_number_and_by_the_days_opened_on_the_citys_clock(
    signed_in: Callable[..., Console], database: Database
) -> None:
    phone = unique_phone()
    with database.session() as session, session.begin():
        # 23:30 on 1 March in Beijing time is still 1 March there, though 15:30 UTC.
        late = make_case(
            session, caller_number=phone, opened_at=datetime(2026, 3, 1, 15, 30, tzinfo=UTC)
        )
        next_day = make_case(
            session, caller_number=phone, opened_at=datetime(2026, 3, 1, 16, 30, tzinfo=UTC)
        )
        late_number, next_number = late.number, next_day.number
    desk = signed_in("dispatcher")
    assert found_numbers(search(desk, number=late_number)) == [late_number]
    assert found_numbers(
        search(desk, phone=phone, opened_from="2026-03-01", opened_to="2026-03-01")
    ) == [late_number]
    assert found_numbers(search(desk, phone=phone, opened_from="2026-03-02")) == [next_number]
    refused = search(desk, opened_from="2026-03-02", opened_to="2026-03-01")
    assert "最后一天早于第一天。" in refused


def test_the_desk_exports_a_search_as_csv_and_xlsx_in_chinese_with_formulas_made_text(
    signed_in: Callable[..., Console], database: Database
) -> None:
    phone = unique_phone()
    with database.session() as session, session.begin():
        case = make_case(session, caller_number=phone)
        case.report_text = '=HYPERLINK("http://example.invalid")路灯坏了'
        number = case.number
    desk = signed_in("dispatcher")

    response = desk.get("/console/search/export.csv", query_string={"phone": phone})
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment;")
    body = response.get_data()
    assert body.startswith("\ufeff".encode())  # Excel reads UTF-8 Chinese only with the mark
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0][:3] == ["工单号", "受理时间", "状态"]
    assert [row[0] for row in rows[1:]] == [number]
    assert rows[1][7] == phone
    assert rows[1][10].startswith("'=HYPERLINK")  # the caller's words, after the work order

    response = desk.get("/console/search/export.xlsx", query_string={"phone": phone})
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.get_data())).active
    assert sheet is not None
    cells: list[Any] = [cell.value for cell in sheet[2]]
    assert cells[0] == number
    assert cells[10].startswith("=HYPERLINK")
    assert sheet.cell(row=2, column=11).data_type == "s"  # text, not a formula


def test_the_case_page_lists_the_callers_other_cases_the_reader_may_see(
    signed_in: Callable[..., Console], database: Database
) -> None:
    phone = unique_phone()
    with database.session() as session, session.begin():
        code = make_department(session)
        earlier = make_case(session, caller_number=phone, text="上周反映的路灯问题")
        elsewhere = make_case(session, department_code=code, caller_number=phone)
        this = make_case(session, department_code=code, caller_number=phone)
        numbers = earlier.number, elsewhere.number, this.number
    desk_page = signed_in("dispatcher").get(f"/console/cases/{numbers[2]}").get_data(as_text=True)
    section = desk_page[desk_page.index('id="caller-cases"') :]
    assert f'id="caller-case-{numbers[0]}"' in section
    assert f'id="caller-case-{numbers[1]}"' in section
    assert f'id="caller-case-{numbers[2]}"' not in section  # not the case itself
    assert "上周反映的路灯问题" in section
    # The department sees only what it may: its own other case, not the desk's list.
    clerk_page = signed_in("department", code).get(f"/console/cases/{numbers[2]}")
    clerk_section = clerk_page.get_data(as_text=True)
    assert f'id="caller-case-{numbers[1]}"' in clerk_section
    assert f'id="caller-case-{numbers[0]}"' not in clerk_section
