"""The console's forms: every one carries a CSRF token (Flask-WTF), and each case action has
its own prefix, so that several can share a page with distinct element ids (`resolve-reply`).

Every field people type into goes through `cases.free_text` (`FreeText`): a control character
or NUL is a form error in the staff member's language, and nothing is written."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    Field,
    FileField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    EqualTo,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)

from cases.free_text import LINE, PROSE, BadTextError, TextRule
from cases.numbers import is_well_formed
from cases.search import MIN_PHONE_DIGITS
from cases.staff import MIN_PASSWORD_LENGTH

# Time limits an admin may set. The caps catch a slipped key (240 for 24) before it quietly
# gives a department ten days; a real limit longer than these is a policy change, not a form.
MAX_LIMIT_HOURS = 720
MAX_LIMIT_WORKING_DAYS = 60
# A webhook URL is one line, and may be longer than a name.
URL_LINE = TextRule(max_length=2000, multiline=False)

URGENCY_LABELS = {
    "normal": _l("Normal"),
    "urgent": _l("Urgent (2 hours)"),
    "emergency": _l("Emergency"),
}


def choices(pairs: Iterable[tuple[str, Any]]) -> list[SelectChoice]:
    """Select options from (value, label) pairs; labels may be lazy translations."""
    return [SelectChoice(value, label) for value, label in pairs]


class FreeText:
    """The domain's free-text rule as a form check, its refusal said in the page's language.

    It checks the length too, after line ends become one `\n`: a browser counts a textarea's
    line break as one character against `maxlength` but posts it as two (CRLF), so WTForms'
    Length on the raw text would refuse a note the page had let the staff member type."""

    def __init__(self, rule: TextRule) -> None:
        self.rule = rule
        # Rendered as the input's maxlength attribute, as Length's would be.
        self.field_flags = {"maxlength": rule.max_length}

    def __call__(self, form: Any, field: Field) -> None:
        """ValidationError if the rule refuses the field's text (emptiness is left to the
        field's own DataRequired or Optional)."""
        if not field.data:
            return
        try:
            self.rule.clean(field.data, field=field.name, required=False)
        except BadTextError as error:
            if error.is_character_problem:
                raise ValidationError(
                    _l(
                        "This text contains a character that cannot be saved "
                        "(%(code_point)s, character %(position)s). Remove it and try again.",
                        code_point=error.code_point,
                        position=error.position,
                    )
                ) from None
            raise ValidationError(
                _l("This text is longer than %(limit)s characters.", limit=error.limit)
            ) from None


def _text_field(label: Any) -> TextAreaField:
    return TextAreaField(label, validators=[DataRequired(), FreeText(PROSE)])


class LoginForm(FlaskForm):
    """Username and password; `next` is where to go after signing in (local paths only)."""

    username = StringField(
        _l("Username"), validators=[DataRequired(), Length(max=80), FreeText(LINE)]
    )
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])
    next = HiddenField()


class LogoutForm(FlaskForm):
    """Signing out is a POST with a token, so another site cannot sign staff out."""


class LocaleForm(FlaskForm):
    """The language switch shown on every page."""

    locale = SelectField(
        _l("Language"),
        choices=choices([("zh-CN", "中文"), ("en-US", "English")]),
        validate_choice=True,
    )
    next = HiddenField()


class CaseActionForm(FlaskForm):
    """A form that acts on one case; its prefix names the action in element ids."""

    prefix_name: ClassVar[str] = ""
    next = HiddenField()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", self.prefix_name)
        super().__init__(*args, **kwargs)


class AcceptForm(CaseActionForm):
    """Take the case: the department becomes first-responsible for it."""

    prefix_name = "accept"


class NoteForm(CaseActionForm):
    """A working note on the case's timeline."""

    prefix_name = "note"
    text = _text_field(_l("Note"))


class TransferForm(CaseActionForm):
    """Hand the case to another department, with the reason."""

    prefix_name = "transfer"
    department = SelectField(_l("To department"), choices=[], validators=[DataRequired()])
    reason = _text_field(_l("Reason"))


class SendBackForm(CaseActionForm):
    """Return the case to the dispatch desk (退单), with the reason it is not ours."""

    prefix_name = "send-back"
    reason = _text_field(_l("Reason"))


class ResolveForm(CaseActionForm):
    """The department's reply to the caller; it resolves the case."""

    prefix_name = "resolve"
    reply = _text_field(_l("Reply to the caller"))
    # 答复附件: a photo of the work done, or a document; checked by its bytes when stored.
    attachment = FileField(_l("Attach a photo or a PDF (optional)"))


class WorkOrderForm(CaseActionForm):
    """The work order (诉求内容): the problem in the desk's words, written while listening."""

    prefix_name = "work-order"
    text = _text_field(_l("Work order: what the caller wants done"))


# A request for more time asks for at most this many working days at once: a matter that needs
# more is a different matter (a transfer, a ruling), not a later deadline.
MAX_EXTENSION_WORKING_DAYS = 30


class RequestExtensionForm(CaseActionForm):
    """延期申请: how many more working days, and why."""

    prefix_name = "extension"
    working_days = IntegerField(
        _l("More working days"),
        validators=[DataRequired(), NumberRange(min=1, max=MAX_EXTENSION_WORKING_DAYS)],
        default=3,
    )
    reason = _text_field(_l("Why the department needs more time"))


class DecideExtensionForm(CaseActionForm):
    """The desk's ruling on a request for more time."""

    prefix_name = "extension-ruling"
    decision = SelectField(
        _l("Decision"),
        choices=choices([("approve", _l("Approve the new deadline")), ("refuse", _l("Refuse"))]),
        validators=[DataRequired()],
    )
    note = TextAreaField(_l("Note (optional)"), validators=[Optional(), FreeText(PROSE)])


class AddAssistForm(CaseActionForm):
    """协办: the department the desk asks to assist the holder, and with what."""

    prefix_name = "assist"
    department = SelectField(_l("Assisting department"), choices=[], validators=[DataRequired()])
    task = _text_field(_l("What it is asked to do"))


class AssistReplyForm(CaseActionForm):
    """An assisting department's reply for its part."""

    prefix_name = "assist-reply"
    reply = _text_field(_l("Your department's reply for its part"))


class TriageForm(CaseActionForm):
    """The desk classifies a case; an empty department means the category's own."""

    prefix_name = "triage"
    # No category is taken for granted: a case with nothing to suggest one starts blank (the
    # first in the list was a desk category, which the desk cannot assign to itself).
    category = SelectField(
        _l("Category"),
        choices=[],
        validators=[DataRequired(message=_l("Choose the category of the matter."))],
    )
    department = SelectField(_l("Department"), choices=[])
    urgency = SelectField(_l("Urgency"), choices=choices(URGENCY_LABELS.items()), default="normal")
    note = TextAreaField(_l("Note (optional)"), validators=[Optional(), FreeText(PROSE)])


class RulingForm(CaseActionForm):
    """The desk's ruling on a sent-back case; an empty category keeps the case's own."""

    prefix_name = "ruling"
    department = SelectField(_l("Assign to"), choices=[], validators=[DataRequired()])
    ruling = _text_field(_l("Ruling"))
    category = SelectField(_l("Category"), choices=[])


class EscalateForm(CaseActionForm):
    """Escalate to leadership (督办), with the reason."""

    prefix_name = "escalate"
    reason = _text_field(_l("Reason"))


class SuperviseForm(CaseActionForm):
    """A supervision notice to the department holding the case."""

    prefix_name = "supervise"
    instruction = _text_field(_l("Instruction"))


class AnswerByDeskForm(CaseActionForm):
    """The desk's own answer (直接答复), texted to the caller."""

    prefix_name = "desk-answer"
    reply = _text_field(_l("Answer to the caller"))


class AnswerAtOnceForm(CaseActionForm):
    """Close the case with the attached article's answer (当即解答)."""

    prefix_name = "answer-at-once"


class AskForCallBackForm(CaseActionForm):
    """Have the case's caller called back about it (回拨)."""

    prefix_name = "call-back"


def compact_number(value: str | None) -> str | None:
    """A typed case number without the spaces and dashes people copy numbers with."""
    return "".join(value.split()).replace("-", "") if value else value


def well_formed_case_number(form: Any, field: Field) -> None:
    """ValidationError unless the field holds a case number: nine digits whose last checks the
    others, so a mistyped digit is caught here rather than merging into a stranger's case."""
    if field.data and not is_well_formed(field.data):
        raise ValidationError(_l("That is not a case number: check its nine digits."))


class MergeForm(CaseActionForm):
    """并单 by hand: the number of the case to keep, which this one joins as a repeat report."""

    prefix_name = "merge"
    into = StringField(
        _l("Number of the case to keep"),
        validators=[DataRequired(), Length(max=40), well_formed_case_number],
        filters=[compact_number],
    )


class SplitForm(CaseActionForm):
    """Undo a merge: the report becomes a case of its own again."""

    prefix_name = "split"


class ChannelsForm(FlaskForm):
    """How a department receives its cases; an empty field clears that channel, except the
    secret, which is never shown and stays as it is when left empty."""

    webhook_url = StringField(
        _l("Webhook URL"), validators=[Optional(), Length(max=2000), FreeText(URL_LINE)]
    )
    webhook_secret = PasswordField(
        _l("Webhook secret"), validators=[Optional(), Length(max=200), FreeText(LINE)]
    )
    email = StringField(
        _l("E-mail"),
        validators=[
            Optional(),
            Length(max=200),
            FreeText(LINE),
            Regexp(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", message=_l("Not an e-mail address.")),
        ],
    )
    sms_number = StringField(
        _l("Duty officer's mobile"),
        validators=[
            Optional(),
            Regexp(r"^\+?[0-9]{5,20}$", message=_l("Digits only, with an optional leading +.")),
        ],
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "channels")
        super().__init__(*args, **kwargs)


class ApiKeyForm(FlaskForm):
    """Issue a new API key for a department (the old one stops working)."""


class AddUserForm(FlaskForm):
    """A new staff account."""

    username = StringField(
        _l("Username"), validators=[DataRequired(), Length(max=80), FreeText(LINE)]
    )
    password = PasswordField(
        _l("Password"), validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=200)]
    )
    role = SelectField(_l("Role"), choices=[])
    department = SelectField(_l("Department (department staff only)"), choices=[])

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "user")
        super().__init__(*args, **kwargs)


class ResetPasswordForm(FlaskForm):
    """A new password, through an administrator's one-time link."""

    password = PasswordField(
        _l("New password"),
        validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=200)],
    )
    confirm = PasswordField(
        _l("The new password again"),
        validators=[DataRequired(), EqualTo("password", message=_l("The two passwords differ."))],
    )


class UserActiveForm(FlaskForm):
    """Deactivate or reactivate an account."""


class TimeLimitForm(FlaskForm):
    """A category's time limit: hours on the clock or working days, exactly one of them."""

    hours = IntegerField(
        _l("Hours"),
        validators=[
            Optional(),
            NumberRange(
                min=1,
                max=MAX_LIMIT_HOURS,
                message=_l("Hours must be a whole number from %(min)s to %(max)s."),
            ),
        ],
    )
    working_days = IntegerField(
        _l("Working days"),
        validators=[
            Optional(),
            NumberRange(
                min=1,
                max=MAX_LIMIT_WORKING_DAYS,
                message=_l("Working days must be a whole number from %(min)s to %(max)s."),
            ),
        ],
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "limit")
        super().__init__(*args, **kwargs)

    def validate(self, extra_validators: Any = None) -> bool:
        """The fields' own checks, then: exactly one of hours and working days."""
        if not super().validate(extra_validators):
            return False
        if (self.hours.data is None) == (self.working_days.data is None):
            self.form_errors.append(_l("Give either hours or working days, not both."))
            return False
        return True


class SearchForm(FlaskForm):
    """The case search (a GET form: it changes nothing, so it carries no token, and its address
    can be bookmarked or sent to a colleague). Every field may stay empty."""

    class Meta:
        csrf = False

    number = StringField(
        _l("Case number"), validators=[Optional(), Length(max=40)], filters=[compact_number]
    )
    phone = StringField(_l("Caller's phone"), validators=[Optional(), Length(max=40)])
    text = StringField(
        _l("Words in the case"), validators=[Optional(), Length(max=200), FreeText(LINE)]
    )
    category = SelectField(_l("Category"), choices=[], default="")
    department = SelectField(_l("Department"), choices=[], default="")
    status = SelectField(_l("Status"), choices=[], default="all")
    opened_from = DateField(_l("Opened from"), validators=[Optional()])
    opened_to = DateField(_l("Opened until"), validators=[Optional()])

    def validate_phone(self, field: Field) -> None:
        if field.data and sum(char.isdigit() for char in field.data) < MIN_PHONE_DIGITS:
            raise ValidationError(
                _l("Type at least %(count)s digits of the phone number.", count=MIN_PHONE_DIGITS)
            )

    def validate_opened_to(self, field: Field) -> None:
        if field.data and self.opened_from.data and field.data < self.opened_from.data:
            raise ValidationError(_l("The last day comes before the first."))
