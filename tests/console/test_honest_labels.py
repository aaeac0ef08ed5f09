"""Staff read what happened, in their language: a message no service was set up to send is
"not sent (written to the log only)", never "delivered"."""

from __future__ import annotations

import re
from collections.abc import Callable

from cases import lifecycle, outbox
from cases.models import LOGGED_RECEIPT, utcnow
from delivery.services import record_delivered
from hotline.db import Database
from tests.support.factories import make_case
from tests.support.staff import Console


def test_a_text_only_written_to_the_log_is_not_shown_as_delivered(
    signed_in: Callable[..., Console], database: Database
) -> None:
    with database.session() as session, session.begin():
        case = make_case(session)
        logged = outbox.text_caller(session, case=case, message="accepted")
        sent = outbox.text_caller(session, case=case, message="resolved", reply="已修好")
        assert logged is not None and sent is not None
        session.flush()
        logged_id, sent_id, number = logged.id, sent.id, case.number
    with database.session() as session, session.begin():
        record_delivered(session, delivery_row_id=logged_id, receipt=LOGGED_RECEIPT, now=utcnow())
        # The other went out through Twilio, which gave its message SID.
        record_delivered(session, delivery_row_id=sent_id, receipt="SM" + "0" * 32, now=utcnow())

    page = signed_in("dispatcher").get(f"/console/cases/{number}").get_data(as_text=True)
    row = re.search(rf'<tr[^>]*id="delivery-{logged_id}".*?</tr>', page, re.S)
    assert row, page
    assert "未发送：未配置短信服务（仅记入日志）" in row.group(0)
    assert "已送达" not in row.group(0)
    assert "delivery-logged" in row.group(0)
    other = re.search(rf'<tr[^>]*id="delivery-{sent_id}".*?</tr>', page, re.S)
    assert other and "已送达" in other.group(0)  # a text that went out still says so
    # The timeline says the same of it.
    timeline = page[page.index('id="timeline"') :]
    assert "未发送：未配置短信服务（仅记入日志）" in timeline


def test_why_a_case_went_to_the_desk_is_said_for_people_and_the_detail_left_to_the_log(
    signed_in: Callable[..., Console], database: Database
) -> None:
    with database.session() as session, session.begin():
        case = make_case(session, triage=True)
        for reason in (
            "no speech model: zh-CN: none installed in /srv/models "
            "(set VOSK_MODEL_ZH_CN or run `flask --app hotline models install zh-CN`)",
            "webhook delivery to water (assigned) failed after 8 tries: HTTP 503",
            "通话结束后才从录音中听出紧急情况，来电人未被转接：请立即回拨来电人，并通报120",
        ):
            lifecycle.flag_for_review(session, case=case, reason=reason)
        number = case.number

    page = signed_in("dispatcher").get(f"/console/cases/{number}").get_data(as_text=True)
    shown = re.search(r'<dd id="case-review-reason">(.*?)</dd>', page, re.S)
    assert shown
    assert shown.group(1).split("；") == [
        "未安装来电人语言的语音模型：请收听录音",
        "有关本工单的消息未能送达：请查看发送记录",
        "通话结束后才从录音中听出紧急情况，来电人未被转接：请立即回拨来电人，并通报120",
    ]
    for developer_text in ("VOSK_MODEL_ZH_CN", "flask --app", "HTTP 503", "/srv/models"):
        assert developer_text not in page
