"""Case actions from the console: one transaction each, through `cases.lifecycle`, which
decides who may take which action in which state; a refused action shows the case page again
with the form as it was posted and the refusal in the staff member's language."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import flash, redirect, url_for
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from cases import attachments, knowledge_links, lifecycle, merging
from cases.access import Actor, get_visible_case
from cases.errors import N_, InvalidInputError, InvalidTransitionError
from cases.models import Case, utcnow
from console.auth import safe_next
from console.blueprint import actor, bp, refusal_text
from console.case_knowledge import attach_suggestion
from console.case_page import FORM_FACTORIES, directory_now, render_case
from hotline.wiring import current_wiring, db

log = logging.getLogger("hotline.console")


@dataclass(frozen=True)
class Action:
    """A case action: what it does and what the page says afterwards."""

    perform: Callable[[Session, Case, Any, Actor], None]
    done: Any  # a lazy message


def _accept(session: Session, case: Case, form: Any, who: Actor) -> None:
    lifecycle.accept(session, case=case, actor=who)


def _note(session: Session, case: Case, form: Any, who: Actor) -> None:
    lifecycle.add_note(session, case=case, actor=who, text=form.text.data)


def _transfer(session: Session, case: Case, form: Any, who: Actor) -> None:
    lifecycle.transfer(
        session,
        case=case,
        actor=who,
        department_code=form.department.data,
        reason=form.reason.data,
    )


def _send_back(session: Session, case: Case, form: Any, who: Actor) -> None:
    lifecycle.send_back(session, case=case, actor=who, reason=form.reason.data)


def _work_order(session: Session, case: Case, form: Any, who: Actor) -> None:
    lifecycle.write_work_order(session, case=case, actor=who, text=form.text.data)


def _request_extension(session: Session, case: Case, form: Any, who: Actor) -> None:
    # Counted from the deadline that stands (or from now, for a case already overdue): more
    # working days on top of those given.
    start = max(case.deadline_at, utcnow()) if case.deadline_at else utcnow()
    until = current_wiring().router.extended_deadline(start, working_days=form.working_days.data)
    lifecycle.request_extension(session, case=case, actor=who, until=until, reason=form.reason.data)


def _decide_extension(session: Session, case: Case, form: Any, who: Actor) -> None:
    approve = form.decision.data == "approve"
    lifecycle.decide_extension(session, case=case, actor=who, approve=approve, note=form.note.data)


def _add_assist(session: Session, case: Case, form: Any, who: Actor) -> None:
    lifecycle.add_assist(
        session, case=case, actor=who, department_code=form.department.data, task=form.task.data
    )


def _assist_reply(session: Session, case: Case, form: Any, who: Actor) -> None:
    lifecycle.reply_for_assist(session, case=case, actor=who, reply=form.reply.data)


# Why a reply's attachment was refused, in the staff member's language (cases.errors.N_: the
# refusal is translated where it is shown).
REPLY_FILE_REFUSALS = {
    "empty": N_("The attached file is empty."),
    "too_big": N_("The attached file is too large."),
    "type": N_("Attach a photo (JPEG, PNG, WebP) or a PDF document."),
}


def _resolve(session: Session, case: Case, form: Any, who: Actor) -> None:
    lifecycle.resolve(session, case=case, actor=who, reply=form.reply.data)
    upload = form.attachment.data
    data = upload.read() if upload else b""
    if data:
        settings = current_wiring().settings
        try:
            checked = attachments.check_reply_file(data, max_bytes=settings.photo_max_bytes)
        except attachments.PhotoRejectedError as error:
            # Raised inside the action's transaction: the case is not resolved either.
            raise InvalidInputError(REPLY_FILE_REFUSALS[error.reason]) from error
        attachments.store_photo(
            session,
            case=case,
            photo=checked,
            media_dir=settings.media_dir,
            now=utcnow(),
            kind=attachments.REPLY,
        )


def _triage(session: Session, case: Case, form: Any, who: Actor) -> None:
    category = lifecycle.get_category(session, form.category.data)
    department_code = form.department.data or category.department_code
    deadline_at = current_wiring().router.deadline_for(
        category=category, urgency=form.urgency.data, start=utcnow()
    )
    lifecycle.triage(
        session,
        case=case,
        actor=who,
        category_code=category.code,
        department_code=department_code,
        urgency=form.urgency.data,
        deadline_at=deadline_at,
        note=form.note.data,
    )
    # A consultation filed by the desk gets the knowledge base's suggestion, as one from a call.
    attach_suggestion(session, case)


def _rule(session: Session, case: Case, form: Any, who: Actor) -> None:
    category_code = form.category.data or None
    code = category_code or case.category_code
    deadline_at = None
    if code:
        category = lifecycle.get_category(session, code)
        # The department now assigned gets a fresh clock for the matter.
        deadline_at = current_wiring().router.deadline_for(
            category=category, urgency=case.urgency or "normal", start=utcnow()
        )
    lifecycle.rule_on_send_back(
        session,
        case=case,
        actor=who,
        department_code=form.department.data,
        ruling=form.ruling.data,
        deadline_at=deadline_at,
        category_code=category_code,
    )


def _escalate(session: Session, case: Case, form: Any, who: Actor) -> None:
    lifecycle.escalate(session, case=case, actor=who, reason=form.reason.data)


def _supervise(session: Session, case: Case, form: Any, who: Actor) -> None:
    lifecycle.supervise(session, case=case, actor=who, instruction=form.instruction.data)


def _answer_at_once(session: Session, case: Case, form: Any, who: Actor) -> None:
    # The button is offered only with an article attached (the transition's `needed`).
    knowledge_links.answer_at_once(session, case=case, article_id=case.article_id or "", actor=who)


def _answer_by_desk(session: Session, case: Case, form: Any, who: Actor) -> None:
    lifecycle.answer_by_desk(session, case=case, actor=who, reply=form.reply.data)


def _call_back(session: Session, case: Case, form: Any, who: Actor) -> None:
    lifecycle.ask_for_call_back(session, case=case, actor=who)


def _merge(session: Session, case: Case, form: Any, who: Actor) -> None:
    merging.merge_by_hand(session, case=case, into_number=form.into.data, actor=who)


def _split(session: Session, case: Case, form: Any, who: Actor) -> None:
    merging.split(session, case=case, actor=who)


ACTIONS: dict[str, Action] = {
    "accept": Action(_accept, _l("You have accepted the case; you are first-responsible.")),
    "note": Action(_note, _l("Note added.")),
    "work_order": Action(_work_order, _l("Work order saved.")),
    "add_assist": Action(
        _add_assist, _l("The department is asked to assist and is sent the case.")
    ),
    "assist_reply": Action(_assist_reply, _l("Your department's part is replied.")),
    "request_extension": Action(
        _request_extension, _l("More time asked for; the dispatch desk will rule on it.")
    ),
    "decide_extension": Action(
        _decide_extension, _l("Ruling on the request for more time recorded.")
    ),
    "transfer": Action(_transfer, _l("Case transferred.")),
    "send_back": Action(_send_back, _l("Case sent back to the dispatch desk.")),
    "resolve": Action(_resolve, _l("Case resolved; the caller will be told.")),
    "triage": Action(_triage, _l("Case triaged and assigned.")),
    "ruling": Action(_rule, _l("Ruling recorded; the case is assigned.")),
    "escalate": Action(_escalate, _l("Case escalated to leadership.")),
    "supervise": Action(_supervise, _l("Supervision notice sent.")),
    "answer_at_once": Action(_answer_at_once, _l("Answered at once; the case is closed.")),
    "answer_by_desk": Action(
        _answer_by_desk, _l("Answered; the caller is texted the answer and asked to rate it.")
    ),
    "call_back": Action(
        _call_back, _l("The caller will be called back: an operator takes the task at a seat.")
    ),
    "merge": Action(
        _merge,
        _l("Merged: this report's reporter now follows the case kept, and is told its outcome."),
    ),
    "split": Action(
        _split, _l("Split off: the report is a case of its own again and has been assigned.")
    ),
}


def act(number: str, name: str) -> Response | tuple[str, int]:
    """Run one case action in one transaction. Who may see the case is checked first (404),
    then who may act (403), then the form (400), then the lifecycle's own rules (403, or 400
    with nothing changed)."""
    who = actor()
    action = ACTIONS[name]
    session = db()
    try:
        with session.begin():
            case = get_visible_case(session, actor=who, number=number, for_update=True)
            # Before the form: a refusal is a 403, not a form error.
            lifecycle.check_actor(name, actor=who, case=case)
            form = FORM_FACTORIES[name](directory_now(session), case)()
            if not form.validate_on_submit():
                return render_case(session, case, posted=(name, form), status=400)
            action.perform(session, case, form, who)
    except (InvalidInputError, InvalidTransitionError) as error:
        # The transaction has rolled back; show the page as it stands, with the refusal.
        with session.begin():
            case = get_visible_case(session, actor=who, number=number)
            return render_case(
                session, case, posted=(name, form), error=refusal_text(error), status=400
            )
    log.info("case %s", name, extra={"case_number": number, "username": who.name})
    flash(str(action.done), "success")
    return redirect(safe_next(form.next.data) or url_for(".case_page", number=number))


@bp.post("/cases/<number>/accept")
def accept(number: str) -> Response | tuple[str, int]:
    """Accept the case (the department becomes first-responsible)."""
    return act(number, "accept")


@bp.post("/cases/<number>/note")
def note(number: str) -> Response | tuple[str, int]:
    """Add a note to the timeline."""
    return act(number, "note")


@bp.post("/cases/<number>/work-order")
def work_order(number: str) -> Response | tuple[str, int]:
    """Write or correct the case's work order (诉求内容)."""
    return act(number, "work_order")


@bp.post("/cases/<number>/extension")
def request_extension(number: str) -> Response | tuple[str, int]:
    """Ask the desk for a later deadline (延期申请)."""
    return act(number, "request_extension")


@bp.post("/cases/<number>/extension-ruling")
def decide_extension(number: str) -> Response | tuple[str, int]:
    """Approve or refuse the department's request for more time."""
    return act(number, "decide_extension")


@bp.post("/cases/<number>/assist")
def add_assist(number: str) -> Response | tuple[str, int]:
    """Ask another department to assist the holder with its own part (协办)."""
    return act(number, "add_assist")


@bp.post("/cases/<number>/assist-reply")
def assist_reply(number: str) -> Response | tuple[str, int]:
    """An assisting department's reply for its part."""
    return act(number, "assist_reply")


@bp.post("/cases/<number>/transfer")
def transfer(number: str) -> Response | tuple[str, int]:
    """Transfer the case to another department, with a reason."""
    return act(number, "transfer")


@bp.post("/cases/<number>/send-back")
def send_back(number: str) -> Response | tuple[str, int]:
    """Send the case back to the dispatch desk, with a reason."""
    return act(number, "send_back")


@bp.post("/cases/<number>/resolve")
def resolve(number: str) -> Response | tuple[str, int]:
    """Resolve the case with a reply to the caller."""
    return act(number, "resolve")


@bp.post("/cases/<number>/triage")
def triage(number: str) -> Response | tuple[str, int]:
    """Triage: category, department and urgency; the deadline follows from them."""
    return act(number, "triage")


@bp.post("/cases/<number>/ruling")
def ruling(number: str) -> Response | tuple[str, int]:
    """Rule on a send-back and assign the case."""
    return act(number, "ruling")


@bp.post("/cases/<number>/escalate")
def escalate(number: str) -> Response | tuple[str, int]:
    """Escalate the case to leadership."""
    return act(number, "escalate")


@bp.post("/cases/<number>/supervise")
def supervise(number: str) -> Response | tuple[str, int]:
    """Send a supervision notice to the department holding the case."""
    return act(number, "supervise")


@bp.post("/cases/<number>/answer-at-once")
def answer_at_once(number: str) -> Response | tuple[str, int]:
    """Close the case as answered at once with its attached article's answer (当即解答)."""
    return act(number, "answer_at_once")


@bp.post("/cases/<number>/desk-answer")
def answer_by_desk(number: str) -> Response | tuple[str, int]:
    """The desk answers the case itself (直接答复); the caller is texted the answer."""
    return act(number, "answer_by_desk")


@bp.post("/cases/<number>/call-back")
def call_back(number: str) -> Response | tuple[str, int]:
    """Have the case's caller called back about it (回拨), from an operator's seat."""
    return act(number, "call_back")


@bp.post("/cases/<number>/merge")
def merge(number: str) -> Response | tuple[str, int]:
    """并单 by hand: join the case to another about the same problem, the one kept."""
    return act(number, "merge")


@bp.post("/cases/<number>/split")
def split(number: str) -> Response | tuple[str, int]:
    """Undo a wrong merge: the report becomes a case of its own again."""
    return act(number, "split")
