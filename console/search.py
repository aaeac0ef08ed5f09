"""The case search page, and a search's export as CSV or XLSX.

Anyone signed in may search, within the cases they may see (`cases.search` builds on
`cases.access`); a department's staff see callers' numbers masked, in the results and in an
export alike. Exports are for the desk, supervisors and admins: a department's own list is
its inbox, and a file of citizens' reports leaves the system's access rules behind.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from flask import render_template, request
from flask_babel import get_timezone
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from sqlalchemy import Select
from werkzeug.wrappers import Response

from cases.access import Actor, require
from cases.errors import InvalidInputError
from cases.models import Case, CaseStatus
from cases.privacy import mask_number
from cases.search import CaseSearch, search_cases
from console import forms
from console.blueprint import PAGE_SIZE, actor, bp, page_argument, when
from console.case_page import directory_now
from console.presenters import (
    STATUS_FILTERS,
    STATUS_LABELS,
    URGENCY_LABELS,
    NamedDirectory,
    case_rows,
    shows_full_number,
)
from hotline.wiring import current_wiring, db

# An export holds at most this many cases: a search wider than that is narrowed first (a
# year of a city's cases in one spreadsheet is a copy of the database, not a report).
EXPORT_LIMIT = 10_000

EXPORT_COLUMNS = (
    _l("Case number"),
    _l("Opened"),
    _l("Status"),
    _l("Category"),
    _l("Department"),
    _l("Urgency"),
    _l("Deadline"),
    _l("Caller's phone"),
    _l("Address"),
    _l("Work order"),
    _l("What the caller said"),
    _l("Reply"),
)
# The columns that hold people's words (address, work order, report, reply).
WORDS_COLUMNS = frozenset({8, 9, 10, 11})


def search_form(directory: NamedDirectory, who: Actor) -> forms.SearchForm:
    """The form, read from the query string, with this directory's choices."""
    form = forms.SearchForm(request.args)
    form.category.choices = forms.choices(
        [("", _("All categories")), *directory.category_choices()]
    )
    departments = directory.handling_departments() if who.sees_everything else []
    form.department.choices = forms.choices([("", _("All departments")), *departments])
    form.status.choices = forms.choices((key, _status_filter_label(key)) for key in STATUS_FILTERS)
    return form


def _status_filter_label(key: str) -> str:
    if key == "active":
        return str(_("Still being worked"))
    return str(_("All")) if key == "all" else str(STATUS_LABELS[CaseStatus(key)])


def _criteria(form: forms.SearchForm) -> CaseSearch:
    return CaseSearch(
        number=form.number.data or None,
        phone=form.phone.data or None,
        text=(form.text.data or "").strip() or None,
        category_code=form.category.data or None,
        department_code=form.department.data or None,
        statuses=STATUS_FILTERS[form.status.data or "all"],
        opened_from=form.opened_from.data,
        opened_to=form.opened_to.data,
    )


def _query(who: Actor, search: CaseSearch) -> Select[Case]:
    settings = current_wiring().settings
    return search_cases(who, search, region=settings.phone_default_region, zone=get_timezone())


@bp.get("/search")
def search_page() -> str:
    """The search form; with anything asked, the matching cases, newest first."""
    who = actor()
    page = page_argument()
    with db().begin():
        directory = directory_now(db())
        form = search_form(directory, who)
        rows, more, asked = [], False, False
        if request.args and form.validate():
            search = _criteria(form)
            asked = not search.is_empty
            if asked:
                found = list(
                    db().scalars(
                        _query(who, search).limit(PAGE_SIZE + 1).offset((page - 1) * PAGE_SIZE)
                    )
                )
                rows, more = case_rows(found[:PAGE_SIZE]), len(found) > PAGE_SIZE
        return render_template(
            "console/search.html",
            form=form,
            rows=rows,
            more=more,
            page=page,
            asked=asked,
            directory=directory,
            full_number=shows_full_number(who),
            mask_number=mask_number,
            may_export=who.supervises,
        )


@bp.get("/search/export.<any(csv, xlsx):kind>")
def search_export(kind: str) -> Response:
    """The search's cases as a file: CSV (UTF-8 with a byte-order mark, which Excel needs to
    read Chinese) or XLSX."""
    who = actor()
    require(who.supervises, _l("Only the desk, supervisors and admins may export cases."))
    with db().begin():
        directory = directory_now(db())
        form = search_form(directory, who)
        if not form.validate():
            raise InvalidInputError(_("Check the search: %(errors)s", errors=_form_errors(form)))
        search = _criteria(form)
        cases = list(db().scalars(_query(who, search).limit(EXPORT_LIMIT + 1)))
        if len(cases) > EXPORT_LIMIT:
            raise InvalidInputError(
                _(
                    "More than %(limit)s cases match: narrow the search (a shorter period, "
                    "a category) and export again.",
                    limit=EXPORT_LIMIT,
                )
            )
        rows = list(_export_rows(cases, directory, full_number=shows_full_number(who)))
    header = [str(title) for title in EXPORT_COLUMNS]
    name = f"cases-{datetime.now(get_timezone()):%Y%m%d-%H%M}.{kind}"
    if kind == "csv":
        body, mimetype = _csv(header, rows), "text/csv; charset=utf-8"
    else:
        body = _xlsx(header, rows)
        mimetype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def _form_errors(form: forms.SearchForm) -> str:
    return "；".join(str(error) for errors in form.errors.values() for error in errors)


def _export_rows(
    cases: list[Case], directory: NamedDirectory, *, full_number: bool
) -> Iterator[list[str]]:
    for case in cases:
        transcript = case.transcript.text if case.transcript is not None else ""
        caller = case.caller_number if full_number else mask_number(case.caller_number)
        yield [
            case.number,
            when(case.opened_at),
            str(STATUS_LABELS.get(case.status, case.status)),
            directory.category_name(case.category_code),
            directory.department_name(case.department_code),
            str(URGENCY_LABELS.get(case.urgency or "", "—")),
            when(case.deadline_at),
            caller or "",
            case.address or "",
            case.work_order or "",
            case.report_text or transcript or "",
            case.resolution or "",
        ]


def _csv(header: list[str], rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        # People's words: a cell a spreadsheet would read as a formula is made text.
        writer.writerow(
            [_inert(cell) if column in WORDS_COLUMNS else cell for column, cell in enumerate(row)]
        )
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _xlsx(header: list[str], rows: list[list[str]]) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet(_("Cases"))
    sheet.append(header)
    for row in rows:
        sheet.append([_text_cell(sheet, value) for value in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _text_cell(sheet: Any, value: str) -> WriteOnlyCell:
    """A cell that holds its text as text: openpyxl would write "=…" as a formula."""
    cell = WriteOnlyCell(sheet, value=value)
    cell.data_type = "s"
    return cell


def _inert(text: str) -> str:
    """A citizen's words must not run as a formula in whoever opens a CSV export (OWASP's
    advice: a leading =, +, - or @ is quoted)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
