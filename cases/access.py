"""Who may see and do what: the rules live in the queries, not only in the templates."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, exists, false, or_, select, true
from sqlalchemy.orm import Session

from cases import numbers
from cases.errors import NotAllowedError, UnknownCaseError
from cases.models import Case, CaseAssist, Role

DISPATCH_DESK = "hotline_office"
LEADERSHIP = "leadership"


@dataclass(frozen=True)
class Actor:
    """Someone acting on cases: a signed-in staff member, or a department's own system by API
    key (role DEPARTMENT, no user). `name` goes into the audit trail."""

    name: str
    role: Role
    department_code: str | None = None

    @property
    def is_desk(self) -> bool:
        """Dispatchers, and the desk's own staff, run triage and rule on send-backs."""
        return self.role in (Role.DISPATCHER, Role.ADMIN) or (
            self.role == Role.DEPARTMENT and self.department_code == DISPATCH_DESK
        )

    @property
    def supervises(self) -> bool:
        """The desk and supervisors escalate cases and issue supervision notices (督办)."""
        return self.is_desk or self.role == Role.SUPERVISOR

    @property
    def sees_everything(self) -> bool:
        """The desk, supervisors and admins see every case."""
        return self.supervises


SYSTEM = Actor(name="system", role=Role.ADMIN)


def visibility(actor: Actor) -> ColumnElement[bool]:
    """The WHERE clause that limits cases to those the actor may see.

    Department staff see the cases in their inbox, the ones they stay first-responsible for and
    the ones they assist with (协办);
    leadership also sees what was escalated or copied to it as major. Operators see the cases
    they opened at their seat (the caller's earlier cases are shown on the call, not here).
    """
    if actor.sees_everything:
        return true()
    if actor.role == Role.OPERATOR:
        return Case.owner == actor.name
    if actor.role != Role.DEPARTMENT or actor.department_code is None:
        return false()
    own = or_(
        Case.department_code == actor.department_code,
        Case.responsible_department_code == actor.department_code,
        # 协办: a department assisting with the case sees it, to do its part.
        exists().where(
            CaseAssist.case_id == Case.id, CaseAssist.department_code == actor.department_code
        ),
    )
    if actor.department_code == LEADERSHIP:
        return or_(own, Case.escalated_at.is_not(None), Case.major)
    return own


def visible_cases(actor: Actor) -> Select[Case]:
    """SELECT of the cases the actor may see; add ordering and filters to it."""
    return select(Case).where(visibility(actor))


def get_visible_case(
    session: Session, *, actor: Actor, number: str, for_update: bool = False
) -> Case:
    """The case with this number if the actor may see it; otherwise UnknownCaseError, so that
    someone from another department cannot even learn that the number exists.

    `for_update` locks the row until the transaction ends: an action reads the state it
    changes, and two actions at once (a click and the department's API) must take turns.
    """
    if not numbers.could_be_a_case_number(number):
        raise UnknownCaseError(number)
    query = visible_cases(actor).where(Case.number == number)
    if for_update:
        query = query.with_for_update()
    case = session.scalars(query).one_or_none()
    if case is None:
        raise UnknownCaseError(number)
    return case


def require(condition: bool, message: str) -> None:
    """Raise NotAllowedError unless the condition holds."""
    if not condition:
        raise NotAllowedError(message)


def holds_case(actor: Actor, case: Case) -> bool:
    """Whether the actor's department currently has the case in its inbox. Admins run the
    system; they do not work cases in a department's name."""
    return actor.role == Role.DEPARTMENT and actor.department_code == case.department_code
