"""The departments' JSON API: accept, note, resolve, send back, transfer; per-department API keys.

Each request carries `Authorization: Bearer <key>` (from `flask --app hotline department set CODE
--new-api-key`). The key stands for the department's own system, which then acts as that
department (cases.staff.department_actor) under the rules its staff work by. The contract is
api/openapi.yaml, served at /api/v1/openapi.yaml.

Errors are JSON, `{"error": {"code", "message", "field"?}}`:
- 400: the request cannot be read (not JSON, not an object, a missing, unknown or mistyped field,
  a bad query parameter or Idempotency-Key), or a text holds a character that is not text
  (`invalid_text`: a lone surrogate such as `"\\ud800"`, NUL or another control character; see
  cases.free_text);
- 401: no key, or not a valid one;
- 403: the department may see the case but not do this to it;
- 404: no such case, or one the department may not see (the two answers are identical);
- 405: the path exists, with another method;
- 409: the case is not in a state that allows the action;
- 413: a body over 64 KiB;
- 415: a body that is not `application/json`;
- 422: a well-formed request whose values are not acceptable (an empty or too long text, an
  unknown department), or an Idempotency-Key reused for a different request.

Idempotency: departments' systems retry. Each action takes an optional `Idempotency-Key` header,
or a `request_id` field in its body. The key goes into the data of the event the action adds to
the case's timeline, with a digest of the request. A later request from the same department on
the same case with the same key finds that event, and gets the same answer without a second
effect (marked `Idempotent-Replayed: true`). The case row is locked while this is checked, so two
copies of one request in flight cannot both act. A request that failed left nothing behind, so
its retry simply runs again.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, g, request
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException

from api.routes import CATCH_ALL_METHODS, methods_elsewhere
from cases import lifecycle, numbers, queries, staff
from cases.access import Actor, get_visible_case, visibility
from cases.errors import (
    InvalidInputError,
    InvalidTransitionError,
    NotAllowedError,
    UnknownCaseError,
)
from cases.free_text import CODE, PROSE, BadTextError, TextRule, readable_data
from cases.models import Case, CaseEvent, CaseStatus
from cases.serialise import case_detail, case_summary, event_record
from hotline.wiring import db

bp = Blueprint("api", __name__, url_prefix="/api/v1")

OPENAPI_PATH = Path(__file__).with_name("openapi.yaml")
# Generous for a 4000-character text even with every character escaped as \uXXXX.
MAX_BODY_BYTES = 64 * 1024
DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100
# Visible ASCII only: a key travels in a header, and UUIDs and ULIDs fit.
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,200}")
REQUEST_ID = "request_id"
# The published contract is readable without a key.
PUBLIC_ENDPOINTS = frozenset({"api.openapi_document"})
# How each text field of an action is typed: free text, or a department's code.
FIELD_RULES: dict[str, TextRule] = {
    "text": PROSE,
    "reply": PROSE,
    "reason": PROSE,
    "department": CODE,
}
REALM = 'Bearer realm="hotline-api"'


class ApiError(Exception):
    """An error answer: the HTTP status, a stable code for programs, a message for people."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = dict(headers or {})


def _actor() -> Actor:
    actor: Actor = g.api_actor
    return actor


def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    # Not jsonify: replies and transcripts are mostly Chinese, and readable as sent. Every string
    # is made readable (an error may echo a field's name as sent, "\ud800" and all), and the
    # answer is encoded here, so that one that cannot be sent fails where the caller can still
    # roll back.
    return Response(
        json.dumps(readable_data(body), ensure_ascii=False).encode("utf-8"),
        status=status,
        headers=dict(headers or {}),
        mimetype="application/json",
    )


def _error_answer(
    status: int,
    code: str,
    message: str,
    *,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    error = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return _json({"error": error}, status, headers)


@bp.errorhandler(ApiError)
def api_error(error: ApiError) -> Response:
    """An error found while reading the request."""
    return _error_answer(
        error.status, error.code, error.message, field=error.field, headers=error.headers
    )


@bp.errorhandler(UnknownCaseError)
def unknown_case(error: UnknownCaseError) -> Response:
    """A case that does not exist or that the department may not see: the same answer."""
    return _error_answer(404, "unknown_case", str(error))


@bp.errorhandler(NotAllowedError)
def not_allowed(error: NotAllowedError) -> Response:
    """The department sees the case but may not do this to it."""
    return _error_answer(403, "not_allowed", str(error))


@bp.errorhandler(InvalidTransitionError)
def invalid_transition(error: InvalidTransitionError) -> Response:
    """The case's state does not allow the action."""
    return _error_answer(409, "invalid_transition", str(error))


def _text_refusal(error: BadTextError) -> ApiError:
    """A refused text: 400 for a character that is not text, 422 for a length (as before)."""
    if error.is_character_problem:
        return ApiError(400, "invalid_text", str(error), field=error.field)
    return ApiError(422, "invalid_input", str(error), field=error.field)


@bp.errorhandler(BadTextError)
def bad_text(error: BadTextError) -> Response:
    """A text the lifecycle's free-text rule refused, naming the field."""
    return api_error(_text_refusal(error))


@bp.errorhandler(InvalidInputError)
def invalid_input(error: InvalidInputError) -> Response:
    """Well-formed, but the values are not acceptable to the lifecycle."""
    return _error_answer(422, "invalid_input", str(error))


_HTTP_ERROR_CODES = {413: "body_too_large", 500: "internal_error"}


@bp.errorhandler(HTTPException)
def http_error(error: HTTPException) -> Response:
    """Werkzeug's errors (a body too large, an internal error) in the API's JSON shape."""
    status = error.code or 500
    code = _HTTP_ERROR_CODES.get(status, (error.name or "error").lower().replace(" ", "_"))
    if status >= 500:
        # Nothing committed: a retry with the same Idempotency-Key is safe.
        message = "internal error; nothing was changed, and the request can be retried"
    else:
        message = error.description or error.name
    return _error_answer(status, code, message)


@bp.before_request
def authenticate() -> None:
    """Every endpoint but the published contract needs a department's key."""
    request.max_content_length = MAX_BODY_BYTES
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise ApiError(
            401,
            "unauthorized",
            "send the department's API key as 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": REALM},
        )
    with db().begin():
        department = staff.department_for_api_key(db(), key=key)
        if department is None:
            raise ApiError(
                401,
                "unauthorized",
                "this API key is not valid (a newer key replaces the older one)",
                headers={"WWW-Authenticate": f'{REALM}, error="invalid_token"'},
            )
        g.api_actor = staff.department_actor(department)


# Reading requests ----------------------------------------------------------------------------


def _json_type(value: Any) -> str:
    """How a JSON value's type reads in an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _json_body(*, required: bool) -> dict[str, Any]:
    """The request's JSON object; {} for an action that needs none and was sent none."""
    data = request.get_data(cache=False)
    if not data and not required:
        return {}
    if not request.is_json:
        raise ApiError(
            415,
            "unsupported_media_type",
            "send a JSON object with 'Content-Type: application/json'",
        )
    try:
        body = json.loads(data)
    except ValueError as error:
        raise ApiError(400, "malformed_json", f"the body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise ApiError(
            400, "not_an_object", f"the body must be a JSON object, not {_json_type(body)}"
        )
    return body


def _string(body: Mapping[str, Any], name: str) -> str:
    value = body[name]
    if not isinstance(value, str):
        raise ApiError(
            400,
            "wrong_type",
            f"the field {name!r} must be a string, not {_json_type(value)}",
            field=name,
        )
    return value


def _idempotency_key(body: Mapping[str, Any]) -> str | None:
    """The request's Idempotency-Key header or its `request_id`; they must agree if both."""
    header = request.headers.get("Idempotency-Key")
    in_body = _string(body, REQUEST_ID) if REQUEST_ID in body else None
    if header is not None and in_body is not None and header != in_body:
        raise ApiError(
            400,
            "conflicting_idempotency_keys",
            "the Idempotency-Key header and the request_id field differ; send one of them",
            field=REQUEST_ID,
        )
    key = header if header is not None else in_body
    if key is not None and not IDEMPOTENCY_KEY.fullmatch(key):
        source = "the Idempotency-Key header" if header is not None else f"the field {REQUEST_ID!r}"
        raise ApiError(
            400,
            "invalid_idempotency_key",
            f"{source} must be 1 to 200 visible ASCII characters (a UUID, say)",
            field=REQUEST_ID if header is None else None,
        )
    return key


@dataclass(frozen=True)
class ActionRequest:
    """One action's input: its text fields and, if the sender gave one, its idempotency key."""

    operation: str
    fields: dict[str, str]
    idempotency_key: str | None

    @classmethod
    def from_request(cls, operation: str, *, fields: tuple[str, ...] = ()) -> ActionRequest:
        """Read the action from the request; a bad body raises ApiError before anything runs."""
        body = _json_body(required=bool(fields))
        accepted = (*fields, REQUEST_ID)
        for name in body:
            if name not in accepted:
                raise ApiError(
                    400,
                    "unknown_field",
                    f"unknown field {name!r}; this action takes {', '.join(accepted)}",
                    field=name,
                )
        values: dict[str, str] = {}
        for name in fields:
            if name not in body:
                raise ApiError(400, "missing_field", f"the field {name!r} is required", field=name)
            # Checked here, before any query: a NUL would otherwise reach PostgreSQL, which
            # refuses it with an error rather than an answer.
            try:
                values[name] = FIELD_RULES[name].clean(_string(body, name), field=name)
            except BadTextError as error:
                raise _text_refusal(error) from None
        return cls(operation=operation, fields=values, idempotency_key=_idempotency_key(body))

    @property
    def digest(self) -> str:
        """A fingerprint of what was asked, which tells a replay from a reused key."""
        canonical = json.dumps(
            {"operation": self.operation, "fields": self.fields},
            sort_keys=True,
            ensure_ascii=False,
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


def _whole_number(
    args: MultiDict[str, str], name: str, *, default: int, low: int, high: int
) -> int:
    raw = args.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or not low <= int(raw) <= high:
        raise ApiError(
            400,
            "invalid_parameter",
            f"{name} must be a whole number from {low} to {high}, not {raw!r}",
            field=name,
        )
    return int(raw)


@dataclass(frozen=True)
class CaseQuery:
    """Which of its cases a department asks for: statuses (any if empty) and a page."""

    statuses: tuple[CaseStatus, ...]
    page: int
    per_page: int

    @classmethod
    def from_args(cls, args: MultiDict[str, str]) -> CaseQuery:
        """Read the query string: `status` (repeated or comma-separated), `page`, `per_page`."""
        for name in args:
            if name not in ("status", "page", "per_page"):
                raise ApiError(
                    400,
                    "invalid_parameter",
                    f"unknown query parameter {name!r}; use status, page and per_page",
                    field=name,
                )
        statuses: list[CaseStatus] = []
        for value in args.getlist("status"):
            for item in value.split(","):
                try:
                    statuses.append(CaseStatus(item.strip()))
                except ValueError:
                    known = ", ".join(status.value for status in CaseStatus)
                    raise ApiError(
                        400,
                        "invalid_parameter",
                        f"unknown status {item.strip()!r}; the statuses are {known}",
                        field="status",
                    ) from None
        return cls(
            statuses=tuple(dict.fromkeys(statuses)),
            # The upper bound only keeps the offset a sane number.
            page=_whole_number(args, "page", default=1, low=1, high=1_000_000),
            per_page=_whole_number(
                args, "per_page", default=DEFAULT_PER_PAGE, low=1, high=MAX_PER_PAGE
            ),
        )


# Writing answers -----------------------------------------------------------------------------


def _action_answer(
    session: Session, *, actor: Actor, case: Case, event: CaseEvent | None
) -> dict[str, Any]:
    """The event an action added, and the case after it unless that is now out of sight (a
    send-back, or a transfer of a case the department had not accepted)."""
    still_visible = session.scalar(select(Case.id).where(visibility(actor), Case.id == case.id))
    return {
        "event": event_record(event) if event is not None else None,
        "case": case_summary(case) if still_visible is not None else None,
    }


# Endpoints -----------------------------------------------------------------------------------


@bp.get("/openapi.yaml")
def openapi_document() -> Response:
    """The API's OpenAPI 3.1 description; no key needed."""
    return Response(OPENAPI_PATH.read_bytes(), mimetype="application/yaml")


@bp.get("/cases")
def list_cases() -> Response:
    """The department's cases, soonest deadline first, optionally by status, a page at a time."""
    query = CaseQuery.from_args(request.args)
    session = db()
    with session.begin():
        cases = queries.inbox(_actor(), statuses=query.statuses or None)
        total = session.scalar(select(func.count()).select_from(cases.subquery())) or 0
        page = session.scalars(
            cases.options(selectinload(Case.transcript))
            .offset((query.page - 1) * query.per_page)
            .limit(query.per_page)
        ).all()
        body = {
            "cases": [case_summary(case) for case in page],
            "page": query.page,
            "per_page": query.per_page,
            "total": total,
            "next_page": query.page + 1 if query.page * query.per_page < total else None,
        }
        response = _json(body)
    return response


@bp.get("/cases/<number>")
def show_case(number: str) -> Response:
    """One case, with the caller's number masked and its timeline."""
    with db().begin():
        case = get_visible_case(db(), actor=_actor(), number=number)
        response = _json(case_detail(case))
    return response


Perform = Callable[[Session, Case, Actor], object]


def _earlier_request(case: Case, *, actor: Actor, key: str) -> CaseEvent | None:
    """The event an earlier request from this department with this key added to the case."""
    return next(
        (
            event
            for event in case.events
            if event.actor == actor.name and event.data.get("idempotency_key") == key
        ),
        None,
    )


def _act(number: str, action: ActionRequest, *, kind: str, perform: Perform) -> Response:
    """Run one action on a case in one transaction, or replay the answer to an earlier copy."""
    actor = _actor()
    key = action.idempotency_key
    if not numbers.could_be_a_case_number(number):
        raise UnknownCaseError(number)  # before the lock's query: PostgreSQL refuses a NUL
    session = db()
    with session.begin():
        # Lock the case before looking for an earlier copy: two copies of one request in
        # flight then run one after the other, and the second finds the first's event.
        locked = session.scalars(
            select(Case).where(Case.number == number).with_for_update()
        ).one_or_none()
        if locked is not None and key is not None:
            # Looked up before the visibility check: a transfer can take the case out of the
            # department's sight, and the retry of that transfer must still get its answer.
            earlier = _earlier_request(locked, actor=actor, key=key)
            if earlier is not None:
                if earlier.data.get("request_digest") != action.digest:
                    raise ApiError(
                        422,
                        "idempotency_key_reused",
                        "this idempotency key was used for a different request on this case",
                    )
                answer = _action_answer(session, actor=actor, case=locked, event=earlier)
                return _json(answer, headers={"Idempotent-Replayed": "true"})
        case = get_visible_case(session, actor=actor, number=number)
        before = {event.id for event in case.events}
        perform(session, case, actor)
        session.flush()
        added = [event for event in case.events if event.kind == kind and event.id not in before]
        if added and key is not None:
            # A new dict, so that the JSON column sees the change.
            added[-1].data = {
                **added[-1].data,
                "idempotency_key": key,
                "request_digest": action.digest,
            }
        # A repeated accept adds nothing: answer with the event of the accept that counted.
        event = next((e for e in reversed(case.events) if e.kind == kind), None)
        # The answer is encoded before the commit: if it cannot be, the action rolls back and
        # the 500 that says "nothing was changed" is true.
        response = _json(_action_answer(session, actor=actor, case=case, event=event))
    return response


@bp.post("/cases/<number>/accept")
def accept(number: str) -> Response:
    """Take the case; the department becomes first-responsible for it. Repeating is harmless."""
    action = ActionRequest.from_request("accept")
    return _act(
        number,
        action,
        kind="accepted",
        perform=lambda session, case, actor: lifecycle.accept(session, case=case, actor=actor),
    )


@bp.post("/cases/<number>/notes")
def add_note(number: str) -> Response:
    """Add a working note to the case's timeline."""
    action = ActionRequest.from_request("note", fields=("text",))
    return _act(
        number,
        action,
        kind="note",
        perform=lambda session, case, actor: lifecycle.add_note(
            session, case=case, actor=actor, text=action.fields["text"]
        ),
    )


@bp.post("/cases/<number>/resolve")
def resolve(number: str) -> Response:
    """Resolve the case with a reply, which is texted to the caller with a request to rate."""
    action = ActionRequest.from_request("resolve", fields=("reply",))
    return _act(
        number,
        action,
        kind="resolved",
        perform=lambda session, case, actor: lifecycle.resolve(
            session, case=case, actor=actor, reply=action.fields["reply"]
        ),
    )


@bp.post("/cases/<number>/send-back")
def send_back(number: str) -> Response:
    """Return an unaccepted case to the dispatch desk (退单), saying why it is not ours."""
    action = ActionRequest.from_request("send_back", fields=("reason",))
    return _act(
        number,
        action,
        kind="sent_back",
        perform=lambda session, case, actor: lifecycle.send_back(
            session, case=case, actor=actor, reason=action.fields["reason"]
        ),
    )


@bp.post("/cases/<number>/transfer")
def transfer(number: str) -> Response:
    """Hand the case to another department, with a reason; first-responsibility stays put."""
    action = ActionRequest.from_request("transfer", fields=("department", "reason"))
    return _act(
        number,
        action,
        kind="transferred",
        perform=lambda session, case, actor: lifecycle.transfer(
            session,
            case=case,
            actor=actor,
            department_code=action.fields["department"],
            reason=action.fields["reason"],
        ),
    )


# Last: any other path under /api/v1 lands here (after the key check), so that a department's
# system gets a JSON answer it can read rather than an HTML page.
@bp.route("/", defaults={"path": ""}, methods=CATCH_ALL_METHODS)
@bp.route("/<path:path>", methods=CATCH_ALL_METHODS)
def no_such_endpoint(path: str) -> Response:
    """A JSON 405 where the path takes other methods, else a JSON 404."""
    methods = methods_elsewhere()
    if methods:
        raise ApiError(
            405,
            "method_not_allowed",
            f"{request.method} is not allowed here; use {', '.join(methods)}",
            headers={"Allow": ", ".join(methods)},
        )
    raise ApiError(404, "not_found", f"no API endpoint at {request.path}")
