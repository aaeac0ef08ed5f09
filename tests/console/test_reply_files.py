"""答复附件: a department attaches a photo of the work done, or a PDF, to its reply; checked by
its bytes and stored like a reporter's photo; anything else is refused in Chinese and the case
is not resolved."""

from __future__ import annotations

import io
import re
from collections.abc import Callable

from sqlalchemy import select

from cases.models import Attachment, Case, CaseStatus
from hotline.db import Database
from tests.support.factories import make_case
from tests.support.receivers import make_department
from tests.support.staff import Console

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def test_a_reply_carries_a_pdf_that_those_who_see_the_case_can_open(
    signed_in: Callable[..., Console], database: Database
) -> None:
    with database.session() as session, session.begin():
        code = make_department(session)
        number = make_case(session, department_code=code).number
    clerk = signed_in("department", code)
    response = clerk.post(
        f"/console/cases/{number}/resolve",
        {
            "resolve-reply": "已维修，见验收单。",
            "resolve-attachment": (io.BytesIO(PDF), "验收单.pdf"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    with database.session() as session:
        case = session.scalars(select(Case).where(Case.number == number)).one()
        assert case.status == CaseStatus.RESOLVED
        files = session.scalars(select(Attachment).where(Attachment.case_id == case.id)).all()
        assert [(f.kind, f.content_type, f.size) for f in files] == [
            ("reply", "application/pdf", len(PDF))
        ]
    desk = signed_in("dispatcher")
    page = desk.get(f"/console/cases/{number}").get_data(as_text=True)
    href = re.search(r'<dd id="reply-files">.*?href="([^"]+)"[^>]*>([^<]+)<', page, re.S)
    assert href and href.group(2) == "文档（PDF）"
    with desk.get(href.group(1).replace("&amp;", "&")) as opened:
        assert opened.status_code == 200 and opened.get_data() == PDF
        assert opened.mimetype == "application/pdf"


def test_a_file_that_is_neither_photo_nor_pdf_is_refused_and_the_case_stays_open(
    signed_in: Callable[..., Console], database: Database
) -> None:
    with database.session() as session, session.begin():
        code = make_department(session)
        number = make_case(session, department_code=code).number
    clerk = signed_in("department", code)
    response = clerk.post(
        f"/console/cases/{number}/resolve",
        {"resolve-reply": "已处理", "resolve-attachment": (io.BytesIO(b"MZ\x90\x00"), "a.pdf")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert "请附上照片（JPEG、PNG、WebP）或 PDF 文档。" in response.get_data(as_text=True)
    with database.session() as session:
        case = session.scalars(select(Case).where(Case.number == number)).one()
        assert case.status != CaseStatus.RESOLVED and case.resolution is None
        assert not session.scalars(select(Attachment).where(Attachment.case_id == case.id)).all()
