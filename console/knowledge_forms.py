"""The desk's forms for the knowledge base: an article (each language's text, with a change
note) and the retire/restore buttons.

The form checks what an article needs with messages in the staff member's language; the store
checks the same rules again (`knowledge.articles.article_from_data`) before anything is saved.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, Form, FormField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, NoneOf, Optional, Regexp

from cases.free_text import LINE, PROSE
from console.forms import FreeText
from knowledge.articles import (
    ID_PATTERN,
    MAX_SPOKEN_SECONDS,
    MIN_QUESTIONS,
    OPTIONAL_FIELDS,
    speaking_seconds,
)

# The form's attribute for each language the articles are written in (a field name cannot
# hold a hyphen).
LOCALE_FIELDS = {"zh-CN": "zh_CN", "en-US": "en_US", "ko-KR": "ko_KR"}
LOCALE_NAMES = {"zh-CN": _l("Chinese"), "en-US": _l("English"), "ko-KR": _l("Korean")}
# Addresses of the console's own pages under /console/knowledge/.
RESERVED_IDS = ("new",)
TEXT_FIELDS = ("title", "answer", "details", "questions", *OPTIONAL_FIELDS)


class ArticleTextForm(Form):
    """An article in one language; all empty means the article is not written in it."""

    title = StringField(_l("Title"), validators=[Optional(), FreeText(LINE)])
    answer = TextAreaField(
        _l("Answer said in the call (under 40 seconds)"), validators=[Optional(), FreeText(PROSE)]
    )
    details = TextAreaField(
        _l("Details (text message and web)"), validators=[Optional(), FreeText(PROSE)]
    )
    questions = TextAreaField(
        _l("Other ways people ask it (one a line, at least 3)"),
        validators=[Optional(), FreeText(PROSE)],
    )
    office = StringField(_l("Office"), validators=[Optional(), FreeText(LINE)])
    address = StringField(_l("Address"), validators=[Optional(), FreeText(LINE)])
    hours = StringField(_l("Hours"), validators=[Optional(), FreeText(LINE)])

    def is_empty(self) -> bool:
        """Whether nothing is written in this language."""
        return not any((getattr(self, name).data or "").strip() for name in TEXT_FIELDS)

    def question_lines(self) -> list[str]:
        """The questions, one a line, blank lines dropped."""
        return [line.strip() for line in (self.questions.data or "").splitlines() if line.strip()]

    def check(self, locale: str) -> bool:
        """The rules of an article's text, each broken one as a field error; whether all held."""
        ok = True
        for name in ("title", "answer", "details"):
            if not (getattr(self, name).data or "").strip():
                getattr(self, name).errors = [*getattr(self, name).errors, _l("Fill this in.")]
                ok = False
        if len(self.question_lines()) < MIN_QUESTIONS:
            self.questions.errors = [
                *self.questions.errors,
                _l("Give at least %(count)d questions, one a line.", count=MIN_QUESTIONS),
            ]
            ok = False
        seconds = speaking_seconds((self.answer.data or "").strip(), locale)
        if seconds > MAX_SPOKEN_SECONDS:
            self.answer.errors = [
                *self.answer.errors,
                _l(
                    "This takes about %(seconds)d seconds to say; keep it under %(limit)d and "
                    "put the rest in the details.",
                    seconds=round(seconds),
                    limit=round(MAX_SPOKEN_SECONDS),
                ),
            ]
            ok = False
        return ok

    def as_data(self) -> dict[str, Any]:
        """The text as plain data, as the store takes it."""
        data: dict[str, Any] = {
            "title": (self.title.data or "").strip(),
            "answer": (self.answer.data or "").strip(),
            "details": (self.details.data or "").strip(),
            "questions": self.question_lines(),
        }
        for name in OPTIONAL_FIELDS:
            value = (getattr(self, name).data or "").strip()
            if value:
                data[name] = value
        return data


class ArticleForm(FlaskForm):
    """A whole article and the note that says what changed and why."""

    category = SelectField(_l("Category"), choices=[], validators=[DataRequired()])
    department = SelectField(_l("Department that handles it"), choices=[])
    reviewed = DateField(_l("Reviewed on"), validators=[DataRequired()], default=date.today)
    zh_CN = FormField(ArticleTextForm, label=_l("Chinese"))
    en_US = FormField(ArticleTextForm, label=_l("English"))
    ko_KR = FormField(ArticleTextForm, label=_l("Korean"))
    note = TextAreaField(_l("What changed and why"), validators=[DataRequired(), FreeText(PROSE)])

    def texts(self) -> dict[str, ArticleTextForm]:
        """Each language's subform, by locale."""
        return {locale: getattr(self, name).form for locale, name in LOCALE_FIELDS.items()}

    def validate(self, extra_validators: Any = None) -> bool:
        """The fields, then the article's own rules: Mandarin always, another language only
        when something is written in it."""
        ok = bool(super().validate(extra_validators))
        for locale, text in self.texts().items():
            if locale == "zh-CN" or not text.is_empty():
                ok = text.check(locale) and ok
        return ok

    def as_data(self, article_id: str) -> dict[str, Any]:
        """The article as plain data, as the store takes it."""
        data: dict[str, Any] = {
            "id": article_id,
            "category": self.category.data,
            "department": self.department.data or None,
            "reviewed": self.reviewed.data.isoformat() if self.reviewed.data else "",
        }
        for locale, text in self.texts().items():
            if locale == "zh-CN" or not text.is_empty():
                data[locale] = text.as_data()
        return data


class NewArticleForm(ArticleForm):
    """A new article: the same, with the id it will be known by."""

    article_id = StringField(
        _l("Article id"),
        validators=[
            DataRequired(),
            Regexp(
                ID_PATTERN,
                message=_l(
                    "Use lower-case letters and digits joined by hyphens, such as id-card-loss."
                ),
            ),
            NoneOf(RESERVED_IDS, message=_l("This id is reserved; choose another.")),
        ],
    )


def form_data(article: dict[str, Any]) -> dict[str, Any]:
    """Stored article data as the form's `data=` (questions one a line)."""
    data: dict[str, Any] = {
        "article_id": article.get("id", ""),
        "category": article.get("category"),
        "department": article.get("department") or "",
        "reviewed": date.fromisoformat(article["reviewed"]) if article.get("reviewed") else None,
    }
    for locale, name in LOCALE_FIELDS.items():
        text = dict(article.get(locale) or {})
        text["questions"] = "\n".join(text.get("questions") or [])
        data[name] = {field: text.get(field, "") for field in TEXT_FIELDS}
    return data


class ArticleStateForm(FlaskForm):
    """Retire or restore an article, with the reason."""

    note = TextAreaField(_l("Why"), validators=[DataRequired(), FreeText(PROSE)])
