"""The report form's fields, its place picker, and the words the visitor reads about a photo or a
code: what the form is, apart from what the view does with it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    Field,
    FileField,
    HiddenField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import ValidationError

from cases import free_text
from cases.verification import Outcome
from routing.places import Gazetteer

DESCRIPTION = free_text.TextRule(max_length=2000)
ADDRESS = free_text.TextRule(max_length=200, multiline=False)
PHONE = free_text.TextRule(max_length=30, multiline=False)
CODE = free_text.TextRule(max_length=12, multiline=False)

# Sub-districts first (the old town), then towns, then the development zone.
KIND_ORDER = ("subdistrict", "town", "dev_zone")
KIND_LABELS = {
    "subdistrict": _l("Sub-districts"),
    "town": _l("Towns"),
    "dev_zone": _l("Development zone"),
}


class CleanText:
    """A validator that applies the free-text rule (`cases.free_text`) and keeps what it
    stores as the field's data; its refusals are said in the visitor's language."""

    def __init__(self, rule: free_text.TextRule, *, required: Any = None) -> None:
        self.rule = rule
        # The message for a field left empty (or only blanks); None when it may be empty.
        self.required = required

    def __call__(self, form: Any, field: Field) -> None:
        try:
            field.data = self.rule.clean(field.data, field=field.name, required=False)
        except free_text.BadTextError as error:
            if error.problem == "too_long":
                raise ValidationError(
                    _l("At most %(limit)s characters, please.", limit=self.rule.max_length)
                ) from error
            raise ValidationError(
                _l("This text contains a character that cannot be stored: please remove it.")
            ) from error
        if self.required is not None and not field.data:
            raise ValidationError(self.required)


class ReportForm(FlaskForm):
    """What a visitor reports: the words, where, a photo, and a phone for updates (or none)."""

    description = TextAreaField(
        _l("What is the problem?"),
        validators=[CleanText(DESCRIPTION, required=_l("Describe the problem."))],
    )
    place = SelectField(_l("Town or sub-district"), choices=[], default="")
    address = StringField(_l("Street, address or landmark"), validators=[CleanText(ADDRESS)])
    photo = FileField(_l("Photo"))
    remove_photo = BooleanField(_l("Remove this photo"))
    phone = StringField(_l("Mobile number"), validators=[CleanText(PHONE)])
    code = StringField(_l("Code from the text message"), validators=[CleanText(CODE)])
    # A one-time token per form: posted twice, the form opens one case (cases.web_reports).
    submission = HiddenField()
    send_code = SubmitField(_l("Text me a code"))
    submit = SubmitField(_l("Send the report"))


def aria(field: Field, hint_id: str | None = None) -> dict[str, str]:
    """A field's accessibility attributes: the hint and the error that describe it, and
    whether it is invalid (the error's id is `<field>-error`, as the template writes it)."""
    described = [hint_id] if hint_id else []
    if field.errors:
        described.append(f"{field.id}-error")
    attributes = {"aria-invalid": "true"} if field.errors else {}
    if described:
        attributes["aria-describedby"] = " ".join(described)
    return attributes


@dataclass(frozen=True)
class PlaceOption:
    """A town, sub-district or the development zone, as the picker offers it."""

    code: str
    name: str
    kind: str


def place_options(gazetteer: Gazetteer) -> list[PlaceOption]:
    """Every place in the gazetteer once, in the picker's order."""
    places = {
        alias.code: PlaceOption(alias.code, alias.name, alias.kind) for alias in gazetteer.aliases
    }
    return sorted(places.values(), key=lambda place: (KIND_ORDER.index(place.kind), place.code))


def place_label(place: PlaceOption, locale: str) -> str:
    """The place's official (Chinese) name; on other pages with its romanised name besides,
    so that a visitor who reads no Chinese still finds it."""
    if locale == "zh-CN":
        return place.name
    latin = str(KIND_LABELS["dev_zone"]) if place.kind == "dev_zone" else place.code.title()
    return f"{place.name} ({latin})"


def place_groups(places: list[PlaceOption], locale: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """The picker's options grouped by kind, each group named in the page's language."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for place in places:
        groups.setdefault(str(KIND_LABELS[place.kind]), []).append(
            (place.code, place_label(place, locale))
        )
    return list(groups.items())


def photo_error(reason: str, *, max_bytes: int) -> str:
    """What the visitor reads under the photo field when the file is not taken."""
    if reason == "too_big":
        return str(
            _("This photo is too large: at most %(megabytes)s MB.", megabytes=max_bytes // 2**20)
        )
    if reason == "empty":
        return str(_("This file is empty: choose a photo."))
    return str(_("Only JPEG, PNG or WebP photos can be sent."))


def code_error(outcome: Outcome, tries_left: int) -> str:
    """What the visitor reads under the code field after a code that did not work."""
    if outcome == Outcome.WRONG:
        return str(_("This code is not right: %(tries)s tries left.", tries=tries_left))
    if outcome == Outcome.EXPIRED:
        return str(_("This code has expired: ask for a new one."))
    if outcome == Outcome.TOO_MANY_TRIES:
        return str(_("Too many wrong codes: ask for a new one."))
    return str(_("Ask for a code for this number first."))
