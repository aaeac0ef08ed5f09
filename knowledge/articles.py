"""Knowledge-base articles: their shape, and loading them from `config/knowledge/articles/`.

One TOML file per article, named after its id, with one table per locale (`zh-CN`, `en-US`,
`ko-KR`). The files are the city's seed: `flask init` copies them into the database, where the
desk edits them (`knowledge.store`); retrieval reads whichever source it is given.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from cases.locales import LOCALES

DEFAULT_ARTICLES_DIR = Path(__file__).resolve().parent.parent / "config" / "knowledge" / "articles"

ID_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# The spoken answer must be said in under 40 seconds. Rates of a text-to-speech voice at its
# normal speed, with a margin: Mandarin about 4.5 characters a second, Korean about 6 syllables,
# English about 2.5 words.
MAX_SPOKEN_SECONDS = 40.0
_RATES = {"zh-CN": 4.5, "ko-KR": 6.0}
_ENGLISH_WORDS_PER_SECOND = 2.5
REQUIRED_FIELDS = ("title", "answer", "details", "questions")
OPTIONAL_FIELDS = ("office", "address", "hours")
MIN_QUESTIONS = 3


class ArticleError(ValueError):
    """An article file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class ArticleText:
    """An article in one language."""

    title: str
    answer: str  # said in the call, under MAX_SPOKEN_SECONDS
    details: str  # the longer version, for the SMS and the web
    questions: tuple[str, ...]  # other ways people ask it (indexed for retrieval)
    office: str = ""
    address: str = ""
    hours: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Plain data, as stored in the database and in the TOML file."""
        data: dict[str, Any] = {
            "title": self.title,
            "answer": self.answer,
            "details": self.details,
            "questions": list(self.questions),
        }
        data.update({name: getattr(self, name) for name in OPTIONAL_FIELDS if getattr(self, name)})
        return data


@dataclass(frozen=True)
class Article:
    """One article: what it answers, in each language it is written in."""

    id: str
    category: str  # a category code of the directory (DESIGN.md), e.g. household_registration
    department: str | None  # the department code of the office that handles it, if any
    reviewed: date
    texts: Mapping[str, ArticleText] = field(default_factory=dict)

    def text(self, locale: str) -> ArticleText:
        """The article in `locale`, or in Mandarin when it is not written in that language."""
        return self.texts.get(locale) or self.texts["zh-CN"]


def speaking_seconds(text: str, locale: str) -> float:
    """About how long a text-to-speech voice takes to say `text` in `locale`."""
    if locale in _RATES:
        return len(re.sub(r"\s", "", text)) / _RATES[locale]
    return len(text.split()) / _ENGLISH_WORDS_PER_SECOND


def article_from_data(data: Mapping[str, Any], *, source: str) -> Article:
    """An article from plain data (a TOML file or a database row); ArticleError names `source`
    and the field that is wrong."""

    def fail(message: str) -> ArticleError:
        return ArticleError(f"{source}: {message}")

    article_id = data.get("id")
    if not isinstance(article_id, str) or not ID_PATTERN.match(article_id):
        raise fail("`id` must be lower-case words joined by hyphens")
    category = data.get("category")
    if not isinstance(category, str) or not category:
        raise fail("`category` must be a category code")
    department = data.get("department")
    if department is not None and not isinstance(department, str):
        raise fail("`department` must be a department code")
    reviewed = data.get("reviewed")
    if isinstance(reviewed, str):
        try:
            reviewed = date.fromisoformat(reviewed)
        except ValueError:
            raise fail("`reviewed` must be a date (YYYY-MM-DD)") from None
    if not isinstance(reviewed, date):
        raise fail("`reviewed` must be a date (YYYY-MM-DD)")
    texts: dict[str, ArticleText] = {}
    for locale in LOCALES:
        if locale in data:
            texts[locale] = _text_from_data(data[locale], fail=fail, locale=locale)
    if "zh-CN" not in texts:
        raise fail("every article needs its Mandarin text, a [zh-CN] table")
    unknown = set(data) - {"id", "category", "department", "reviewed", *LOCALES}
    if unknown:
        raise fail(f"unknown keys {', '.join(sorted(unknown))}")
    return Article(
        id=article_id, category=category, department=department, reviewed=reviewed, texts=texts
    )


def _text_from_data(data: Any, *, fail: Any, locale: str) -> ArticleText:
    if not isinstance(data, Mapping):
        raise fail(f"[{locale}] must be a table")
    for name in REQUIRED_FIELDS:
        if not data.get(name):
            raise fail(f"[{locale}] lacks `{name}`")
    for name in ("title", "answer", "details", *OPTIONAL_FIELDS):
        if name in data and not isinstance(data[name], str):
            raise fail(f"[{locale}] `{name}` must be text")
    questions = data["questions"]
    if not isinstance(questions, list) or not all(isinstance(q, str) and q for q in questions):
        raise fail(f"[{locale}] `questions` must be a list of texts")
    if len(questions) < MIN_QUESTIONS:
        raise fail(f"[{locale}] needs at least {MIN_QUESTIONS} `questions`")
    unknown = set(data) - {*REQUIRED_FIELDS, *OPTIONAL_FIELDS}
    if unknown:
        raise fail(f"[{locale}] has unknown keys {', '.join(sorted(unknown))}")
    seconds = speaking_seconds(data["answer"], locale)
    if seconds > MAX_SPOKEN_SECONDS:
        raise fail(
            f"[{locale}] `answer` takes about {seconds:.0f} s to say; "
            f"keep it under {MAX_SPOKEN_SECONDS:.0f} s and put the rest in `details`"
        )
    return ArticleText(
        title=data["title"].strip(),
        answer=data["answer"].strip(),
        details=data["details"].strip(),
        questions=tuple(q.strip() for q in questions),
        **{name: data.get(name, "").strip() for name in OPTIONAL_FIELDS},
    )


def load_articles(directory: Path = DEFAULT_ARTICLES_DIR) -> list[Article]:
    """Every article in `directory`, sorted by id; ArticleError names the first bad file."""
    articles = []
    for path in sorted(directory.glob("*.toml")):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as error:
            raise ArticleError(f"{path.name}: {error}") from None
        article = article_from_data(data, source=path.name)
        if article.id != path.stem:
            raise ArticleError(f"{path.name}: `id` is {article.id!r}; name the file after it")
        articles.append(article)
    return articles


def article_ids(articles: Iterable[Article]) -> set[str]:
    """The ids of `articles`."""
    return {article.id for article in articles}
