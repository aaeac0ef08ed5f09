"""Open311 GeoReport v2 under /open311/v2 (http://wiki.open311.org/GeoReport_v2), with
FixMyStreet's `servicerequestupdates` extension, each resource in `.xml` and `.json`.

- `discovery`, `services`, `services/{code}`: the categories as services (no attributes);
- `requests` GET (`service_request_id`, `service_code`, `start_date`, `end_date`, `status`) and
  POST (needs `api_key`, from `flask --app hotline open311 key add NAME`), `requests/{id}`,
  `tokens/{token}`: a case is a service request, its number the id;
- `servicerequestupdates` GET (our status changes) and POST (a citizen's update, with a key).

XML is built element by element in the spec's order; JSON is the same fields in the same order
(lists where the spec shows lists). Errors are the spec's `errors` document: 403 for a missing
or wrong key, 404 for an unknown service code, request, token or resource, 400 for any other
request that cannot be served (a malformed date, no location), 429 when a client posts too fast.
What the domain decides (statuses, what is public, the retry rule) is in cases/open311.py.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import HTTPException

from api.routes import CATCH_ALL_METHODS, methods_elsewhere
from cases import open311
from cases.errors import InvalidInputError, UnknownCaseError
from cases.free_text import readable_data
from cases.locales import DEFAULT_LOCALE, LOCALES
from cases.models import utcnow
from hotline.wiring import current_wiring, db
from routing.tasks import enqueue_routing

bp = Blueprint("open311", __name__, url_prefix="/open311/v2")

WORDING_PATH = Path(__file__).resolve().parents[1] / "config" / "open311.toml"
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
# When this server's GeoReport interface last changed (the discovery document's changeset).
CHANGESET = "2026-12-04T00:00:00+08:00"
FMT = "<any(json, xml):fmt>"
CONTENT_TYPES = {"xml": "text/xml; charset=utf-8", "json": "application/json; charset=utf-8"}
# The element each list's items take in XML (the spec's plural and singular names).
XML_ITEMS = {
    "endpoints": "endpoint",
    "formats": "format",
    "attributes": "attribute",
    "values": "value",
}
MAX_BODY_BYTES = 64 * 1024


class Open311Error(Exception):
    """An answer in the spec's `errors` document, with its HTTP status."""

    def __init__(
        self, status: int, description: str, *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.headers = dict(headers or {})


@functools.cache
def _wording() -> dict[str, dict[str, str]]:
    return open311.load_wording(WORDING_PATH)


def _zone() -> ZoneInfo:
    return ZoneInfo(current_wiring().router.calendar.timezone)


def _locale() -> str:
    """The answer's language: `locale` if the client names one, else its Accept-Language."""
    asked = request.values.get("locale", "")
    if asked in LOCALES:
        return asked
    return request.accept_languages.best_match(LOCALES) or DEFAULT_LOCALE


def _speech() -> open311.Speech:
    return open311.speech(db(), wording=_wording(), locale=_locale(), zone=_zone())


# Rendering -----------------------------------------------------------------------------------


def _xml_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _xml_element(parent: ElementTree.Element, name: str, value: Any) -> None:
    element = ElementTree.SubElement(parent, name)
    if isinstance(value, Mapping):
        for key, item in value.items():
            _xml_element(element, key, item)
    elif isinstance(value, list):
        for item in value:
            _xml_element(element, XML_ITEMS[name], item)
    else:
        element.text = _xml_text(value)


def _xml(root: str, item: str | None, body: Any) -> bytes:
    """The document: `<root>` with one `<item>` per record, or the record's fields in it."""
    element = ElementTree.Element(root)
    records = body if item is not None else [body]
    for record in records:
        parent = ElementTree.SubElement(element, item) if item is not None else element
        for key, value in record.items():
            _xml_element(parent, key, value)
    # The spec's declaration, in its own quotes (ElementTree's would be single-quoted).
    declaration = b'<?xml version="1.0" encoding="utf-8"?>\n'
    return declaration + ElementTree.tostring(element, encoding="unicode").encode("utf-8")


def _answer(
    fmt: str,
    body: Any,
    *,
    root: str,
    item: str | None,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The body in the format asked for: XML under `root`, JSON as the spec shows it."""
    body = readable_data(body)
    if fmt == "json":
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    else:
        data = _xml(root, item, body)
    return Response(
        data, status=status, headers=dict(headers or {}), content_type=CONTENT_TYPES[fmt]
    )


def _format_of_path() -> str:
    """The format an error is written in: the path's own, XML (the required one) otherwise."""
    return "json" if request.path.endswith(".json") else "xml"


def _errors(status: int, description: str, headers: Mapping[str, str] | None = None) -> Response:
    fmt = (request.view_args or {}).get("fmt") or _format_of_path()
    return _answer(
        fmt,
        [{"code": status, "description": description}],
        root="errors",
        item="error",
        status=status,
        headers=headers,
    )


@bp.errorhandler(Open311Error)
def open311_error(error: Open311Error) -> Response:
    """An error found while reading the request."""
    return _errors(error.status, error.description, error.headers)


@bp.errorhandler(UnknownCaseError)
def unknown_request(error: UnknownCaseError) -> Response:
    """No case has that number: the spec's 404."""
    return _errors(404, f"service_request_id {error.number!r} was not found")


@bp.errorhandler(open311.UnknownServiceError)
@bp.errorhandler(open311.UnknownTokenError)
def unknown_resource(error: InvalidInputError) -> Response:
    """An unknown service code or token: the spec's 404."""
    return _errors(404, str(error))


@bp.errorhandler(InvalidInputError)
def bad_request(error: InvalidInputError) -> Response:
    """A parameter that is missing, malformed or refused: the spec's 400."""
    return _errors(400, str(error))


@bp.errorhandler(HTTPException)
def http_error(error: HTTPException) -> Response:
    """Werkzeug's errors (a body too large, an internal error) as an errors document."""
    status = error.code or 500
    if status >= 500:
        return _errors(
            status, "internal error; nothing was changed, and the request can be retried"
        )
    return _errors(status, error.description or error.name)


@bp.before_request
def limit_body() -> None:
    """A report is words and a place: a body larger than this is no report."""
    request.max_content_length = MAX_BODY_BYTES


# Reading requests ----------------------------------------------------------------------------


def _param(name: str) -> str | None:
    """A parameter, None when missing or empty (the spec treats the two alike)."""
    value = request.values.get(name, "").strip()
    return value or None


def _list_param(name: str) -> tuple[str, ...]:
    """A comma-delimited parameter, which may also be given several times."""
    items: list[str] = []
    for value in request.values.getlist(name):
        items.extend(part.strip() for part in value.split(",") if part.strip())
    return tuple(dict.fromkeys(items))


def _date_param(name: str) -> datetime | None:
    value = _param(name)
    return open311.parse_w3c(value, field=name, zone=_zone()) if value is not None else None


def _client() -> str:
    """The client whose `api_key` came with the request, or the spec's 403."""
    key = _param("api_key")
    if key is None:
        raise Open311Error(403, "api_key is missing: ask the hotline office for a key")
    client = open311.client_for_key(db(), key=key)
    if client is None:
        raise Open311Error(403, "api_key is not valid")
    return client


def _number(name: str, text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise Open311Error(400, f"{name} must be a number") from None
    if not math.isfinite(value):
        raise Open311Error(400, f"{name} must be a number")
    return value


def _point() -> tuple[float, float] | None:
    lat, long = _number("lat", _param("lat")), _number("long", _param("long"))
    if (lat is None) != (long is None):
        raise Open311Error(400, "lat and long must be sent together")
    if lat is None or long is None:
        return None
    if not (-90 <= lat <= 90 and -180 <= long <= 180):
        raise Open311Error(400, "lat or long is out of range (WGS84 degrees)")
    return lat, long


def _attributes() -> dict[str, list[str]]:
    """`attribute[code]=value` and `attribute[code][]=value`, as the spec sends them."""
    attributes: dict[str, list[str]] = {}
    for name in request.form:
        if name.startswith("attribute[") and "]" in name:
            code = name[len("attribute[") : name.index("]")]
            attributes.setdefault(code, []).extend(request.form.getlist(name))
    return attributes


def _posted_request(client: str) -> open311.PostedRequest:
    service_code = _param("service_code")
    if service_code is None:
        raise Open311Error(400, "service_code is required")
    point = _point()
    address, address_id = _param("address_string"), _param("address_id")
    if point is None and address is None and address_id is None:
        raise Open311Error(
            400, "a location is required: lat and long, address_string or address_id"
        )
    return open311.PostedRequest(
        client=client,
        service_code=service_code,
        description=request.form.get("description", ""),
        point=point,
        address=address,
        address_id=address_id,
        device_id=_param("device_id"),
        account_id=_param("account_id"),
        media_url=_param("media_url"),
        attributes=_attributes(),
    )


# Endpoints -----------------------------------------------------------------------------------


@bp.get(f"/discovery.{FMT}")
def discovery(fmt: str) -> Response:
    """The service discovery document: where this endpoint is and what it speaks."""
    texts = _wording()[_locale()]
    base = current_wiring().settings.public_base_url.rstrip("/")
    body = {
        "changeset": CHANGESET,
        "contact": texts["contact"],
        "key_service": texts["key_service"],
        "endpoints": [
            {
                "specification": SPECIFICATION,
                "url": f"{base}{bp.url_prefix}",
                "changeset": CHANGESET,
                "type": "production",
                "formats": [
                    CONTENT_TYPES["xml"].split(";")[0],
                    CONTENT_TYPES["json"].split(";")[0],
                ],
            }
        ],
    }
    return _answer(fmt, body, root="discovery", item=None)


@bp.get(f"/services.{FMT}")
def services(fmt: str) -> Response:
    """GET Service List: every category, as a service."""
    with db().begin():
        body = open311.service_records(_speech())
    return _answer(fmt, body, root="services", item="service")


@bp.get(f"/services/<code>.{FMT}")
def service_definition(code: str, fmt: str) -> Response:
    """GET Service Definition: no service asks for attributes."""
    with db().begin():
        body = open311.service_definition(code, _speech())
    return _answer(fmt, body, root="service_definition", item=None)


@bp.get(f"/requests.{FMT}")
def requests_list(fmt: str) -> Response:
    """GET Service Requests: by ids, or by codes, status and dates (the last 90 days)."""
    statuses = _list_param("status")
    unknown = [status for status in statuses if status not in ("open", "closed")]
    if unknown:
        raise Open311Error(400, f"status must be open or closed, not {', '.join(unknown)}")
    search = open311.RequestSearch(
        numbers=_list_param("service_request_id"),
        service_codes=_list_param("service_code"),
        statuses=statuses,
        start=_date_param("start_date"),
        end=_date_param("end_date"),
    )
    with db().begin():
        speech = _speech()
        cases = open311.find_requests(db(), search=search, speech=speech, now=utcnow())
        body = [open311.request_record(case, speech) for case in cases]
    return _answer(fmt, body, root="service_requests", item="request")


@bp.get(f"/requests/<number>.{FMT}")
def request_detail(number: str, fmt: str) -> Response:
    """GET Service Request: one case, as a list of one (the spec's layout)."""
    with db().begin():
        speech = _speech()
        body = [open311.request_record(open311.get_request(db(), number=number), speech)]
    return _answer(fmt, body, root="service_requests", item="request")


@bp.post(f"/requests.{FMT}")
def create_request(fmt: str) -> Response:
    """POST Service Request: a case opened from the client's report, routed by the worker."""
    session = db()
    with session.begin():
        client = _client()
        verdict = open311.check_post_rate(session, client=client, now=utcnow())
        if not verdict.allowed:
            raise Open311Error(
                429,
                f"too many requests from this key; try again in {verdict.wait_seconds} s",
                headers={"Retry-After": str(verdict.wait_seconds)},
            )
        received = open311.receive_request(session, posted=_posted_request(client), now=utcnow())
        case, texts = received.case, _wording()[received.case.locale]
        body = [
            {
                "service_request_id": case.number,
                "token": case.open311_token,
                "service_notice": texts["notice_received"].format(number=case.number),
                "account_id": _param("account_id"),
            }
        ]
        case_id, created = case.id, received.created
    if created:
        enqueue_routing(case_id)
    current_app.logger.info(
        "open311 request %s from %s", "received" if created else "repeated", client
    )
    return _answer(fmt, body, root="service_requests", item="request")


@bp.get(f"/tokens/<token>.{FMT}")
def token(token: str, fmt: str) -> Response:
    """GET service_request_id from a token."""
    with db().begin():
        number = open311.number_for_token(db(), token=token)
    body = [{"service_request_id": number, "token": token}]
    return _answer(fmt, body, root="service_requests", item="request")


@bp.get(f"/servicerequestupdates.{FMT}")
def updates_list(fmt: str) -> Response:
    """FixMyStreet's GET servicerequestupdates: our status changes in the window."""
    start, end = _date_param("start_date"), _date_param("end_date")
    with db().begin():
        speech = _speech()
        events = open311.find_updates(db(), start=start, end=end, now=utcnow())
        body = [open311.update_record(event, speech) for event in events]
    return _answer(fmt, body, root="service_request_updates", item="request_update")


@bp.post(f"/servicerequestupdates.{FMT}")
def post_update(fmt: str) -> Response:
    """FixMyStreet's POST servicerequestupdates: a citizen's update on a request."""
    session = db()
    with session.begin():
        client = _client()
        required = ("service_request_id", "update_id", "status", "updated_datetime")
        missing = [name for name in required if _param(name) is None]
        if missing:
            raise Open311Error(400, f"{', '.join(missing)} required")
        updated_at = _date_param("updated_datetime")
        assert updated_at is not None  # checked above with the other required parameters
        posted = open311.PostedUpdate(
            client=client,
            number=_param("service_request_id") or "",
            update_id=_param("update_id") or "",
            status=_param("status") or "",
            updated_at=updated_at,
            description=request.form.get("description", ""),
            media_url=_param("media_url"),
        )
        our_id = open311.record_update(session, posted=posted)
    return _answer(
        fmt, [{"update_id": our_id}], root="service_request_updates", item="request_update"
    )


# Last: any other path under /open311/v2 gets an errors document, not an HTML page.
@bp.route("/", defaults={"path": ""}, methods=CATCH_ALL_METHODS)
@bp.route("/<path:path>", methods=CATCH_ALL_METHODS)
def no_such_resource(path: str) -> Response:
    """405 where the path takes other methods, else 404 (an unknown resource or format)."""
    methods = methods_elsewhere()
    if methods:
        raise Open311Error(
            405,
            f"{request.method} is not allowed here; use {', '.join(methods)}",
            headers={"Allow": ", ".join(methods)},
        )
    raise Open311Error(404, f"no Open311 resource at {request.path} (use .xml or .json)")
