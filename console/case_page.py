"""The case page and the forms of the actions it offers: the same forms, refilled with what
was posted, when an action is refused."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import render_template
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import Session

from cases import callbacks, lifecycle
from cases.attachments import REPLY
from cases.clock import display_light
from cases.models import (
    WRITTEN_INTAKES,
    Attachment,
    Case,
    CaseStatus,
    Channel,
    Intake,
    utcnow,
)
from cases.privacy import mask_number
from cases.search import callers_other_cases
from cases.timeline import last_event
from console import forms
from console.blueprint import actor
from console.case_knowledge import shown_article
from console.presenters import (
    INTAKE_LABELS,
    NamedDirectory,
    delivery_labels,
    event_details,
    event_label,
    only_logged,
    problem_text,
    shows_full_number,
    suggestion,
)
from console.seat_labels import CALLBACK_STATUS_LABELS
from hotline.web import session_locale
from knowledge.store import may_edit as may_edit_knowledge
from routing.decide import TRIAGE_CATEGORY


def directory_now(session: Session) -> NamedDirectory:
    """The directory as the database holds it now, named in the page's language."""
    return NamedDirectory.read(session, locale=session_locale())


def transfer_form(directory: NamedDirectory, case: Case, **kwargs: Any) -> forms.TransferForm:
    form = forms.TransferForm(**kwargs)
    form.department.choices = forms.choices(
        [
            ("", _("Choose a department")),
            *[c for c in directory.handling_departments() if c[0] != case.department_code],
        ]
    )
    return form


def triage_form(directory: NamedDirectory, case: Case, **kwargs: Any) -> forms.TriageForm:
    if kwargs.get("formdata", True) is None:
        # A fresh form starts from the classifier's best guess that names a real matter:
        # "other" is where it puts what it cannot place, so its runner-up is the better start.
        top = [code for code, _p in suggestion(case)["top"] if code != TRIAGE_CATEGORY]
        kwargs.setdefault("category", top[0] if top else (case.routing or {}).get("category"))
        kwargs.setdefault("urgency", case.urgency or "normal")
    form = forms.TriageForm(**kwargs)
    form.category.choices = forms.choices(
        [("", _("Choose a category")), *directory.category_choices()]
    )
    form.department.choices = forms.choices(
        [("", _("The category's department")), *directory.handling_departments()]
    )
    return form


def work_order_form(case: Case, **kwargs: Any) -> forms.WorkOrderForm:
    if kwargs.get("formdata", True) is None:
        # The desk starts from what is written already: its own work order, else the
        # caller's words as the machine heard them (or as they wrote them).
        kwargs.setdefault("text", problem_text(case))
    return forms.WorkOrderForm(**kwargs)


def assist_form(directory: NamedDirectory, case: Case, **kwargs: Any) -> forms.AddAssistForm:
    form = forms.AddAssistForm(**kwargs)
    taken = {case.department_code, *(assist.department_code for assist in case.assists)}
    form.department.choices = forms.choices(
        [
            ("", _("Choose a department")),
            *[pair for pair in directory.handling_departments() if pair[0] not in taken],
        ]
    )
    return form


def ruling_form(directory: NamedDirectory, **kwargs: Any) -> forms.RulingForm:
    form = forms.RulingForm(**kwargs)
    # No default: a ruling names its department on purpose.
    form.department.choices = forms.choices(
        [("", _("Choose a department")), *directory.handling_departments()]
    )
    form.category.choices = forms.choices(
        [("", _("Keep the case's category")), *directory.category_choices()]
    )
    return form


# The caller's other cases on a case page: the latest few, and a search for the rest.
CALLER_CASES_SHOWN = 10

FormFactory = Callable[..., FlaskForm]
FORM_FACTORIES: dict[str, Callable[[NamedDirectory, Case], FormFactory]] = {
    "accept": lambda d, c: forms.AcceptForm,
    "note": lambda d, c: forms.NoteForm,
    "work_order": lambda d, c: lambda **kw: work_order_form(c, **kw),
    "request_extension": lambda d, c: forms.RequestExtensionForm,
    "add_assist": lambda d, c: lambda **kw: assist_form(d, c, **kw),
    "assist_reply": lambda d, c: forms.AssistReplyForm,
    "decide_extension": lambda d, c: forms.DecideExtensionForm,
    "transfer": lambda d, c: lambda **kw: transfer_form(d, c, **kw),
    "send_back": lambda d, c: forms.SendBackForm,
    "resolve": lambda d, c: forms.ResolveForm,
    "triage": lambda d, c: lambda **kw: triage_form(d, c, **kw),
    "ruling": lambda d, c: lambda **kw: ruling_form(d, **kw),
    "escalate": lambda d, c: forms.EscalateForm,
    "supervise": lambda d, c: forms.SuperviseForm,
    "answer_at_once": lambda d, c: forms.AnswerAtOnceForm,
    "answer_by_desk": lambda d, c: forms.AnswerByDeskForm,
    "call_back": lambda d, c: forms.AskForCallBackForm,
    "merge": lambda d, c: forms.MergeForm,
    "split": lambda d, c: forms.SplitForm,
}


@dataclass(frozen=True)
class CoReporter:
    """A report merged into the case (并单), as the case page lists it: its own number, how
    and when it came in, and its reporter's number as this staff member may see it."""

    number: str
    intake: str
    opened_at: datetime
    reporter_number: str | None


def co_reporters(case: Case, *, full_number: bool) -> list[CoReporter]:
    """The reports merged into the case, oldest first; numbers masked unless `full_number`."""
    return [
        CoReporter(
            number=report.number,
            intake=str(INTAKE_LABELS.get(Intake(report.intake), report.intake)),
            opened_at=report.opened_at,
            reporter_number=(
                report.caller_number if full_number else mask_number(report.caller_number)
            ),
        )
        for report in sorted(case.co_reporters, key=lambda report: (report.opened_at, report.id))
    ]


def attachments_of(session: Session, case: Case) -> list[Attachment]:
    """The case's files, in the order they came: the reporter's photos, and what departments
    attached to their replies (kind REPLY)."""
    return list(
        session.scalars(
            select(Attachment).where(Attachment.case_id == case.id).order_by(Attachment.id)
        )
    )


def render_case(
    session: Session,
    case: Case,
    *,
    posted: tuple[str, FlaskForm] | None = None,
    error: str | None = None,
    status: int = 200,
) -> tuple[str, int]:
    """The case page; `posted` is a refused action's form, shown again with its input."""
    who = actor()
    directory = directory_now(session)
    allowed = lifecycle.allowed_actions(who, case)
    action_forms: dict[str, FlaskForm] = {
        name: FORM_FACTORIES[name](directory, case)(formdata=None) for name in sorted(allowed)
    }
    if posted is not None:
        action_forms[posted[0]] = posted[1]
    full_number = shows_full_number(who)
    files = attachments_of(session, case)
    caller_number = case.caller_number if full_number else mask_number(case.caller_number)
    deliveries = [
        {
            "delivery": delivery,
            "labels": delivery_labels(delivery),
            "only_logged": only_logged(delivery),
            "address": (
                delivery.address
                if full_number or delivery.channel != Channel.CALLER_SMS
                else mask_number(delivery.address)
            ),
        }
        for delivery in case.deliveries
    ]
    timeline = [
        (event, event_label(event), event_details(event, directory)) for event in case.events
    ]
    page = render_template(
        "console/case.html",
        case=case,
        light=display_light(case, now=utcnow()),
        directory=directory,
        caller_number=caller_number,
        recordings=case.recordings,
        suggestion=suggestion(case),
        timeline=timeline,
        deliveries=deliveries,
        # 并单 and written reports (issue 15).
        intake_label=INTAKE_LABELS.get(Intake(case.intake), case.intake),
        written=case.intake in WRITTEN_INTAKES,
        co_reporters=co_reporters(case, full_number=full_number),
        caller_cases=list(
            session.scalars(callers_other_cases(who, case).limit(CALLER_CASES_SHOWN))
        ),
        caller_cases_shown=CALLER_CASES_SHOWN,
        # A link that searches by the number would show it whole in the address bar.
        caller_search_phone=case.caller_number if full_number else None,
        attachments=[a for a in files if a.kind != REPLY],
        reply_files=[a for a in files if a.kind == REPLY],
        # 回拨: the desk and supervisors see the caller's call back and link to its task.
        callback=callbacks.task_of_case(session, case=case) if who.supervises else None,
        callback_status_labels=CALLBACK_STATUS_LABELS,
        forms=action_forms,
        error=error,
        failed_action=posted[0] if posted and error else None,
        sent_back=last_event(case, "sent_back") if case.status == CaseStatus.SENT_BACK else None,
        article=shown_article(session, case),
        # The desk may turn a resolved case's answer into a knowledge-base article.
        may_make_article=(
            may_edit_knowledge(who)
            and case.status in (CaseStatus.RESOLVED, CaseStatus.CLOSED)
            and bool(case.resolution)
        ),
    )
    return page, status
