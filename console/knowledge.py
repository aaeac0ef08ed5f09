"""The desk's knowledge base in the console: search and list, read an article with its
history, write a new one (also from a resolved case's answer), edit, retire and restore.

Who may do what is `knowledge.store`'s: the desk edits; supervisors, operators and admins read
everything; department staff read their own department's articles (another department's is a
404, as a case is). Every change is a revision with the editor and a note.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy.orm import Session
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from cases.access import get_visible_case, require
from cases.errors import InvalidInputError
from cases.locales import LOCALES
from cases.models import ArticleSource, CaseStatus, KnowledgeArticle
from console.blueprint import actor, bp
from console.case_page import directory_now
from console.knowledge_forms import (
    LOCALE_FIELDS,
    LOCALE_NAMES,
    ArticleForm,
    ArticleStateForm,
    NewArticleForm,
    form_data,
)
from console.presenters import NamedDirectory
from hotline.web import session_locale
from hotline.wiring import db
from knowledge import store
from knowledge.articles import ArticleError

log = logging.getLogger("hotline.console")

STATE_FILTERS = ("active", "retired", "all")


def _require_editor() -> None:
    require(store.may_edit(actor()), _("Only the dispatch desk edits the knowledge base"))


def _article(session: Session, article_id: str) -> KnowledgeArticle:
    try:
        return store.get_article(session, article_id, actor=actor())
    except store.UnknownArticleError:
        raise NotFound() from None


def _choices(form: ArticleForm, directory: NamedDirectory) -> None:
    form.category.choices = directory.category_choices()
    form.department.choices = [
        ("", _("None")),
        *[(code, directory.department_name(code)) for code in directory.departments],
    ]


def _article_form(
    directory: NamedDirectory, form_class: type[ArticleForm] = ArticleForm, **kwargs: Any
) -> ArticleForm:
    form = form_class(**kwargs)
    _choices(form, directory)
    return form


def _title(row: KnowledgeArticle, locale: str) -> str:
    texts = row.texts or {}
    return str((texts.get(locale) or texts.get("zh-CN") or {}).get("title", row.id))


def field_label(name: str) -> str:
    """A changed field's name in the page's language: “English · Answer”."""
    if "." in name:
        locale, field = name.split(".", 1)
        labels = {
            "title": _("Title"),
            "answer": _("Answer"),
            "details": _("Details"),
            "questions": _("Questions"),
            "office": _("Office"),
            "address": _("Address"),
            "hours": _("Hours"),
        }
        return f"{LOCALE_NAMES.get(locale, locale)} · {labels.get(field, field)}"
    labels = {
        "category": _("Category"),
        "department": _("Department"),
        "reviewed": _("Reviewed on"),
        "retired": _("Retired"),
    }
    return str(labels.get(name, name))


def action_label(action: str) -> str:
    """What a revision did, in the page's language."""
    labels = {
        store.CREATE: _("Created"),
        store.EDIT: _("Edited"),
        store.RETIRE: _("Retired"),
        store.RESTORE: _("Restored"),
    }
    return str(labels.get(action, action))


@bp.get("/knowledge")
def knowledge_list() -> str:
    """The knowledge base: search by words of a title or question, filter by state."""
    who = actor()
    query = request.args.get("q", "").strip()[:200]
    state = request.args.get("state", "active")
    if state not in STATE_FILTERS:
        raise InvalidInputError(_("Unknown filter “%(key)s”.", key=state))
    locale = session_locale()
    with db().begin():
        directory = directory_now(db())
        rows = store.search_articles(
            db(), query, locale, actor=who, include_retired=state != "active"
        )
        if state == "retired":
            rows = [row for row in rows if row.retired]
        entries = [(row, _title(row, locale)) for row in rows]
        return render_template(
            "console/knowledge_list.html",
            entries=entries,
            directory=directory,
            query=query,
            state=state,
            states=STATE_FILTERS,
            may_edit=store.may_edit(who),
        )


def _render_article(
    session: Session,
    row: KnowledgeArticle,
    *,
    form: ArticleForm | None = None,
    error: str | None = None,
    status: int = 200,
) -> tuple[str, int]:
    who = actor()
    directory = directory_now(session)
    editable = store.may_edit(who)
    if editable and form is None:
        form = _article_form(directory, data=form_data(store.row_data(row)))
    history = [
        (revision, [(field_label(c.field), c) for c in changes])
        for revision, changes in store.history(session, row.id)
    ]
    page = render_template(
        "console/knowledge_article.html",
        article=row,
        data=store.row_data(row),
        locales=LOCALES,
        locale_names=LOCALE_NAMES,
        locale_fields=LOCALE_FIELDS,
        directory=directory,
        history=history,
        action_label=action_label,
        form=form if editable else None,
        state_form=ArticleStateForm(formdata=None) if editable else None,
        title=_title(row, session_locale()),
        error=error,
    )
    return page, status


@bp.get("/knowledge/<article_id>")
def knowledge_article(article_id: str) -> tuple[str, int]:
    """One article in every language it is written in, its history, and (for the desk) the
    edit form."""
    with db().begin():
        return _render_article(db(), _article(db(), article_id))


@bp.post("/knowledge/<article_id>")
def knowledge_edit(article_id: str) -> Response | tuple[str, int]:
    """Save the desk's edit as a new revision, with its note."""
    who = actor()
    _require_editor()
    session = db()
    try:
        with session.begin():
            row = _article(session, article_id)
            form = _article_form(directory_now(session))
            if not form.validate_on_submit():
                return _render_article(session, row, form=form, status=400)
            revision = store.edit_article(
                session,
                article_id=row.id,
                data=form.as_data(row.id),
                editor=who.name,
                note=form.note.data,
            )
    except ArticleError as problem:
        # The transaction has rolled back; the form is shown again as it was posted.
        with session.begin():
            row = _article(session, article_id)
            message = _("The article could not be saved: %(reason)s", reason=str(problem))
            return _render_article(session, row, form=form, error=message, status=400)
    log.info("knowledge article edited", extra={"article_id": article_id, "username": who.name})
    if revision is None:
        flash(_("Nothing changed; no new revision was saved."), "info")
    else:
        flash(_("Saved as revision %(revision)d.", revision=revision.revision), "success")
    return redirect(url_for(".knowledge_article", article_id=article_id))


def _set_state(article_id: str, *, retire: bool) -> Response | tuple[str, int]:
    who = actor()
    _require_editor()
    session = db()
    with session.begin():
        row = _article(session, article_id)
        form = ArticleStateForm()
        if not form.validate_on_submit():
            message = _("Say why, then try again.")
            return _render_article(session, row, error=message, status=400)
        change = store.retire_article if retire else store.restore_article
        change(session, article_id=row.id, editor=who.name, note=form.note.data)
    if retire:
        flash(_("The article is retired: calls and the FAQ no longer use it."), "success")
    else:
        flash(_("The article is back in use."), "success")
    return redirect(url_for(".knowledge_article", article_id=article_id))


@bp.post("/knowledge/<article_id>/retire")
def knowledge_retire(article_id: str) -> Response | tuple[str, int]:
    """Take the article out of use (kept, with its history)."""
    return _set_state(article_id, retire=True)


@bp.post("/knowledge/<article_id>/restore")
def knowledge_restore(article_id: str) -> Response | tuple[str, int]:
    """Put a retired article back in use."""
    return _set_state(article_id, retire=False)


def _render_new(
    form: ArticleForm, *, error: str | None = None, status: int = 200
) -> tuple[str, int]:
    page = render_template(
        "console/knowledge_new.html",
        form=form,
        locale_fields=LOCALE_FIELDS,
        locale_names=LOCALE_NAMES,
        from_case=request.args.get("case") or request.form.get("from_case") or "",
        error=error,
    )
    return page, status


@bp.get("/knowledge/new")
def knowledge_new() -> tuple[str, int]:
    """The form for a new article; `?case=NUMBER` starts it from a resolved case's question
    and answer."""
    _require_editor()
    session = db()
    with session.begin():
        directory = directory_now(session)
        number = request.args.get("case")
        if number:
            case = get_visible_case(session, actor=actor(), number=number)
            if case.status not in (CaseStatus.RESOLVED, CaseStatus.CLOSED) or not case.resolution:
                raise InvalidInputError(_("Only a case with an answer can become an article."))
            draft = store.article_from_case(case)
            form = _article_form(directory, NewArticleForm, data=form_data(draft))
            form.note.data = _("From the answer to case %(number)s", number=case.number)
        else:
            form = _article_form(directory, NewArticleForm, formdata=None)
        return _render_new(form)


@bp.post("/knowledge/new")
def knowledge_create() -> Response | tuple[str, int]:
    """Save a new article as revision 1."""
    who = actor()
    _require_editor()
    session = db()
    form = NewArticleForm()
    try:
        with session.begin():
            _choices(form, directory_now(session))
            if not form.validate_on_submit():
                return _render_new(form, status=400)
            article_id = form.article_id.data.strip()
            source = ArticleSource.CASE if request.form.get("from_case") else ArticleSource.DESK
            store.create_article(
                session,
                data=form.as_data(article_id),
                editor=who.name,
                note=form.note.data,
                source=source,
            )
    except store.ArticleExistsError:
        form.article_id.errors = [_("An article with this id exists already.")]
        return _render_new(form, status=400)
    except ArticleError as problem:
        message = _("The article could not be saved: %(reason)s", reason=str(problem))
        return _render_new(form, error=message, status=400)
    log.info("knowledge article created", extra={"article_id": article_id, "username": who.name})
    flash(_("Article saved."), "success")
    return redirect(url_for(".knowledge_article", article_id=article_id))
