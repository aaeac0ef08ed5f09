"""Administration in the console: departments and how each receives its cases, staff
accounts, and each category's time limit. Administrators only."""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from cases import audit, staff
from cases.access import Actor, require
from cases.errors import InvalidInputError
from cases.models import Category, Department, Role, User, utcnow
from console import forms
from console.auth import no_store, sign_in_policy
from console.blueprint import PAGE_SIZE, actor, bp, error_page, page_argument, refusal_text
from console.case_page import directory_now
from console.presenters import (
    AUDIT_ACCOUNT_ACTIONS,
    AUDIT_LABELS,
    ROLE_LABELS,
    NamedDirectory,
    audit_details,
    audit_target,
)
from hotline.web import session_locale
from hotline.wiring import db

log = logging.getLogger("hotline.console")


def _require_admin() -> Actor:
    who = actor()
    require(who.role == Role.ADMIN, _("Only administrators manage the hotline's set-up"))
    return who


def _channels_form(department: Department, **kwargs: Any) -> forms.ChannelsForm:
    if kwargs.get("formdata", True) is None:
        kwargs.setdefault("webhook_url", department.webhook_url)
        kwargs.setdefault("email", department.email)
        kwargs.setdefault("sms_number", department.sms_number)
    return forms.ChannelsForm(**kwargs)


def _departments_page(
    session: Session,
    *,
    posted: tuple[str, forms.ChannelsForm] | None = None,
    error: str | None = None,
    status: int = 200,
) -> tuple[str, int]:
    directory = directory_now(session)
    entries = []
    for code, department in directory.departments.items():
        if posted and posted[0] == code:
            entries.append((department, posted[1]))
        else:
            entries.append((department, _channels_form(department, formdata=None)))
    page = render_template(
        "console/admin_departments.html",
        entries=entries,
        directory=directory,
        api_key_form=forms.ApiKeyForm(formdata=None),
        error=error,
        failed_code=posted[0] if posted else None,
    )
    return page, status


@bp.get("/admin/departments")
def admin_departments() -> tuple[str, int]:
    """Departments and how each receives its cases."""
    _require_admin()
    session = db()
    with session.begin():
        return _departments_page(session)


@bp.post("/admin/departments/<code>/channels")
def admin_department_channels(code: str) -> Response | tuple[str, int]:
    """Set a department's webhook, e-mail and SMS channels (validated)."""
    who = _require_admin()
    try:
        session = db()
        with session.begin():
            department = session.get(Department, code)
            if department is None:
                raise NotFound()
            form = _channels_form(department)
            if not form.validate_on_submit():
                return _departments_page(session, posted=(code, form), status=400)
            staff.set_department_channels(
                session,
                code=code,
                webhook_url=(form.webhook_url.data or "").strip(),
                # An empty secret field keeps the secret: it is never sent back to the page.
                webhook_secret=form.webhook_secret.data or None,
                email=(form.email.data or "").strip(),
                sms_number=(form.sms_number.data or "").strip(),
            )
            channels = sorted(str(channel) for channel in department.channels())
            audit.record(session, actor=who.name, action="channels", target=code, channels=channels)
    except InvalidInputError as error:
        session = db()
        with session.begin():
            return _departments_page(
                session, posted=(code, form), error=refusal_text(error), status=400
            )
    log.info(
        "department channels set",
        extra={"department": code, "channels": ",".join(channels), "username": who.name},
    )
    flash(_("Channels saved."), "success")
    return redirect(url_for(".admin_departments") + f"#department-{code}")


@bp.post("/admin/departments/<code>/api-key")
def admin_department_api_key(code: str) -> Response | tuple[str, int]:
    """Issue a new API key and show it once; the earlier key stops working."""
    who = _require_admin()
    form = forms.ApiKeyForm()
    if not form.validate_on_submit():
        return error_page(_("The form could not be read; try again."), 400)
    session = db()
    with session.begin():
        department = session.get(Department, code)
        if department is None:
            raise NotFound()
        key = staff.issue_api_key(session, code=code)
        audit.record(session, actor=who.name, action="api_key", target=code)
        name = department.name(session_locale())
    log.info("API key issued", extra={"department": code, "username": who.name})
    response = current_app.make_response(
        render_template("console/api_key.html", code=code, name=name, key=key)
    )
    return no_store(response)


def _staff_page(
    session: Session,
    *,
    form: forms.AddUserForm | None = None,
    error: str | None = None,
    status: int = 200,
) -> tuple[str, int]:
    directory = directory_now(session)
    users = list(session.scalars(select(User).order_by(User.role, User.username)))
    page = render_template(
        "console/admin_staff.html",
        users=users,
        paused=staff.paused_accounts(session, policy=sign_in_policy(), now=utcnow()),
        directory=directory,
        form=form or _add_user_form(directory, formdata=None),
        active_form=forms.UserActiveForm(formdata=None),
        role_labels=ROLE_LABELS,
        error=error,
    )
    return page, status


def _add_user_form(directory: NamedDirectory, **kwargs: Any) -> forms.AddUserForm:
    form = forms.AddUserForm(**kwargs)
    form.role.choices = forms.choices((str(role), label) for role, label in ROLE_LABELS.items())
    form.department.choices = forms.choices(
        [
            ("", _("None")),
            *[(code, directory.department_name(code)) for code in directory.departments],
        ]
    )
    return form


@bp.get("/admin/staff")
def admin_staff() -> tuple[str, int]:
    """Staff accounts."""
    _require_admin()
    session = db()
    with session.begin():
        return _staff_page(session)


@bp.post("/admin/staff")
def admin_add_user() -> Response | tuple[str, int]:
    """Add a staff account (the password is hashed by cases.staff)."""
    who = _require_admin()
    try:
        session = db()
        with session.begin():
            form = _add_user_form(directory_now(session))
            if not form.validate_on_submit():
                return _staff_page(session, form=form, status=400)
            user = staff.add_user(
                session,
                username=form.username.data or "",
                password=form.password.data or "",
                role=form.role.data,
                department_code=form.department.data or None,
            )
            username = user.username
            audit.record(
                session,
                actor=who.name,
                action="user_added",
                target=username,
                role=str(user.role),
                department=user.department_code,
            )
    except InvalidInputError as error:
        session = db()
        with session.begin():
            return _staff_page(session, form=form, error=refusal_text(error), status=400)
    log.info(
        "staff account added",
        extra={"account": username, "role": form.role.data, "username": who.name},
    )
    flash(_("Account %(username)s added.", username=username), "success")
    return redirect(url_for(".admin_staff"))


def _set_active(user_id: int, active: bool) -> Response | tuple[str, int]:
    who = _require_admin()
    form = forms.UserActiveForm()
    if not form.validate_on_submit():
        return error_page(_("The form could not be read; try again."), 400)
    session = db()
    try:
        with session.begin():
            user = session.get(User, user_id)
            if user is None:
                raise NotFound()
            staff.set_active(session, actor=who, user=user, active=active)
            username = user.username
            action = "user_activated" if active else "user_deactivated"
            audit.record(session, actor=who.name, action=action, target=username)
    except InvalidInputError as error:
        with session.begin():
            return _staff_page(session, error=refusal_text(error), status=400)
    log.info(
        "staff account %s",
        "activated" if active else "deactivated",
        extra={"account": username, "username": who.name},
    )
    flash(
        _("Account %(username)s activated.", username=username)
        if active
        else _("Account %(username)s deactivated; it is signed out.", username=username),
        "success",
    )
    return redirect(url_for(".admin_staff"))


@bp.post("/admin/staff/<row_id:user_id>/deactivate")
def admin_deactivate_user(user_id: int) -> Response | tuple[str, int]:
    """Deactivate an account; its sessions end at their next request."""
    return _set_active(user_id, False)


@bp.post("/admin/staff/<row_id:user_id>/unlock")
def admin_unlock_user(user_id: int) -> Response | tuple[str, int]:
    """Lift the sign-in pauses on an account, from every address (its owner forgot the
    password, or someone guessed at it from the owner's office)."""
    who = _require_admin()
    form = forms.UserActiveForm()
    if not form.validate_on_submit():
        return error_page(_("The form could not be read; try again."), 400)
    session = db()
    with session.begin():
        user = session.get(User, user_id)
        if user is None:
            raise NotFound()
        forgotten = staff.unlock(session, user=user)
        username = user.username
        audit.record(
            session, actor=who.name, action="user_unlocked", target=username, failures=forgotten
        )
    log.info(
        "staff account unlocked",
        extra={"account": username, "failures": forgotten, "username": who.name},
    )
    flash(_("Account %(username)s unlocked: it can sign in again.", username=username), "success")
    return redirect(url_for(".admin_staff"))


@bp.post("/admin/staff/<row_id:user_id>/reset-link")
def admin_reset_link(user_id: int) -> Response | tuple[str, int]:
    """Make a one-time link that lets the account's owner set a new password, and show it
    once, to pass on by a channel the administrator trusts; an earlier link stops working."""
    who = _require_admin()
    form = forms.UserActiveForm()
    if not form.validate_on_submit():
        return error_page(_("The form could not be read; try again."), 400)
    session = db()
    with session.begin():
        user = session.get(User, user_id)
        if user is None or not user.active:
            raise NotFound()
        now = utcnow()
        token = staff.issue_reset_token(session, user=user, now=now)
        audit.record(session, actor=who.name, action="reset_link", target=user.username)
        username, expires_at = user.username, user.reset_expires_at
    log.info("password reset link issued", extra={"account": username, "username": who.name})
    link = url_for("auth.reset_password", token=token, _external=True)
    response = current_app.make_response(
        render_template(
            "console/reset_link.html", username=username, link=link, expires_at=expires_at
        )
    )
    return no_store(response)


@bp.get("/admin/audit")
def admin_audit() -> str:
    """The audit log: every change administrators made to the set-up, the latest first."""
    _require_admin()
    page = page_argument()
    session = db()
    with session.begin():
        rows = list(
            session.scalars(
                audit.newest_first().limit(PAGE_SIZE + 1).offset((page - 1) * PAGE_SIZE)
            )
        )
        return render_template(
            "console/admin_audit.html",
            audit_labels=AUDIT_LABELS,
            audit_account_actions=AUDIT_ACCOUNT_ACTIONS,
            audit_target=audit_target,
            audit_details=audit_details,
            events=rows[:PAGE_SIZE],
            more=len(rows) > PAGE_SIZE,
            page=page,
            directory=directory_now(session),
        )


@bp.post("/admin/staff/<row_id:user_id>/activate")
def admin_activate_user(user_id: int) -> Response | tuple[str, int]:
    """Reactivate an account."""
    return _set_active(user_id, True)


def _limit_text(hours: int | None, working_days: int | None) -> str:
    return f"{hours} h" if hours is not None else f"{working_days} working days"


def _time_limits_page(
    session: Session,
    *,
    posted: tuple[str, forms.TimeLimitForm] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    directory = directory_now(session)
    entries = []
    for code, category in directory.categories.items():
        if posted and posted[0] == code:
            form = posted[1]
        else:
            form = forms.TimeLimitForm(
                formdata=None,
                hours=category.time_limit_hours,
                working_days=category.time_limit_working_days,
            )
        entries.append((category, form))
    page = render_template(
        "console/admin_time_limits.html",
        entries=entries,
        directory=directory,
        failed_code=posted[0] if posted else None,
    )
    return page, status


@bp.get("/admin/time-limits")
def admin_time_limits() -> tuple[str, int]:
    """Each category's time limit."""
    _require_admin()
    session = db()
    with session.begin():
        return _time_limits_page(session)


@bp.post("/admin/time-limits/<code>")
def admin_set_time_limit(code: str) -> Response | tuple[str, int]:
    """Set a category's time limit: hours or working days, a positive whole number. New
    cases are routed with it; cases already open keep their deadline."""
    who = _require_admin()
    session = db()
    with session.begin():
        category = session.get(Category, code)
        if category is None:
            raise NotFound()
        form = forms.TimeLimitForm()
        if not form.validate_on_submit():
            return _time_limits_page(session, posted=(code, form), status=400)
        before = _limit_text(category.time_limit_hours, category.time_limit_working_days)
        before_hours, before_days = category.time_limit_hours, category.time_limit_working_days
        category.time_limit_hours = form.hours.data
        category.time_limit_working_days = form.working_days.data
        after = _limit_text(category.time_limit_hours, category.time_limit_working_days)
        audit.record(
            session,
            actor=who.name,
            action="time_limit",
            target=code,
            before_hours=before_hours,
            before_working_days=before_days,
            hours=category.time_limit_hours,
            working_days=category.time_limit_working_days,
        )
    # The record of who changed which limit, from what to what.
    log.info(
        "time limit changed",
        extra={"category": code, "before": before, "after": after, "username": who.name},
    )
    flash(_("Time limit saved."), "success")
    return redirect(url_for(".admin_time_limits") + f"#category-{code}")
