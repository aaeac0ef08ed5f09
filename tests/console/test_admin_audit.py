"""Administration: a one-time password-reset link an administrator passes on, and the audit
log of every change administrators make to the set-up."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select, update

from cases.models import AdminEvent, Category, User, utcnow
from hotline.db import Database
from tests.support.staff import Account, Console

NEW_PASSWORD = "a-new-and-long-password"


def reset_link(admin: Console, user_id: int) -> str:
    page = admin.post(f"/console/admin/staff/{user_id}/reset-link")
    assert page.status_code == 200
    assert "no-store" in page.headers["Cache-Control"]  # the link is not cached anywhere
    found = re.search(
        r'id="reset-link"[^>]*>https?://[^/]+(/console/reset/[^<]+)<', page.get_data(as_text=True)
    )
    assert found
    return found.group(1)


def test_a_reset_link_sets_a_new_password_once_and_ends_the_old_sessions(
    signed_in: Callable[..., Console],
    console: Callable[[], Console],
    make_account: Callable[..., Account],
    database: Database,
) -> None:
    owner = signed_in("dispatcher")  # signed in somewhere with the old password
    admin = signed_in("admin")
    link = reset_link(admin, owner.account.id)

    visitor = console()
    assert visitor.get(link).status_code == 200
    differ = visitor.post(link, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD + "x"})
    assert differ.status_code == 400 and "两次输入的密码不一致" in differ.get_data(as_text=True)
    short = visitor.post(link, {"password": "short", "confirm": "short"})
    assert short.status_code == 400
    done = visitor.post(link, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.status_code == 302 and done.location.endswith("/console/login")

    # Used once: the link opens nothing again, and says so in Chinese.
    again = visitor.get(link)
    assert again.status_code == 404 and "此链接已失效" in again.get_data(as_text=True)
    # The old session ended; the old password no longer works, the new one does.
    assert owner.get("/console/").status_code == 302
    assert console().sign_in(owner.account).status_code == 200  # the form again, refused
    assert console().sign_in(owner.account, password=NEW_PASSWORD).status_code == 302


def test_an_expired_or_replaced_link_opens_nothing(
    signed_in: Callable[..., Console], console: Callable[[], Console], database: Database
) -> None:
    owner = signed_in("department", "water")
    admin = signed_in("admin")
    first = reset_link(admin, owner.account.id)
    second = reset_link(admin, owner.account.id)
    assert console().get(first).status_code == 404  # replaced by the second
    with database.session() as session, session.begin():
        session.execute(
            update(User)
            .where(User.id == owner.account.id)
            .values(reset_expires_at=utcnow() - timedelta(seconds=1))
        )
    assert console().get(second).status_code == 404  # expired
    assert console().get("/console/reset/not-a-token").status_code == 404
    assert owner.get("/console/").status_code == 200  # nothing happened to the account


def test_the_audit_log_names_who_changed_what_in_chinese_and_only_admins_read_it(
    signed_in: Callable[..., Console], database: Database
) -> None:
    admin = signed_in("admin")
    target = signed_in("supervisor")
    with database.session() as session:
        category = session.get_one(Category, "streetlight")
        before = {
            "limit-hours": str(category.time_limit_hours or ""),
            "limit-working_days": str(category.time_limit_working_days or ""),
        }
    changed = {"limit-hours": "48", "limit-working_days": ""}
    assert admin.post("/console/admin/time-limits/streetlight", changed).status_code == 302
    reset_link(admin, target.account.id)
    admin.post(f"/console/admin/staff/{target.account.id}/deactivate")

    with database.session() as session:
        mine = session.scalars(
            select(AdminEvent).where(AdminEvent.actor == admin.account.username)
        ).all()
        assert [event.action for event in mine] == ["time_limit", "reset_link", "user_deactivated"]
        # No secret is written to the log.
        assert all("token" not in str(event.data) for event in mine)

    page = admin.get("/console/admin/audit").get_data(as_text=True)
    assert "分类时限已修改" in page and "路灯" in page and "48 小时" in page
    assert "已生成密码重置链接" in page and "账号已停用" in page
    assert target.account.username in page
    for role in ("dispatcher", "supervisor"):
        assert signed_in(role).get("/console/admin/audit").status_code == 403
    # The session's other tests route street lights with the limit they expect.
    assert admin.post("/console/admin/time-limits/streetlight", before).status_code == 302
