"""The knowledge base a process serves: the articles in the database, and a Retriever over them
rebuilt only when they change.

Correctness never rests on one process's memory: each `suggest` reads `knowledge_version` (one
cheap aggregate query) and rebuilds when it differs from the version the Retriever was built
from, so an edit made in the console reaches every web and worker process on its next question.
With no article in the database yet (before `flask init` seeds them), the shipped files serve.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

from sqlalchemy.orm import Session

from knowledge.articles import DEFAULT_ARTICLES_DIR, Article, load_articles
from knowledge.retrieval import Retriever, Suggestion
from knowledge.store import active_articles, knowledge_version

log = logging.getLogger("hotline.knowledge")
RetrieverBuilder = Callable[[Sequence[Article]], Retriever]
# Retrievers built in this process, by the content of their articles: several apps (or a
# reseed that changes nothing) share one build. Keyed on content, so never stale.
_BUILT: OrderedDict[str, Retriever] = OrderedDict()
_BUILT_LIMIT = 4
_BUILT_LOCK = threading.Lock()


def _content_key(articles: Sequence[Article]) -> str:
    data = [
        [a.id, a.category, a.department, {k: t.as_dict() for k, t in a.texts.items()}]
        for a in articles
    ]
    return hashlib.sha256(json.dumps(data, ensure_ascii=False).encode()).hexdigest()


def build_shared(articles: Sequence[Article]) -> Retriever:
    """`Retriever.build`, reusing a Retriever this process already built from the same
    articles."""
    key = _content_key(articles)
    with _BUILT_LOCK:
        if key in _BUILT:
            _BUILT.move_to_end(key)
            return _BUILT[key]
        retriever = Retriever.build(articles)
        _BUILT[key] = retriever
        while len(_BUILT) > _BUILT_LIMIT:
            _BUILT.popitem(last=False)
        return retriever


class KnowledgeBase:
    """`suggest` answers a text from the current articles; the Retriever is cached per version.

    A build is seconds of CPU. It never runs inside anyone's transaction, and never on the
    caller's thread: on SQLite every transaction holds the write gate, one lock for every
    process, so a build inside one stalled the whole hotline (every webhook waited). The articles
    are read in a short session of the base's own, which is closed before the build starts; a
    question asked meanwhile is answered by the previous version's Retriever, or not at all
    before the first build (`suggest` gives None, and the call goes on as a case).
    """

    def __init__(
        self,
        sessions: Callable[[], Session],
        *,
        articles_dir: Path = DEFAULT_ARTICLES_DIR,
        build: RetrieverBuilder = build_shared,
    ) -> None:
        self._sessions = sessions
        self._articles_dir = articles_dir
        self._build = build
        self._lock = threading.Lock()
        self._version: str | None = None
        self._retriever: Retriever | None = None
        self._building: threading.Thread | None = None
        self.builds = 0

    def current(self, session: Session) -> Retriever | None:
        """The Retriever for the articles as `session` sees their version; if they changed, a
        build starts in the background and the previous Retriever (or None) serves meanwhile."""
        version = knowledge_version(session)
        with self._lock:
            if self._retriever is not None and version == self._version:
                return self._retriever
            retriever = self._retriever
        self.build_in_background()
        return retriever

    def build_in_background(self) -> threading.Thread:
        """Start a build unless one is running; the running (or new) build's thread."""
        with self._lock:
            if self._building is None or not self._building.is_alive():
                self._building = threading.Thread(
                    target=self._build_logged, name="knowledge-build", daemon=True
                )
                self._building.start()
            return self._building

    def ready(self, timeout: float | None = None) -> Retriever:
        """The Retriever for the articles as they are now, built first if they changed (for
        the commands, the evaluation and a process's start); TimeoutError if not built in time."""
        # A second pass covers an edit made while the first build read the articles.
        for _ in range(3):
            with self._sessions() as session:
                version = knowledge_version(session)
            with self._lock:
                if self._retriever is not None and version == self._version:
                    return self._retriever
            building = self.build_in_background()
            building.join(timeout)
            if building.is_alive():
                raise TimeoutError("the knowledge base is still being built")
        raise RuntimeError("the knowledge base could not be built (the log says why)")

    def _build_logged(self) -> None:
        try:
            self._build_now()
        except Exception:
            log.exception("could not build the knowledge base; the next question tries again")

    def _build_now(self) -> None:
        with self._sessions() as session, session.begin():
            version = knowledge_version(session)
            articles = active_articles(session)
        if not articles and version.startswith("0:"):
            # Nothing seeded yet: the shipped files are the knowledge base.
            articles = load_articles(self._articles_dir)
        retriever = self._build(articles)  # no session open: seconds of CPU
        with self._lock:
            self._retriever, self._version = retriever, version
            self.builds += 1

    def suggest(self, session: Session, text: str, locale: str | None) -> Suggestion | None:
        """The article that answers `text` (with its confidence), or None for a report of a
        problem, when nothing fits, or before the first build is done."""
        retriever = self.current(session)
        return retriever.ask(text, locale) if retriever is not None else None
