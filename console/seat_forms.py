"""The seat page's forms (Flask-WTF, each with its CSRF token and its own prefix, so that
several share the page with distinct element ids): the phone that rings the operator, their
status, the case they write while the caller talks, the wrap-up code, the emergency transfer
and a callback."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateTimeLocalField, HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from cases.free_text import LINE, PROSE
from cases.seats import OPERATOR_CHOICES, OPERATOR_WRAP_UPS
from console.forms import URGENCY_LABELS, FreeText, choices
from console.seat_labels import SEAT_STATUS_LABELS, WRAP_UP_LABELS


class SeatAddressForm(FlaskForm):
    """The phone number or SIP address that rings the operator."""

    address = StringField(
        _l("Phone or SIP address that rings you"),
        validators=[DataRequired(), Length(max=120), FreeText(LINE)],
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "seat")
        super().__init__(*args, **kwargs)


class SeatStatusForm(FlaskForm):
    """The operator's own status: one button per choice, each posting its value."""

    status = SelectField(
        _l("Status"),
        choices=choices((str(s), SEAT_STATUS_LABELS[s]) for s in OPERATOR_CHOICES),
        validate_choice=True,
    )


class SeatCaseForm(FlaskForm):
    """The case the operator writes while the caller talks, prefilled from the suggestion."""

    entry = HiddenField(validators=[DataRequired()])
    # The category the machine suggested, for the case's audit trail.
    suggested = HiddenField(validators=[Optional(), Length(max=40)])
    summary = TextAreaField(_l("Summary"), validators=[DataRequired(), FreeText(PROSE)])
    category = SelectField(_l("Category"), choices=[], validators=[DataRequired()])
    department = SelectField(_l("Department"), choices=[], validators=[DataRequired()])
    urgency = SelectField(_l("Urgency"), choices=choices(URGENCY_LABELS.items()), default="normal")
    place = SelectField(_l("Place"), choices=[], validators=[Optional()])
    deadline = DateTimeLocalField(
        _l("Deadline"),
        format=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"],
        validators=[Optional()],
        description=_l("Leave it empty for the category's time limit."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "seat-case")
        super().__init__(*args, **kwargs)

    def deadline_utc(self, timezone: str) -> datetime | None:
        """The deadline typed on the city's clock, in UTC; None when left empty."""
        typed: datetime | None = self.deadline.data
        if typed is None:
            return None
        return typed.replace(tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def local_input_value(moment: datetime | None, timezone: str) -> str:
    """A UTC moment as a datetime-local input shows it on the city's clock."""
    if moment is None:
        return ""
    return moment.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%dT%H:%M")


class WrapUpForm(FlaskForm):
    """The operator's wrap-up code for the call they took."""

    entry = HiddenField(validators=[DataRequired()])
    code = SelectField(
        _l("How did the call end?"),
        choices=choices((str(c), WRAP_UP_LABELS[c]) for c in OPERATOR_WRAP_UPS),
        validate_choice=True,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "wrap-up")
        super().__init__(*args, **kwargs)


class EmergencyTransferForm(FlaskForm):
    """One click: put the caller through to 110/119/120."""

    entry = HiddenField(validators=[DataRequired()])

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "emergency")
        super().__init__(*args, **kwargs)


class CallBackForm(FlaskForm):
    """Start calling a citizen back (the operator's phone rings first)."""
