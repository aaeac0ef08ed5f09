"""The departments' JSON API through the app: keys, the actions and their effects, idempotent
retries, malformed requests that change nothing, and the OpenAPI document that describes it."""

from __future__ import annotations

import json
import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests
import yaml
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate as validate_spec
from sqlalchemy import inspect, select
from werkzeug.test import TestResponse

from api.views import OPENAPI_PATH
from cases import lifecycle, staff
from cases.models import Case, CaseStatus, Channel, utcnow
from cases.numbers import new_case_number
from cases.serialise import case_snapshot
from hotline.db import Database
from tests.support.factories import make_case

SPEC: dict[str, Any] = yaml.safe_load(OPENAPI_PATH.read_text(encoding="utf-8"))
ACTIONS = ("accept", "notes", "resolve", "send-back", "transfer")
# A valid body for each action, so that only the thing under test is wrong.
VALID_BODIES: dict[str, dict[str, str]] = {
    "accept": {},
    "notes": {"text": "维修班组已出发"},
    "resolve": {"reply": "水管已修复，供水已恢复。"},
    "send-back": {"reason": "这是小区自建管网，不归水务"},
    "transfer": {"department": "power", "reason": "水泵房停电，需供电公司处理"},
}


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def keys(database: Database) -> dict[str, str]:
    """Fresh API keys for water and power (each replaces any key issued before)."""
    with database.session() as session, session.begin():
        return {code: staff.issue_api_key(session, code=code) for code in ("water", "power")}


def bearer(key: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **headers}


def new_case(database: Database, **kwargs: Any) -> str:
    """A case routed to the water authority, committed; its number."""
    with database.session() as session, session.begin():
        case = make_case(
            session,
            department_code="water",
            category_code="water_supply",
            text="书院街道杏坛路一带停水两天了",
            **kwargs,
        )
        return case.number


def state(database: Database, number: str) -> dict[str, Any]:
    """All that an action could change: the case's columns, its events and its outbox rows."""
    with database.session() as session:
        case = session.scalars(select(Case).where(Case.number == number)).one()
        return {
            "case": {attr.key: getattr(case, attr.key) for attr in inspect(Case).column_attrs},
            "events": [(e.id, e.kind, e.actor, e.data) for e in case.events],
            "deliveries": [(d.id, d.recipient, d.channel, d.topic) for d in case.deliveries],
        }


def conforms(body: Any, schema: str) -> None:
    """Fail unless `body` matches the named schema of the OpenAPI document."""
    validator = OAS31Validator(
        {"$ref": f"#/components/schemas/{schema}", "components": SPEC["components"]},
        format_checker=OAS31Validator.FORMAT_CHECKER,
    )
    errors = [error.message for error in validator.iter_errors(body)]
    assert not errors, f"{schema}: {errors}"


def post(
    client: FlaskClient, key: str, number: str, action: str, body: Any = None, **headers: str
) -> TestResponse:
    return client.post(
        f"/api/v1/cases/{number}/{action}", json=body, headers=bearer(key, **headers)
    )


def assert_error(
    response: TestResponse, status: int, code: str, field: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    conforms(body, "Error")
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    if field is not None:
        assert body["error"]["field"] == field
        assert field in body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


# The flows -----------------------------------------------------------------------------------


def test_department_system_accepts_notes_and_resolves_with_a_reply_to_the_caller(
    client: FlaskClient, database: Database, keys: dict[str, str]
) -> None:
    number = new_case(database)
    water = keys["water"]

    shown = client.get(f"/api/v1/cases/{number}", headers=bearer(water))
    assert shown.status_code == 200
    detail = shown.get_json()
    conforms(detail, "CaseDetail")
    assert detail["status"] == "assigned" and detail["department"] == "water"
    # The department never sees the caller's number in full.
    assert detail["caller_number"] == "**********0000"
    assert "routed" in [event["kind"] for event in detail["timeline"]]

    accepted = post(client, water, number, "accept")
    assert accepted.status_code == 200
    conforms(accepted.get_json(), "ActionResult")
    assert accepted.get_json()["event"]["kind"] == "accepted"
    assert accepted.get_json()["event"]["actor"] == "api:water"
    assert accepted.get_json()["case"]["status"] == "accepted"
    assert accepted.get_json()["case"]["responsible_department"] == "water"

    noted = post(client, water, number, "notes", {"text": "  维修班组已出发  "})
    assert noted.status_code == 200
    conforms(noted.get_json(), "ActionResult")
    assert noted.get_json()["event"]["data"]["text"] == "维修班组已出发"

    reply = "杏坛路主管道已修复，供水已恢复。"
    resolved = post(client, water, number, "resolve", {"reply": reply})
    assert resolved.status_code == 200
    conforms(resolved.get_json(), "ActionResult")
    assert resolved.get_json()["case"]["status"] == "resolved"
    assert resolved.get_json()["case"]["resolved_at"] is not None

    with database.session() as session:
        case = session.scalars(select(Case).where(Case.number == number)).one()
        assert case.status == CaseStatus.RESOLVED and case.resolution == reply
        kinds = [event.kind for event in case.events]
        assert kinds[-3:] == ["accepted", "note", "resolved"]
        texts = {d.topic: d for d in case.deliveries if d.channel == Channel.CALLER_SMS}
        assert set(texts) >= {"accepted", "resolved"}
        assert texts["resolved"].payload["reply"] == reply
        assert texts["resolved"].address == "+8613800000000"

    final = client.get(f"/api/v1/cases/{number}", headers=bearer(water)).get_json()
    conforms(final, "CaseDetail")
    assert final["resolution"] == reply


def test_send_back_returns_the_case_to_the_desk_and_out_of_sight(
    client: FlaskClient, database: Database, keys: dict[str, str]
) -> None:
    number = new_case(database)
    reason = "这是小区自建管网，物业负责"

    sent = post(client, keys["water"], number, "send-back", {"reason": reason})

    assert sent.status_code == 200
    conforms(sent.get_json(), "ActionResult")
    assert sent.get_json()["event"]["kind"] == "sent_back"
    assert sent.get_json()["event"]["data"]["reason"] == reason
    # Sent back unaccepted, the case is the desk's now and no longer water's to see.
    assert sent.get_json()["case"] is None
    with database.session() as session:
        case = session.scalars(select(Case).where(Case.number == number)).one()
        assert case.status == CaseStatus.SENT_BACK
        assert case.department_code == "hotline_office"
        assert case.sent_back_by_code == "water"
    gone = client.get(f"/api/v1/cases/{number}", headers=bearer(keys["water"]))
    assert_error(gone, 404, "unknown_case")


def test_transfer_keeps_the_accepting_department_first_responsible(
    client: FlaskClient, database: Database, keys: dict[str, str]
) -> None:
    number = new_case(database)
    water, power = keys["water"], keys["power"]
    assert post(client, water, number, "accept").status_code == 200

    moved = post(client, water, number, "transfer", VALID_BODIES["transfer"])

    assert moved.status_code == 200
    conforms(moved.get_json(), "ActionResult")
    event, case = moved.get_json()["event"], moved.get_json()["case"]
    assert event["kind"] == "transferred"
    assert (event["data"]["from_department"], event["data"]["to_department"]) == ("water", "power")
    # Water accepted it, so it stays answerable (and sees it) until power accepts.
    assert case["department"] == "power" and case["responsible_department"] == "water"
    assert case["status"] == "assigned"

    # Still visible to water, but no longer water's to act on.
    before = state(database, number)
    refused = post(client, water, number, "resolve", {"reply": "已处理"})
    assert_error(refused, 403, "not_allowed")
    assert state(database, number) == before

    assert client.get(f"/api/v1/cases/{number}", headers=bearer(power)).status_code == 200
    taken = post(client, power, number, "accept")
    assert taken.status_code == 200
    assert taken.get_json()["case"]["responsible_department"] == "power"
    gone = client.get(f"/api/v1/cases/{number}", headers=bearer(water))
    assert_error(gone, 404, "unknown_case")


# Keys and visibility -------------------------------------------------------------------------


def _replaced_key(database: Database) -> str:
    with database.session() as session, session.begin():
        old = staff.issue_api_key(session, code="water")
        staff.issue_api_key(session, code="water")
    return old


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer    ",
        "Basic d2F0ZXI6c2VjcmV0",
        "Bearer not-a-hotline-key",
        "Bearer hlk_" + "A" * 43,
        "replaced",
    ],
    ids=["none", "empty", "no-key", "blank-key", "basic", "foreign", "unknown", "replaced"],
)
def test_a_missing_or_invalid_key_is_refused_with_401(
    client: FlaskClient, database: Database, keys: dict[str, str], authorization: str | None
) -> None:
    number = new_case(database)
    if authorization == "replaced":
        authorization = f"Bearer {_replaced_key(database)}"
    headers = {} if authorization is None else {"Authorization": authorization}
    before = state(database, number)

    for response in (
        client.get("/api/v1/cases", headers=headers),
        client.get(f"/api/v1/cases/{number}", headers=headers),
        client.post(f"/api/v1/cases/{number}/resolve", json={"reply": "x"}, headers=headers),
        client.get("/api/v1/no-such-endpoint", headers=headers),
    ):
        assert_error(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"].startswith('Bearer realm="hotline-api"')
    assert state(database, number) == before


def test_another_departments_key_cannot_tell_the_case_exists(
    client: FlaskClient, database: Database, keys: dict[str, str]
) -> None:
    number = new_case(database)
    missing = new_case_number()  # random: no case has it
    power = keys["power"]
    before = state(database, number)

    for target in (number, missing):
        assert_error(
            client.get(f"/api/v1/cases/{target}", headers=bearer(power)), 404, "unknown_case"
        )
        for action in ACTIONS:
            response = post(client, power, target, action, VALID_BODIES[action])
            assert_error(response, 404, "unknown_case")
    listed = client.get("/api/v1/cases?per_page=100", headers=bearer(power)).get_json()
    assert number not in [case["number"] for case in listed["cases"]]
    assert state(database, number) == before


# Malformed requests --------------------------------------------------------------------------

JSON = "application/json"


@pytest.mark.parametrize(
    ("action", "content_type", "data", "status", "code", "field"),
    [
        ("resolve", "text/plain", "fixed", 415, "unsupported_media_type", None),
        ("resolve", None, '{"reply": "fixed"}', 415, "unsupported_media_type", None),
        ("resolve", "application/x-www-form-urlencoded", "reply=fixed", 415,
         "unsupported_media_type", None),
        ("accept", "text/plain", "yes", 415, "unsupported_media_type", None),
        ("resolve", JSON, '{"reply": "fixed"', 400, "malformed_json", None),
        ("send-back", JSON, "", 400, "malformed_json", None),
        ("resolve", JSON, b"\xff\xfe{", 400, "malformed_json", None),
        ("resolve", JSON, '["reply", "fixed"]', 400, "not_an_object", None),
        ("notes", JSON, '"a note"', 400, "not_an_object", None),
        ("resolve", JSON, "{}", 400, "missing_field", "reply"),
        ("transfer", JSON, '{"department": "power"}', 400, "missing_field", "reason"),
        ("resolve", JSON, '{"reply": 42}', 400, "wrong_type", "reply"),
        ("resolve", JSON, '{"reply": null}', 400, "wrong_type", "reply"),
        ("transfer", JSON, '{"department": ["power"], "reason": "x"}', 400, "wrong_type",
         "department"),
        ("resolve", JSON, '{"reply": "ok", "request_id": 7}', 400, "wrong_type", "request_id"),
        ("resolve", JSON, '{"reply": "ok", "replay": "ok"}', 400, "unknown_field", "replay"),
        ("accept", JSON, '{"force": true}', 400, "unknown_field", "force"),
        ("resolve", JSON, '{"reply": "ok", "request_id": "has space"}', 400,
         "invalid_idempotency_key", "request_id"),
        ("resolve", JSON, '{"reply": ""}', 422, "invalid_input", None),
        ("resolve", JSON, '{"reply": "   \\n "}', 422, "invalid_input", None),
        ("resolve", JSON, '{"reply": "' + "修" * 4001 + '"}', 422, "invalid_input", None),
        ("notes", JSON, '{"text": ""}', 422, "invalid_input", None),
        ("send-back", JSON, '{"reason": " "}', 422, "invalid_input", None),
        ("transfer", JSON, '{"department": "nowhere", "reason": "x"}', 422, "invalid_input",
         None),
        ("transfer", JSON, '{"department": "water", "reason": "x"}', 422, "invalid_input", None),
        ("transfer", JSON, '{"department": "hotline_office", "reason": "x"}', 422,
         "invalid_input", None),
        ("notes", JSON, '{"text": "' + "x" * 70_000 + '"}', 413, "body_too_large", None),
    ],
)  # fmt: skip
def test_a_malformed_request_gets_a_clear_error_and_changes_nothing(
    client: FlaskClient,
    database: Database,
    keys: dict[str, str],
    action: str,
    content_type: str | None,
    data: str | bytes,
    status: int,
    code: str,
    field: str | None,
) -> None:
    number = new_case(database)
    before = state(database, number)
    headers = bearer(keys["water"])
    if content_type is not None:
        headers["Content-Type"] = content_type

    response = client.post(f"/api/v1/cases/{number}/{action}", data=data, headers=headers)

    assert_error(response, status, code, field)
    assert state(database, number) == before


def test_bad_query_parameters_are_refused(client: FlaskClient, keys: dict[str, str]) -> None:
    for query, field in (
        ("status=bogus", "status"),
        ("status=assigned,bogus", "status"),
        ("page=0", "page"),
        ("page=-1", "page"),
        ("per_page=101", "per_page"),
        ("per_page=ten", "per_page"),
        ("per_page=", "per_page"),
        ("sort=deadline", "sort"),
    ):
        response = client.get(f"/api/v1/cases?{query}", headers=bearer(keys["water"]))
        assert_error(response, 400, "invalid_parameter", field)


def test_an_action_out_of_turn_is_409_and_changes_nothing(
    client: FlaskClient, database: Database, keys: dict[str, str]
) -> None:
    water = keys["water"]
    accepted = new_case(database)
    assert post(client, water, accepted, "accept").status_code == 200
    resolved = new_case(database)
    assert post(client, water, resolved, "resolve", VALID_BODIES["resolve"]).status_code == 200

    for number, action in (
        # Once accepted, water is first-responsible: it may transfer, not send back.
        (accepted, "send-back"),
        (resolved, "resolve"),
        (resolved, "accept"),
        (resolved, "transfer"),
    ):
        before = state(database, number)
        response = post(client, water, number, action, VALID_BODIES[action])
        assert_error(response, 409, "invalid_transition")
        assert state(database, number) == before


def test_unknown_paths_and_wrong_methods_answer_in_json(
    client: FlaskClient, database: Database, keys: dict[str, str]
) -> None:
    number = new_case(database)
    water = bearer(keys["water"])

    assert_error(client.get("/api/v1/casez", headers=water), 404, "not_found")
    assert_error(client.get("/api/v1/", headers=water), 404, "not_found")
    wrong = client.get(f"/api/v1/cases/{number}/accept", headers=water)
    assert_error(wrong, 405, "method_not_allowed")
    assert wrong.headers["Allow"] == "POST"
    wrong = client.delete(f"/api/v1/cases/{number}", headers=water)
    assert_error(wrong, 405, "method_not_allowed")
    assert wrong.headers["Allow"] == "GET"


# Idempotency ---------------------------------------------------------------------------------


def test_a_retried_resolve_with_the_same_key_acts_once(
    client: FlaskClient, database: Database, keys: dict[str, str]
) -> None:
    number = new_case(database)
    key = str(uuid.uuid4())
    body = VALID_BODIES["resolve"]

    first = post(client, keys["water"], number, "resolve", body, **{"Idempotency-Key": key})
    again = post(client, keys["water"], number, "resolve", body, **{"Idempotency-Key": key})

    assert first.status_code == again.status_code == 200
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    conforms(again.get_json(), "ActionResult")
    assert again.get_json()["event"] == first.get_json()["event"]
    assert again.get_json()["event"]["data"]["idempotency_key"] == key
    with database.session() as session:
        case = session.scalars(select(Case).where(Case.number == number)).one()
        assert [e.kind for e in case.events].count("resolved") == 1
        texts = [d.topic for d in case.deliveries if d.channel == Channel.CALLER_SMS]
        assert texts.count("resolved") == 1 and "resolved-2" not in texts

    # Without a key the same resolve is a new request, and the case is resolved already.
    assert_error(post(client, keys["water"], number, "resolve", body), 409, "invalid_transition")


def test_a_note_retried_with_a_request_id_is_added_once(
    client: FlaskClient, database: Database, keys: dict[str, str]
) -> None:
    number = new_case(database)
    body = {"text": "已联系物业", "request_id": f"note-{uuid.uuid4()}"}

    first = post(client, keys["water"], number, "notes", body)
    # The same id as a header is the same request.
    again = post(
        client, keys["water"], number, "notes", {"text": body["text"]},
        **{"Idempotency-Key": body["request_id"]},
    )  # fmt: skip

    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["event"]["id"] == first.get_json()["event"]["id"]
    # Two notes without keys are two notes.
    post(client, keys["water"], number, "notes", {"text": "第二条"})
    post(client, keys["water"], number, "notes", {"text": "第二条"})
    with database.session() as session:
        case = session.scalars(select(Case).where(Case.number == number)).one()
        assert [e.data["text"] for e in case.events if e.kind == "note"] == [
            "已联系物业",
            "第二条",
            "第二条",
        ]


def test_a_key_reused_for_a_different_request_is_refused(
    client: FlaskClient, database: Database, keys: dict[str, str]
) -> None:
    number = new_case(database)
    key = {"Idempotency-Key": str(uuid.uuid4())}
    assert (
        post(client, keys["water"], number, "notes", {"text": "第一条"}, **key).status_code == 200
    )
    before = state(database, number)

    different_text = post(client, keys["water"], number, "notes", {"text": "另一条"}, **key)
    different_action = post(client, keys["water"], number, "resolve", {"reply": "第一条"}, **key)
    conflicting = post(
        client, keys["water"], number, "notes", {"text": "第一条", "request_id": "other"}, **key
    )

    assert_error(different_text, 422, "idempotency_key_reused")
    assert_error(different_action, 422, "idempotency_key_reused")
    assert_error(conflicting, 400, "conflicting_idempotency_keys", "request_id")
    for bad in ("", "x" * 201, "clé"):
        invalid = post(
            client, keys["water"], number, "notes", {"text": "第一条"}, **{"Idempotency-Key": bad}
        )
        assert_error(invalid, 400, "invalid_idempotency_key")
    assert state(database, number) == before


def test_copies_of_one_request_in_flight_at_once_act_once(
    live_server: str, database: Database, keys: dict[str, str]
) -> None:
    number = new_case(database)
    headers = bearer(keys["water"], **{"Idempotency-Key": str(uuid.uuid4())})
    start = threading.Barrier(4)

    def send(_: int) -> requests.Response:
        start.wait(timeout=10)
        return requests.post(
            f"{live_server}/api/v1/cases/{number}/resolve",
            json=VALID_BODIES["resolve"],
            headers=headers,
            timeout=30,
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        responses = list(pool.map(send, range(4)))

    assert [response.status_code for response in responses] == [200] * 4
    assert sum("Idempotent-Replayed" not in response.headers for response in responses) == 1
    assert len({response.json()["event"]["id"] for response in responses}) == 1
    with database.session() as session:
        case = session.scalars(select(Case).where(Case.number == number)).one()
        assert [e.kind for e in case.events].count("resolved") == 1
        texts = [d.topic for d in case.deliveries if d.channel == Channel.CALLER_SMS]
        assert texts.count("resolved") == 1


@pytest.mark.parametrize("action", ["transfer", "send-back"])
def test_a_retry_still_gets_its_answer_after_the_case_left_sight(
    client: FlaskClient, database: Database, keys: dict[str, str], action: str
) -> None:
    number = new_case(database)
    key = {"Idempotency-Key": str(uuid.uuid4())}

    first = post(client, keys["water"], number, action, VALID_BODIES[action], **key)
    after_first = state(database, number)
    again = post(client, keys["water"], number, action, VALID_BODIES[action], **key)

    assert first.status_code == again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    # Water had not accepted it: the case left its sight with the first request.
    assert (
        first.get_json() == again.get_json() == {"event": first.get_json()["event"], "case": None}
    )
    assert state(database, number) == after_first
    # The key answers only its own retry: with it, another request is refused; without it,
    # the case is still one water cannot see.
    reused = post(client, keys["water"], number, "notes", {"text": "x"}, **key)
    assert_error(reused, 422, "idempotency_key_reused")
    fresh = {"Idempotency-Key": str(uuid.uuid4())}
    assert_error(
        post(client, keys["water"], number, "notes", {"text": "x"}, **fresh), 404, "unknown_case"
    )
    assert state(database, number) == after_first


# Listing -------------------------------------------------------------------------------------


def test_the_list_is_the_departments_by_deadline_filtered_and_paged(
    client: FlaskClient, database: Database, keys: dict[str, str]
) -> None:
    now = utcnow()
    late, soon, middle = (
        new_case(database, deadline_at=now + timedelta(hours=hours)) for hours in (5, 1, 3)
    )
    water = bearer(keys["water"])
    assert post(client, keys["water"], middle, "accept").status_code == 200

    everything = client.get("/api/v1/cases?per_page=100", headers=water)
    assert everything.status_code == 200
    listing = everything.get_json()
    conforms(listing, "CaseList")
    assert listing["total"] >= 3
    numbers = [case["number"] for case in listing["cases"]]
    assert [n for n in numbers if n in (late, soon, middle)] == [soon, middle, late]
    # Its own, those it stays first-responsible for, and those it assists with (协办).
    assert all(
        "water" in (c["department"], c["responsible_department"], *c["assisting_departments"])
        for c in listing["cases"]
    )
    deadlines = [c["deadline_at"] for c in listing["cases"]]
    known = [datetime.fromisoformat(d) for d in deadlines if d is not None]
    assert known == sorted(known)
    # Cases without a deadline come last.
    assert deadlines[len(known) :] == [None] * (len(deadlines) - len(known))

    first = client.get("/api/v1/cases?per_page=2", headers=water).get_json()
    second = client.get("/api/v1/cases?per_page=2&page=2", headers=water).get_json()
    assert first["next_page"] == 2 and second["page"] == 2
    assert [c["number"] for c in first["cases"] + second["cases"]] == numbers[:4]

    accepted = client.get("/api/v1/cases?status=accepted&per_page=100", headers=water).get_json()
    conforms(accepted, "CaseList")
    assert {case["status"] for case in accepted["cases"]} == {"accepted"}
    assert middle in [case["number"] for case in accepted["cases"]]
    both = client.get(
        "/api/v1/cases?status=accepted&status=assigned,resolved&per_page=100", headers=water
    ).get_json()
    assert {soon, middle, late} <= {case["number"] for case in both["cases"]}

    beyond = client.get(f"/api/v1/cases?page={listing['total'] + 1}", headers=water).get_json()
    assert beyond["cases"] == [] and beyond["next_page"] is None


# The contract --------------------------------------------------------------------------------


def test_the_openapi_document_is_served_without_a_key_and_is_valid(client: FlaskClient) -> None:
    response = client.get("/api/v1/openapi.yaml")

    assert response.status_code == 200
    assert response.mimetype == "application/yaml"
    served = yaml.safe_load(response.get_data(as_text=True))
    assert served == SPEC
    validate_spec(served)
    assert served["openapi"].startswith("3.1")
    assert served["components"]["securitySchemes"]["departmentKey"]["scheme"] == "bearer"
    push = served["webhooks"]["casePush"]["post"]
    assert "X-Hotline-Signature" in [parameter["name"] for parameter in push["parameters"]]


def _openapi_path(rule: str) -> str:
    """A Flask rule under /api/v1 written as an OpenAPI path: <number> becomes {number}."""
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.removeprefix("/api/v1"))


def test_every_api_route_is_in_the_openapi_document_and_back(app: Flask) -> None:
    routes = {
        (_openapi_path(rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        # The catch-all only turns unknown paths into JSON errors; it is no endpoint.
        if rule.endpoint.startswith("api.") and rule.endpoint != "api.no_such_endpoint"
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    documented = {
        (path, method)
        for path, item in SPEC["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    assert routes, "the api blueprint has no routes"
    assert routes == documented


def test_the_push_a_department_receives_matches_the_documented_webhook(database: Database) -> None:
    with database.session() as session, session.begin():
        case = make_case(session, department_code="water", category_code="water_supply")
        # The outbox's payload for a push, with the id each delivery carries.
        payload = {
            "delivery_id": f"dlv_{uuid.uuid4().hex}",
            "event": "assigned",
            "case": case_snapshot(case),
        }
    conforms(payload, "CasePush")
    conforms({**payload, "event": "sent_back", "reason": "不归我们"}, "CasePush")


# Bad text at the edge (issue 12, defect 2) ---------------------------------------------------

# As a department's system could send them: JSON escapes that decode to code points no UTF-8
# answer can carry (lone surrogates), that PostgreSQL refuses (NUL), or that are not text.
BAD_TEXTS = {
    "lone-high-surrogate": "\\ud800",
    "lone-low-surrogate": "维修\\udfff班组",
    "nul": "已处理\\u0000",
    "escape": "\\u001b[31m已处理",
    "c1-control": "已处理\\u0085",
    "noncharacter": "已处理\\uffff",
}
# Each text field of each action, with the rest of a valid body.
TEXT_FIELDS = [
    ("notes", "text"),
    ("resolve", "reply"),
    ("send-back", "reason"),
    ("transfer", "reason"),
    ("transfer", "department"),
]


@pytest.mark.parametrize(("action", "field"), TEXT_FIELDS)
@pytest.mark.parametrize("bad", list(BAD_TEXTS.values()), ids=list(BAD_TEXTS))
def test_one_bad_note_does_not_lock_everyone_out_of_the_case(
    client: FlaskClient,
    database: Database,
    keys: dict[str, str],
    action: str,
    field: str,
    bad: str,
) -> None:
    number = new_case(database)
    water = keys["water"]
    before = state(database, number)
    # Built by hand: the escape must reach the server as the six characters `\ud800`.
    fields = [
        f'"{name}": "{value}"' for name, value in VALID_BODIES[action].items() if name != field
    ]
    body = "{" + ", ".join([*fields, f'"{field}": "{bad}"']) + "}"

    refused = client.post(
        f"/api/v1/cases/{number}/{action}",
        data=body,
        headers=bearer(water, **{"Content-Type": JSON}),
    )

    error = assert_error(refused, 400, "invalid_text", field)
    assert "U+" in error["message"]
    assert state(database, number) == before
    # The case still reads, for the department and for the list.
    shown = client.get(f"/api/v1/cases/{number}", headers=bearer(water))
    assert shown.status_code == 200
    conforms(shown.get_json(), "CaseDetail")
    assert client.get("/api/v1/cases?per_page=100", headers=bearer(water)).status_code == 200


def test_a_field_whose_name_is_broken_text_gets_a_readable_400(
    client: FlaskClient, database: Database, keys: dict[str, str]
) -> None:
    number = new_case(database)
    before = state(database, number)

    response = client.post(
        f"/api/v1/cases/{number}/notes",
        data='{"text": "ok", "\\ud800": "x"}',
        headers=bearer(keys["water"], **{"Content-Type": JSON}),
    )

    assert response.status_code == 400
    error = json.loads(response.get_data())["error"]  # strict UTF-8 and JSON
    assert (error["code"], error["field"]) == ("unknown_field", "\ufffd")
    assert state(database, number) == before


# Any code point in a text a department's system sends; hypothesis leaves out lone surrogates
# and seldom tries controls, so both are drawn on purpose.
ANY_TEXT = st.text(
    st.one_of(
        st.characters(),
        st.integers(0xD800, 0xDFFF).map(chr),
        st.integers(0x00, 0x9F).map(chr),
    ),
    max_size=50,
)


@settings(max_examples=150, deadline=None)
@given(text=ANY_TEXT)
def test_no_text_a_system_sends_breaks_the_api_or_the_case(
    app: Flask, database: Database, text: str
) -> None:
    client = app.test_client()
    with database.session() as session, session.begin():
        key = staff.issue_api_key(session, code="water")
    number = new_case(database)
    before = state(database, number)

    # ensure_ascii: the text travels as JSON escapes, so a lone surrogate arrives as sent.
    response = client.post(
        f"/api/v1/cases/{number}/notes",
        data=json.dumps({"text": text}),
        headers=bearer(key, **{"Content-Type": JSON}),
    )

    assert response.status_code in (200, 400, 422), response.get_data(as_text=True)
    json.loads(response.get_data())  # strict UTF-8 and JSON, whatever was sent
    if response.status_code != 200:
        assert state(database, number) == before
    shown = client.get(f"/api/v1/cases/{number}", headers=bearer(key))
    assert shown.status_code == 200
    json.loads(shown.get_data())


def test_text_is_stored_in_one_form_whatever_the_sender_typed(
    client: FlaskClient, database: Database, keys: dict[str, str]
) -> None:
    number = new_case(database)
    # CRLF line ends, a decomposed é, tabs and blanks around: all text, stored one way.
    noted = post(client, keys["water"], number, "notes", {"text": " 第一行\r\n第二行\tcafe\u0301 "})
    assert noted.status_code == 200, noted.get_data(as_text=True)
    assert noted.get_json()["event"]["data"]["text"] == "第一行\n第二行\tcafé"


def test_an_answer_that_cannot_be_sent_leaves_the_action_undone(
    live_server: str,
    database: Database,
    keys: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fault injection: the answer's serialiser yields what cannot be encoded (as a stored lone
    surrogate once did). The 500 says nothing was changed, and so it must be."""
    import api.views

    number = new_case(database)
    before = state(database, number)

    def unsendable(event: Any) -> dict[str, Any]:
        return {"kind": event.kind, "at": event.created_at}  # a datetime is not JSON

    monkeypatch.setattr(api.views, "event_record", unsendable)
    answer = requests.post(
        f"{live_server}/api/v1/cases/{number}/notes",
        json={"text": "维修班组已出发"},
        headers=bearer(keys["water"]),
        timeout=30,
    )

    assert answer.status_code == 500
    assert "nothing was changed" in answer.json()["error"]["message"]
    assert state(database, number) == before


def test_odd_characters_in_a_case_number_are_no_such_case(
    client: FlaskClient, database: Database, keys: dict[str, str]
) -> None:
    # PostgreSQL refuses a NUL in a query's text: the number never gets that far.
    water = bearer(keys["water"])
    for number in ("%00", "123%0045678", "%EF%BF%BF", "１２３４５６７８２", "1" * 13):
        assert_error(client.get(f"/api/v1/cases/{number}", headers=water), 404, "unknown_case")
        response = client.post(f"/api/v1/cases/{number}/notes", json={"text": "x"}, headers=water)
        assert_error(response, 404, "unknown_case")


# 首问负责 after a reopen (issue 12, defect 10) ---------------------------------------------------


def test_a_department_that_accepted_a_reopened_case_cannot_send_it_back(
    client: FlaskClient, database: Database, keys: dict[str, str]
) -> None:
    number = new_case(database)
    water = keys["water"]
    assert post(client, water, number, "accept").status_code == 200
    assert post(client, water, number, "resolve", VALID_BODIES["resolve"]).status_code == 200
    with database.session() as session, session.begin():
        case = session.scalars(select(Case).where(Case.number == number)).one()
        # The caller texts "1": not satisfied, so the case is reopened to water.
        assert lifecycle.rate(session, case=case, score=1, message_sid=None).reopened
    reopened = client.get(f"/api/v1/cases/{number}", headers=bearer(water)).get_json()
    assert (reopened["status"], reopened["department"]) == ("assigned", "water")
    assert reopened["responsible_department"] == "water"
    before = state(database, number)

    refused = post(client, water, number, "send-back", VALID_BODIES["send-back"])

    error = assert_error(refused, 409, "invalid_transition")
    assert "first-responsible" in error["message"]
    assert state(database, number) == before
    # Still theirs to handle: they may answer again (or transfer it).
    again = post(client, water, number, "resolve", {"reply": "已再次派人检修，供水正常。"})
    assert again.status_code == 200
    assert again.get_json()["case"]["status"] == "resolved"
