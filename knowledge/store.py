"""The knowledge base's home in the database: the desk's articles, their revisions, and who
may read or edit them.

`flask init` seeds the articles from `config/knowledge/articles/` (`seed_articles`); from then
on the desk edits them in the console, and every change (an edit, a retirement, a restoration,
a newer seed file) is a new `KnowledgeRevision` naming who made it and why. Retrieval reads
`active_articles` and rebuilds only when `knowledge_version` changes. Like the rest of the
domain, nothing here commits: the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cases.access import Actor
from cases.locales import LOCALES
from cases.models import (
    ArticleSource,
    Case,
    KnowledgeArticle,
    KnowledgeRevision,
    Role,
    utcnow,
)
from knowledge.articles import OPTIONAL_FIELDS, Article, ArticleError, article_from_data

SEED_EDITOR = "seed"
# What a revision did besides (or instead of) changing the text.
EDIT, RETIRE, RESTORE, CREATE = "edit", "retire", "restore", "create"
MAX_NOTE_LENGTH = 500


class UnknownArticleError(LookupError):
    """No article with that id (or none this person may read)."""

    def __init__(self, article_id: str) -> None:
        super().__init__(f"no knowledge-base article {article_id!r}")
        self.article_id = article_id


class ArticleExistsError(ValueError):
    """An article with that id exists already."""

    def __init__(self, article_id: str) -> None:
        super().__init__(f"an article {article_id!r} exists already")
        self.article_id = article_id


# --- who may read and edit ------------------------------------------------------------------


def may_edit(actor: Actor) -> bool:
    """The desk (dispatchers, admins and the hotline office's own staff) keeps the knowledge
    base; everyone else only reads it."""
    return actor.is_desk


def department_scope(actor: Actor) -> str | None:
    """The one department whose articles the actor may read, or None for every article.

    Department staff read the articles of their own department: those are the answers they
    are asked to keep right, and the rest of the city's answers are the desk's business. The
    desk's own staff (and everyone else) read all of them."""
    if actor.role == Role.DEPARTMENT and not actor.is_desk:
        return actor.department_code or ""
    return None


def may_read(actor: Actor, row: KnowledgeArticle) -> bool:
    """Whether the actor may read this article."""
    scope = department_scope(actor)
    return scope is None or row.department == scope


# --- rows and articles ----------------------------------------------------------------------


def article_data(article: Article) -> dict[str, Any]:
    """An article as plain data, as in its TOML file (the form `article_from_data` reads)."""
    data: dict[str, Any] = {
        "id": article.id,
        "category": article.category,
        "department": article.department,
        "reviewed": article.reviewed.isoformat(),
    }
    data.update({locale: text.as_dict() for locale, text in article.texts.items()})
    return data


def row_data(row: KnowledgeArticle) -> dict[str, Any]:
    """The stored article as plain data."""
    data: dict[str, Any] = {
        "id": row.id,
        "category": row.category,
        "department": row.department,
        "reviewed": row.reviewed.isoformat(),
    }
    data.update({locale: dict(text) for locale, text in (row.texts or {}).items()})
    return data


def as_article(row: KnowledgeArticle) -> Article:
    """The stored article as retrieval and the IVR use it."""
    return article_from_data(row_data(row), source=f"article {row.id}")


def _write(row: KnowledgeArticle, article: Article) -> None:
    row.category = article.category
    row.department = article.department
    row.reviewed = article.reviewed
    row.texts = {locale: text.as_dict() for locale, text in article.texts.items()}


def _add_revision(
    session: Session, row: KnowledgeArticle, *, editor: str, note: str, action: str
) -> KnowledgeRevision:
    """Record the row as it now stands as its next revision."""
    revision = KnowledgeRevision(
        article_id=row.id,
        revision=row.revision,
        snapshot={**row_data(row), "retired": row.retired},
        editor=editor,
        note=note,
        action=action,
    )
    row.updated_at = utcnow()
    row.updated_by = editor
    session.add(revision)
    return revision


def get_article(
    session: Session, article_id: str, *, actor: Actor | None = None
) -> KnowledgeArticle:
    """The stored article, or UnknownArticleError (also when `actor` may not read it)."""
    row = session.get(KnowledgeArticle, article_id)
    if row is None or (actor is not None and not may_read(actor, row)):
        raise UnknownArticleError(article_id)
    return row


# --- seeding --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeedResult:
    """What seeding did: ids added, ids updated from a newer file, ids kept as the desk left
    them."""

    added: list[str]
    updated: list[str]
    kept: list[str]


def _touched_by_staff(row: KnowledgeArticle) -> bool:
    return row.source != ArticleSource.SEED or row.updated_by != SEED_EDITOR


def seed_articles(session: Session, articles: Iterable[Article]) -> SeedResult:
    """Load the shipped articles: add the missing ones (revision 1), update an untouched seed
    article whose file changed (a new revision by "seed"), and never overwrite an article the
    desk has edited, retired or written itself. Safe to run again."""
    added: list[str] = []
    updated: list[str] = []
    kept: list[str] = []
    existing = {row.id: row for row in session.scalars(select(KnowledgeArticle))}
    for article in articles:
        row = existing.get(article.id)
        if row is None:
            row = KnowledgeArticle(
                id=article.id,
                source=ArticleSource.SEED,
                revision=1,
                retired=False,
                created_at=utcnow(),
            )
            _write(row, article)
            session.add(row)
            _add_revision(session, row, editor=SEED_EDITOR, note="", action=CREATE)
            added.append(article.id)
        elif _touched_by_staff(row):
            kept.append(article.id)
        elif row_data(row) != article_data(article):
            _write(row, article)
            row.revision += 1
            _add_revision(session, row, editor=SEED_EDITOR, note="", action=EDIT)
            updated.append(article.id)
    session.flush()
    return SeedResult(added=added, updated=updated, kept=kept)


# --- reading ---------------------------------------------------------------------------------


def active_articles(session: Session) -> list[Article]:
    """Every article not retired, by id: what retrieval indexes and the FAQ shows."""
    rows = session.scalars(
        select(KnowledgeArticle)
        .where(KnowledgeArticle.retired.is_(False))
        .order_by(KnowledgeArticle.id)
    )
    return [as_article(row) for row in rows]


def knowledge_version(session: Session) -> str:
    """A short token that changes whenever any article changes (one cheap aggregate query):
    the number of articles, the sum of their revision numbers and the latest change."""
    count, revisions, latest = session.execute(
        select(
            func.count(KnowledgeArticle.id),
            func.coalesce(func.sum(KnowledgeArticle.revision), 0),
            func.max(KnowledgeArticle.updated_at),
        )
    ).one()
    stamp = latest.isoformat() if hasattr(latest, "isoformat") else str(latest or "")
    return f"{count}:{revisions}:{stamp}"


def search_articles(
    session: Session,
    query: str,
    locale: str,
    *,
    actor: Actor | None = None,
    include_retired: bool = False,
) -> list[KnowledgeArticle]:
    """The articles whose id, title or questions (in any language, `locale`'s first) contain
    `query`, case-insensitively; all of them for an empty query. For the desk's list: the
    knowledge base has tens of articles, so the match runs here rather than in SQL, where JSON
    text is stored escaped on some databases."""
    statement = select(KnowledgeArticle).order_by(KnowledgeArticle.category, KnowledgeArticle.id)
    if not include_retired:
        statement = statement.where(KnowledgeArticle.retired.is_(False))
    scope = department_scope(actor) if actor is not None else None
    if scope is not None:
        statement = statement.where(KnowledgeArticle.department == scope)
    needle = query.strip().casefold()
    rows = list(session.scalars(statement))
    if not needle:
        return rows
    ordered_locales = [locale, *(other for other in LOCALES if other != locale)]

    def matches(row: KnowledgeArticle) -> bool:
        haystack = [row.id]
        for each in ordered_locales:
            text = (row.texts or {}).get(each) or {}
            haystack.append(str(text.get("title", "")))
            haystack.extend(str(question) for question in text.get("questions", []))
        return any(needle in item.casefold() for item in haystack)

    return [row for row in rows if matches(row)]


def revisions(session: Session, article_id: str) -> list[KnowledgeRevision]:
    """The article's revisions, newest first."""
    return list(
        session.scalars(
            select(KnowledgeRevision)
            .where(KnowledgeRevision.article_id == article_id)
            .order_by(KnowledgeRevision.revision.desc())
        )
    )


@dataclass(frozen=True)
class FieldChange:
    """One field a revision changed: where (`zh-CN.answer`, `category`), before and after."""

    field: str
    before: str
    after: str


def _flat(snapshot: Mapping[str, Any]) -> dict[str, str]:
    flat: dict[str, str] = {}
    for key in ("category", "department", "reviewed", "retired"):
        value = snapshot.get(key)
        flat[key] = "" if value is None else str(value)
    for locale in LOCALES:
        text = snapshot.get(locale) or {}
        for name in ("title", "answer", "details", *OPTIONAL_FIELDS):
            flat[f"{locale}.{name}"] = str(text.get(name, ""))
        flat[f"{locale}.questions"] = "\n".join(text.get("questions", []))
    return flat


def changes(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> list[FieldChange]:
    """The fields that differ between two revisions' snapshots (all filled ones for the
    first)."""
    old, new = _flat(before or {}), _flat(after)
    return [
        FieldChange(field=name, before=old[name], after=new[name])
        for name in new
        if old[name] != new[name]
    ]


def history(session: Session, article_id: str) -> list[tuple[KnowledgeRevision, list[FieldChange]]]:
    """Each revision, newest first, with the fields it changed from the one before."""
    found = revisions(session, article_id)
    result = []
    for index, revision in enumerate(found):
        previous = found[index + 1].snapshot if index + 1 < len(found) else None
        result.append((revision, changes(previous, revision.snapshot)))
    return result


# --- editing ---------------------------------------------------------------------------------


def _clean_note(note: str) -> str:
    note = (note or "").strip()
    if not note:
        raise ArticleError("a change needs a note saying why")
    if len(note) > MAX_NOTE_LENGTH:
        raise ArticleError(f"keep the note under {MAX_NOTE_LENGTH} characters")
    return note


def create_article(
    session: Session,
    *,
    data: Mapping[str, Any],
    editor: str,
    note: str,
    source: ArticleSource = ArticleSource.DESK,
) -> KnowledgeArticle:
    """A new article written by the desk (or made from a case), as revision 1; ArticleError
    names what is wrong, ArticleExistsError if the id is taken."""
    note = _clean_note(note)
    article = article_from_data(data, source="the new article")
    if session.get(KnowledgeArticle, article.id) is not None:
        raise ArticleExistsError(article.id)
    row = KnowledgeArticle(
        id=article.id, source=source, revision=1, retired=False, created_at=utcnow()
    )
    _write(row, article)
    session.add(row)
    _add_revision(session, row, editor=editor, note=note, action=CREATE)
    session.flush()
    return row


def edit_article(
    session: Session, *, article_id: str, data: Mapping[str, Any], editor: str, note: str
) -> KnowledgeRevision | None:
    """Save the desk's edit as a new revision by `editor`, with a note; None when nothing
    changed. `data` is the whole article as plain data (its id stays the article's)."""
    row = get_article(session, article_id)
    note = _clean_note(note)
    article = article_from_data({**data, "id": article_id}, source=f"article {article_id}")
    if article_data(article) == row_data(row):
        return None
    _write(row, article)
    row.revision += 1
    revision = _add_revision(session, row, editor=editor, note=note, action=EDIT)
    session.flush()
    return revision


def _set_retired(
    session: Session, *, article_id: str, retired: bool, editor: str, note: str
) -> KnowledgeRevision | None:
    row = get_article(session, article_id)
    note = _clean_note(note)
    if row.retired == retired:
        return None
    row.retired = retired
    row.revision += 1
    revision = _add_revision(
        session, row, editor=editor, note=note, action=RETIRE if retired else RESTORE
    )
    session.flush()
    return revision


def retire_article(
    session: Session, *, article_id: str, editor: str, note: str
) -> KnowledgeRevision | None:
    """Take the article out of retrieval and the FAQ (kept, with its history); None if it was
    retired already."""
    return _set_retired(session, article_id=article_id, retired=True, editor=editor, note=note)


def restore_article(
    session: Session, *, article_id: str, editor: str, note: str
) -> KnowledgeRevision | None:
    """Put a retired article back; None if it was not retired."""
    return _set_retired(session, article_id=article_id, retired=False, editor=editor, note=note)


def article_from_case(case: Case) -> dict[str, Any]:
    """A draft article from a resolved case: the caller's words as the question, the reply
    they were given as the answer. For the desk to finish (title, questions) before saving;
    it is not valid as it stands."""
    question = (case.transcript.text if case.transcript is not None else "").strip()
    answer = (case.resolution or "").strip()
    return {
        "id": f"case-{case.number}",
        "category": case.category_code or "consultation",
        "department": case.department_code,
        "reviewed": utcnow().date().isoformat(),
        case.locale: {
            "title": "",
            "answer": answer,
            "details": answer,
            "questions": [question] if question else [],
        },
    }
