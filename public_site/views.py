"""Public pages: a small home, the case lookup and the disclosure page; no personal data.

- `/lookup` finds a case by its number plus the last four digits of the caller's phone and
  shows only its progress: no phone number, transcript, recording or name. A wrong number and
  wrong digits get the same answer, and failed attempts slow down per (case number, address)
  pair, so strangers guessing at a number never lock its caller out (`cases.lookup`).
- `/disclosure` publishes, per department and ISO week, the volume and the three rates
  (`public_site.stats` defines them), as charts (`public_site.charts`, drawn by our own
  bundle of Apache ECharts), tables, and CSV and JSON downloads. Nothing is fetched from
  another host: the pages' Content-Security-Policy forbids it.

Chinese (zh-CN) is the default; `?lang=en-US` (or the console's own switch) shows English.
"""

from __future__ import annotations

import csv
import functools
import io
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_skeleton
from flask import Blueprint, Response, current_app, jsonify, render_template, request, url_for
from flask import session as browser_session
from flask.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue
from flask_babel import force_locale, get_locale
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError
from sqlalchemy import select
from sqlalchemy.orm import Session
from wtforms import StringField
from wtforms.validators import InputRequired, Regexp, ValidationError

from cases import merging, numbers
from cases.locales import DEFAULT_LOCALE
from cases.lookup import look_up_case
from cases.models import Case, CaseStatus, Category, Department, utcnow
from hotline.web import LOCALE_SESSION_KEY, WEB_LOCALES
from hotline.wiring import current_wiring, db
from knowledge import store
from knowledge.articles import ArticleText
from public_site import stats
from public_site.charts import (
    contacts_chart,
    direct_answer_chart,
    percent,
    rates_chart,
    volume_chart,
)

bp = Blueprint(
    "public",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/public/static",
)

# Public pages speak the languages the web pages are translated into, and Korean besides (the
# console's staff pick from WEB_LOCALES only).
PUBLIC_LOCALES = {**WEB_LOCALES, "ko-KR": "ko_KR"}

DISCLOSURE_DEFAULT_WEEKS = 8
DISCLOSURE_MAX_WEEKS = 52
# The figures scan the audit trail; recomputing them for every visitor would let anyone load the
# database at will, and a city's weekly figures do not change much in five minutes.
DISCLOSURE_CACHE_SECONDS = 300

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
# The disclosure page runs one script of ours, which draws its charts (hotline/static/charts.js).
CHARTS_CONTENT_SECURITY_POLICY = CONTENT_SECURITY_POLICY.replace(
    "default-src 'none';", "default-src 'none'; script-src 'self';"
)

STATUS_LABELS = {
    CaseStatus.OPEN: _l("Received"),
    CaseStatus.TRIAGE: _l("Being assigned by the hotline office"),
    CaseStatus.ASSIGNED: _l("Assigned to the department"),
    CaseStatus.ACCEPTED: _l("Being handled by the department"),
    CaseStatus.SENT_BACK: _l("Being reassigned by the hotline office"),
    CaseStatus.RESOLVED: _l("Resolved, waiting for your rating"),
    CaseStatus.CLOSED: _l("Closed"),
}


class InvalidQueryError(Exception):
    """A public page was asked for something malformed; the message says what is expected."""


@dataclass
class _CachedFigures:
    computed_at: float
    disclosure: stats.Disclosure
    departments: dict[str, Department]
    direct: stats.DirectAnswers
    answering: stats.Answering


class FiguresCache:
    """The disclosure figures per number of weeks, recomputed at most every few minutes."""

    def __init__(self, ttl_seconds: float) -> None:
        self.ttl_seconds = ttl_seconds
        self._lock = threading.Lock()
        self._entries: dict[int, _CachedFigures] = {}

    def get(self, weeks: int, compute: Callable[[], _CachedFigures]) -> _CachedFigures:
        """The cached figures for `weeks`, computed now if missing or stale."""
        # One computation at a time: a burst of visitors after expiry waits for one query.
        with self._lock:
            entry = self._entries.get(weeks)
            if entry is None or time.monotonic() - entry.computed_at > self.ttl_seconds:
                entry = compute()
                self._entries[weeks] = entry
            return entry


_FIGURES = "public.figures"


@bp.record_once
def _set_up(state: BlueprintSetupState) -> None:
    # One cache per app: what it holds comes from that app's database.
    state.app.extensions[_FIGURES] = FiguresCache(DISCLOSURE_CACHE_SECONDS)


def _figures_cache() -> FiguresCache:
    cache: FiguresCache = current_app.extensions[_FIGURES]
    return cache


# --- language -----------------------------------------------------------------------------


def chosen_locale() -> str | None:
    """The locale asked for with `?lang=`, if it is one the public pages offer."""
    lang = request.args.get("lang")
    return lang if lang in PUBLIC_LOCALES else None


def page_locale() -> str:
    """The locale of this response, as the directory's names are keyed (zh-CN or en-US)."""
    chosen = chosen_locale()
    if chosen is not None:
        return chosen
    locale = get_locale()
    return "en-US" if locale is not None and locale.language == "en" else DEFAULT_LOCALE


@contextmanager
def _in_page_locale() -> Iterator[None]:
    chosen = chosen_locale()
    if chosen is None:
        yield  # the console's own selector decides (session choice, else zh-CN)
        return
    with force_locale(PUBLIC_LOCALES[chosen]):
        yield


def _lang_url(lang: str) -> str:
    """This page in another language, with its other query arguments kept."""
    # url_for gives arguments starting with "_" a meaning (_external, _method...): a visitor's
    # query string must not reach them.
    query = {key: value for key, value in request.args.items() if not key.startswith("_")}
    arguments: dict[str, Any] = {**(request.view_args or {}), **query, "lang": lang}
    return url_for(request.endpoint or "public.home", **arguments)


def localised(view: Callable[..., ResponseReturnValue]) -> Callable[..., ResponseReturnValue]:
    """Run a view in the page's locale, so that texts it prepares are in the right language."""

    @functools.wraps(view)
    def in_locale(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        with _in_page_locale():
            return view(*args, **kwargs)

    return in_locale


def _render(template: str, *, status: int = 200, **context: Any) -> tuple[str, int]:
    with _in_page_locale():
        html = render_template(
            template,
            locale=page_locale(),
            lang=chosen_locale(),
            lang_url=_lang_url,
            public_locales=PUBLIC_LOCALES,
            **context,
        )
    return html, status


def render_public(template: str, *, status: int = 200, **context: Any) -> tuple[str, int]:
    """A public page in the page's language, with the language switch's links."""
    return _render(template, status=status, **context)


@bp.before_request
def _remember_language() -> None:
    # Kept where the console's own switch keeps it, so the choice follows the visitor around.
    chosen = chosen_locale()
    if chosen is not None:
        browser_session[LOCALE_SESSION_KEY] = chosen


@bp.after_request
def _public_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if request.endpoint == "public.lookup":
        # The answer is one citizen's case: keep it out of shared caches and the back button.
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(CSRFError)
def _form_expired(error: CSRFError) -> tuple[str, int]:
    message = _l(
        "This form has expired or did not come from this site. "
        "Go back, reload the page and try again."
    )
    return _render("public/error.html", status=400, message=message)


@bp.errorhandler(InvalidQueryError)
def _invalid_query(error: InvalidQueryError) -> tuple[str, int]:
    # The message is lazy: it is put into words inside the page's locale.
    return _render("public/error.html", status=400, message=error.args[0] if error.args else "")


def _zone() -> ZoneInfo:
    return ZoneInfo(current_wiring().router.calendar.timezone)


def local_time(moment: datetime | None, zone: ZoneInfo) -> str | None:
    """A moment as the city's local date and time, such as 2024-03-05 14:30."""
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment else None


@bp.get("/")
def home() -> tuple[str, int]:
    """The public home: what the hotline is, and the two things the public can do here."""
    return _render("public/home.html")


# --- case lookup --------------------------------------------------------------------------


def _keyed_digits(value: str | None) -> str | None:
    # People copy numbers as "123 456 789" or "123-456-789".
    return re.sub(r"[\s\-]", "", value) if value else value


def _well_formed_number(_form: FlaskForm, field: StringField) -> None:
    if not numbers.is_well_formed(field.data or ""):
        raise ValidationError(_l("This is not a valid case number: please check it for typos."))


class LookupForm(FlaskForm):
    """The case number and the last four digits of the phone the case was reported from."""

    number = StringField(
        _l("Case number"),
        filters=[_keyed_digits],
        validators=[
            InputRequired(message=_l("Enter the case number.")),
            Regexp(
                rf"^\d{{{numbers.CASE_NUMBER_LENGTH}}}$",
                message=_l("A case number has 9 digits."),
            ),
            _well_formed_number,
        ],
    )
    phone_last4 = StringField(
        _l("Last 4 digits of your phone number"),
        filters=[_keyed_digits],
        validators=[
            InputRequired(message=_l("Enter the last 4 digits of your phone number.")),
            Regexp(r"^\d{4}$", message=_l("Enter exactly 4 digits.")),
        ],
    )


@dataclass(frozen=True)
class PublicCase:
    """What the public may see of a case: its progress, never who called or what they said."""

    number: str
    status: str
    category: str | None
    department: str | None
    opened_at: str | None
    deadline_at: str | None
    resolved_at: str | None
    reply: str | None
    rated: bool
    # 并单: the case this report joined (its progress is shown), and how many reported it.
    merged_into: str | None = None
    reporters: int = 1


def public_case(session: Session, *, case: Case, locale: str, zone: ZoneInfo) -> PublicCase:
    """The public view of a case, with names in `locale` and times in the city's zone. A report
    merged into another case shows that case's progress under the reporter's own number."""
    followed = merging.followed_case(case)
    category = session.get(Category, followed.category_code) if followed.category_code else None
    return PublicCase(
        number=case.number,
        status=str(STATUS_LABELS.get(CaseStatus(followed.status), followed.status)),
        category=category.name(locale) if category else None,
        department=followed.department.name(locale) if followed.department else None,
        opened_at=local_time(case.opened_at, zone),
        deadline_at=local_time(followed.deadline_at, zone),
        resolved_at=local_time(followed.resolved_at, zone),
        # A reopened case keeps its old reply, which the caller rejected: shown only once the
        # department has answered again.
        reply=followed.resolution if followed.status in stats.DONE_STATUSES else None,
        rated=case.rating is not None,
        merged_into=followed.number if followed is not case else None,
        reporters=followed.reporters,
    )


@bp.route("/lookup", methods=["GET", "POST"])
@localised
def lookup() -> ResponseReturnValue:
    """Look a case up by its number and the last four digits of the caller's phone."""
    form = LookupForm()
    if request.method == "GET":
        return _render("public/lookup.html", form=form)
    if not form.validate_on_submit():
        return _render("public/lookup.html", form=form, status=400)
    number, phone_last4 = form.number.data or "", form.phone_last4.data or ""
    form.phone_last4.data = ""  # the digits are never echoed back into the page
    with db().begin():
        outcome = look_up_case(
            db(),
            number=number,
            phone_last4=phone_last4,
            remote_addr=request.remote_addr or "unknown",
            now=utcnow(),
        )
        found = (
            public_case(db(), case=outcome.case, locale=page_locale(), zone=_zone())
            if outcome.case is not None
            else None
        )
    if outcome.throttled:
        html, status = _render(
            "public/lookup.html",
            form=form,
            throttled=True,
            wait_minutes=outcome.wait.wait_minutes,
            status=429,
        )
        return html, status, {"Retry-After": str(outcome.wait.wait_seconds)}
    if found is None:
        return _render("public/lookup.html", form=form, not_found=True, status=404)
    return _render("public/lookup.html", form=form, result=found)


# --- disclosure ---------------------------------------------------------------------------


def _weeks_argument() -> int:
    raw = request.args.get("weeks", str(DISCLOSURE_DEFAULT_WEEKS)).strip()
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= DISCLOSURE_MAX_WEEKS:
        raise InvalidQueryError(
            _l(
                "The number of weeks must be a whole number from 1 to %(most)d.",
                most=DISCLOSURE_MAX_WEEKS,
            )
        )
    return int(raw)


def published_figures(weeks: int) -> _CachedFigures:
    """The figures for the last `weeks` ISO weeks (this one included), from the cache."""
    calendar = current_wiring().router.calendar

    def compute() -> _CachedFigures:
        now = utcnow()
        start, end = stats.last_weeks(now=now, count=weeks, zone=ZoneInfo(calendar.timezone))
        with db().begin():
            figures = stats.disclosure(db(), start=start, end=end, now=now, calendar=calendar)
            departments = {row.code: row for row in db().scalars(select(Department))}
            direct = stats.direct_answers(
                db(), start=start, end=end, zone=ZoneInfo(calendar.timezone)
            )
            answering = stats.answering(
                db(), start=start, end=end, zone=ZoneInfo(calendar.timezone)
            )
        return _CachedFigures(
            computed_at=time.monotonic(),
            disclosure=figures,
            departments=departments,
            direct=direct,
            answering=answering,
        )

    return _figures_cache().get(weeks, compute)


def _department_name(figures: _CachedFigures, code: str, locale: str) -> str:
    department = figures.departments.get(code)
    return department.name(locale) if department else code


def _ordered_departments(figures: _CachedFigures) -> list[str]:
    # The busiest first: that is where a reader looks first.
    disclosure = figures.disclosure
    return sorted(
        disclosure.departments,
        key=lambda code: (-disclosure.department_total(code).volume, code),
    )


def week_days_label(monday: date) -> str:
    """A week as its first and last day, in the page's language."""
    locale = str(get_locale() or DEFAULT_LOCALE)
    first = format_skeleton("MMMd", monday, locale=locale)
    last = format_skeleton("MMMd", monday + timedelta(days=6), locale=locale)
    return f"{first}–{last}"


@bp.get("/disclosure")
@localised
def disclosure() -> ResponseReturnValue:
    """The public record: per department and week, the volume and the rates, charted."""
    weeks = _weeks_argument()
    figures = published_figures(weeks)
    data = figures.disclosure
    selected = request.args.get("department") or None
    if selected is not None and selected not in data.departments:
        raise InvalidQueryError(_l("There is no department with that code."))
    locale = page_locale()
    departments = _ordered_departments(figures)
    names = {code: _department_name(figures, code, locale) for code in departments}
    # People read a week as its days ("11月30日–12月6日"), not as its ISO name (2026-W49),
    # which the CSV and JSON downloads keep for machines.
    week_labels = [week_days_label(monday) for monday in data.weeks]
    if selected is None:
        weekly = [data.week_total(monday) for monday in data.weeks]
    else:
        weekly = [data.cell(selected, monday) for monday in data.weeks]
    active = [code for code in departments if data.department_total(code).volume]
    zone = _zone()
    page, status = _render(
        "public/disclosure.html",
        weeks=weeks,
        max_weeks=DISCLOSURE_MAX_WEEKS,
        data=data,
        selected=selected,
        departments=departments,
        names=names,
        week_labels=week_labels,
        weekly_volume=volume_chart(week_labels, weekly),
        weekly_rates=rates_chart(week_labels, weekly),
        department_volume=volume_chart(
            [names[code] for code in departments],
            [data.department_total(code) for code in departments],
            kind="rows",
        ),
        # A department with no cases has no rates: a row of dashes would only add noise.
        department_rates=rates_chart(
            [names[code] for code in active],
            [data.department_total(code) for code in active],
            kind="rows",
        ),
        # 并单: every report (contacts) beside the problems they are about, week by week.
        weekly_contacts=contacts_chart(week_labels, weekly),
        direct=figures.direct,
        answering=figures.answering,
        direct_chart=direct_answer_chart(week_labels, figures.direct),
        period_start=local_time(data.start, zone),
        period_end=local_time(data.end, zone),
        percent=percent,
    )
    return page, status, {"Content-Security-Policy": CHARTS_CONTENT_SECURITY_POLICY}


def _figure_rows(figures: _CachedFigures, locale: str) -> Iterator[dict[str, Any]]:
    """One flat row per department and week: what the CSV and JSON downloads hold."""
    data = figures.disclosure
    for code in _ordered_departments(figures):
        for monday in data.weeks:
            yield {
                "week": stats.week_label(monday),
                "week_start": monday.isoformat(),
                "department": code,
                "department_name": _department_name(figures, code, locale),
                **data.cell(code, monday).as_dict(),
            }


@bp.get("/disclosure.json")
def disclosure_json() -> ResponseReturnValue:
    """The disclosure figures as JSON: the same counts and rates the page shows."""
    figures = published_figures(_weeks_argument())
    data = figures.disclosure
    return jsonify(
        {
            "start": data.start.isoformat(),
            "end": data.end.isoformat(),
            "timezone": _zone().key,
            "weeks": [stats.week_label(monday) for monday in data.weeks],
            "definitions": url_for("public.disclosure", _anchor="definitions"),
            "rows": list(_figure_rows(figures, page_locale())),
            "total": data.grand_total().as_dict(),
            "direct_answers": figures.direct.as_dict(),
            "answering": figures.answering.as_dict(),
        }
    )


@bp.get("/disclosure.csv")
def disclosure_csv() -> ResponseReturnValue:
    """The disclosure figures as CSV, one row per department and week."""
    figures = published_figures(_weeks_argument())
    rows = list(_figure_rows(figures, page_locale()))
    buffer = io.StringIO()
    # Excel opens UTF-8 with Chinese names correctly only when the file starts with a BOM.
    buffer.write("\ufeff")
    columns = ["week", "week_start", "department", "department_name", *stats.Counts().as_dict()]
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                key: f"{value:.4f}" if isinstance(value, float) else value
                for key, value in row.items()
            }
        )
    data = figures.disclosure
    filename = (
        f"disclosure-{stats.week_label(data.weeks[0])}-{stats.week_label(data.weeks[-1])}.csv"
    )
    return Response(
        buffer.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename={filename}"},
    )


# --- FAQ ----------------------------------------------------------------------------------

# The FAQ speaks every language the articles are written in, as the public site does.
FAQ_LOCALES = {"zh-CN": "中文", "en-US": "English", "ko-KR": "한국어"}


def faq_locale() -> str:
    """The FAQ's language: `?lang=` if the articles are written in it, else the page's."""
    lang = request.args.get("lang")
    return lang if lang in FAQ_LOCALES else page_locale()


@dataclass(frozen=True)
class FaqGroup:
    """The articles of one category, named in the page's language."""

    code: str
    name: str
    articles: list[tuple[str, ArticleText]]


def faq_groups(session: Session, *, locale: str) -> list[FaqGroup]:
    """The articles in use, grouped by category in the directory's order; each in `locale`,
    or in Mandarin where it is not written in that language."""
    categories = {row.code: row for row in session.scalars(select(Category))}
    grouped: dict[str, list[tuple[str, ArticleText]]] = {}
    for article in store.active_articles(session):
        grouped.setdefault(article.category, []).append((article.id, article.text(locale)))
    order = list(categories)
    groups = [
        FaqGroup(
            code=code,
            name=categories[code].name(locale) if code in categories else code,
            articles=sorted(articles, key=lambda item: item[1].title),
        )
        for code, articles in grouped.items()
    ]
    return sorted(groups, key=lambda g: order.index(g.code) if g.code in order else len(order))


@bp.get("/faq")
def faq() -> ResponseReturnValue:
    """Questions the hotline is asked most, with the answers, by category; no staff data."""
    locale = faq_locale()
    with db().begin():
        groups = faq_groups(db(), locale=locale)
    return _render("public/faq.html", groups=groups, faq_locale=locale, faq_locales=FAQ_LOCALES)


# The report form's routes live in their own module, on this blueprint.
from public_site import report_views  # noqa: E402, F401
