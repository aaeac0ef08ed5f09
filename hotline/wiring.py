"""What the shell wires, as one typed object, and the one way to reach it.

`hotline.factory.wire` builds it. Web requests reach it with `current_wiring()`, and their
database session with `db()`; jobs are given it as their first argument
(`hotline.celery_app.WiredTask`). Adapters import this module and nothing else of the shell;
it imports none of theirs at run time (their types only, for the type checker).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from twilio.request_validator import RequestValidator

    from cases.seats import SeatTelephony
    from delivery.channels import Senders
    from hotline.celery_app import HotlineCelery
    from hotline.config import Settings
    from hotline.db import Database
    from ivr.prompts import Prompts
    from ivr.streams import LiveTranscription
    from ivr.twiml import CallFlow
    from knowledge.base import KnowledgeBase
    from routing.router import Router
    from routing.similarity import MergeRules
    from transcription.models import ModelRegistry

EXTENSION = "hotline"
_SESSION = "hotline_session"


@dataclass(frozen=True)
class Wiring:
    """Everything a web or worker process shares, built once at start-up."""

    settings: Settings
    database: Database
    # The classifier with the directory, gazetteer and calendar it routes with.
    router: Router
    # Vosk models per locale, loaded on first use.
    models: ModelRegistry
    prompts: Mapping[str, Prompts]
    # The IVR: its TwiML, the check of Twilio's signatures, live transcription.
    call_flow: CallFlow
    twilio_validator: RequestValidator
    live: LiveTranscription
    # How messages leave: the settings, and the senders of texts.
    senders: Senders
    celery: HotlineCelery
    # The knowledge base: articles from the database, retrieval rebuilt when they change.
    knowledge: KnowledgeBase
    # The calls the console asks the phone system to make (seats, callbacks, transfers).
    telephony: SeatTelephony
    # When a new report repeats an open case (并单): windows, similarity, radius.
    merge_rules: MergeRules


def wiring_of(app: Flask) -> Wiring:
    """The wiring an app was built with."""
    wiring: Wiring = app.extensions[EXTENSION]
    return wiring


def current_wiring() -> Wiring:
    """The wiring of the app handling this request."""
    return wiring_of(current_app)


def db() -> Session:
    """The request's database session, opened on first use and closed when the request ends.
    Each view owns its transactions on it (`with db().begin(): ...`)."""
    session: Session | None = g.get(_SESSION)
    if session is None:
        session = current_wiring().database.session()
        setattr(g, _SESSION, session)
    return session


def close_request_session() -> None:
    """Close the request's session, if it opened one (at teardown, or after a failure)."""
    session: Session | None = g.pop(_SESSION, None)
    if session is not None:
        session.close()
