"""Open311 GeoReport v2 through the app: every resource in XML and JSON against the spec's field
lists, the spec's errors, no personal data in what anyone may read, and a FixMyStreet-style
client session over real HTTP with the real worker routing what it posts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from cases import lifecycle, merging, open311, staff
from cases.errors import InvalidInputError
from cases.models import Case, CaseStatus, Category, Department, Intake, utcnow
from hotline.db import Database
from tests.conftest import wait_until
from tests.support.factories import make_case

CITY = ZoneInfo("Asia/Shanghai")

# The spec's field lists, in its order: http://wiki.open311.org/GeoReport_v2 ("Response" of each
# method; "Errors"), and the Service Discovery page (http://wiki.open311.org/Service_discovery).
DISCOVERY_FIELDS = ("changeset", "contact", "key_service", "endpoints")
ENDPOINT_FIELDS = ("specification", "url", "changeset", "type", "formats")
SERVICE_FIELDS = (
    "service_code",
    "service_name",
    "description",
    "metadata",
    "type",
    "keywords",
    "group",
)
SERVICE_DEFINITION_FIELDS = ("service_code", "attributes")
# POST Service Request: the spec returns the id or a token; we return both (the id first, so a
# client that reads the id, as FixMyStreet does, needs no token round).
POST_REQUEST_FIELDS = ("service_request_id", "token", "service_notice", "account_id")
TOKEN_FIELDS = ("service_request_id", "token")
REQUEST_FIELDS = (
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
)
ERROR_FIELDS = ("code", "description")
# FixMyStreet's servicerequestupdates extension, as its client (perllib/Open311.pm,
# Open311/GetServiceRequestUpdates.pm) reads the list and the answer to a POST.
UPDATE_FIELDS = (
    "update_id",
    "service_request_id",
    "status",
    "updated_datetime",
    "description",
    "media_url",
)
POSTED_UPDATE_FIELDS = ("update_id",)

W3C_WITH_CITY_OFFSET = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00$"


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def api_key(database: Database) -> str:
    """A working key for a client of its own."""
    with database.session() as session, session.begin():
        return open311.make_key(session, name=f"client-{uuid.uuid4().hex[:8]}")


# Reading the answers --------------------------------------------------------------------------


def xml_records(response: TestResponse | requests.Response, root: str, item: str) -> list[Any]:
    """The records of an XML answer, each a list of (tag, element) in document order."""
    content = response.data if isinstance(response, TestResponse) else response.content
    assert content.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    assert response.headers["Content-Type"] == "text/xml; charset=utf-8"
    document = ElementTree.fromstring(content)
    assert document.tag == root
    assert [child.tag for child in document] == [item] * len(document)
    return [[(child.tag, child) for child in record] for record in document]


def xml_text(element: ElementTree.Element) -> str | None:
    return element.text


def json_records(response: TestResponse) -> list[dict[str, Any]]:
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    body = response.get_json()
    assert isinstance(body, list)
    return body


def as_xml_text(value: Any) -> str | None:
    """How a JSON value reads in the XML answer (empty element for null)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def both(
    client: FlaskClient, path: str, *, root: str, item: str, fields: tuple[str, ...], **kw: Any
) -> list[dict[str, Any]]:
    """GET `path` in JSON and XML; both must list exactly `fields`, in order, with equal values.
    Returns the JSON records."""
    as_json = client.get(f"{path}.json", **kw)
    as_xml = client.get(f"{path}.xml", **kw)
    assert as_json.status_code == as_xml.status_code == 200, as_xml.get_data(as_text=True)
    records = json_records(as_json)
    xml = xml_records(as_xml, root, item)
    assert len(records) == len(xml)
    for record, xml_record in zip(records, xml, strict=True):
        assert tuple(record) == fields
        assert tuple(tag for tag, _ in xml_record) == fields
        for (tag, element), value in zip(xml_record, record.values(), strict=True):
            if isinstance(value, list):
                continue  # nested lists are compared by the test that knows their items
            assert xml_text(element) == as_xml_text(value), tag
    return records


def assert_errors(response: TestResponse, status: int, fmt: str, *words: str) -> str:
    """The spec's errors document, in `fmt`, with the HTTP status; its description."""
    assert response.status_code == status, response.get_data(as_text=True)
    if fmt == "json":
        body = json_records(response)
        assert [tuple(error) for error in body] == [ERROR_FIELDS]
        code, description = body[0]["code"], body[0]["description"]
    else:
        [record] = xml_records(response, "errors", "error")
        assert tuple(tag for tag, _ in record) == ERROR_FIELDS
        code, description = record[0][1].text, record[1][1].text
    assert str(code) == str(status)
    for word in words:
        assert word in description
    return str(description)


def case_count(database: Database) -> int:
    with database.session() as session:
        return session.scalar(select(func.count(Case.id))) or 0


def report(**overrides: str) -> dict[str, str]:
    """A POST requests body as FixMyStreet sends one (form-encoded, names and all)."""
    body = {
        "service_code": "streetlight",
        "lat": "35.5960",
        "long": "116.9910",
        "address_string": "石门山镇石门村村口",
        "description": f"石门山镇石门村村口的路灯坏了三天，晚上一片漆黑 {uuid.uuid4().hex[:6]}",
        "email": "citizen@example.org",
        "first_name": "Wei",
        "last_name": "Zhang",
        "phone": "13912345678",
        "account_id": "fms-user-17",
        "attribute[fixmystreet_id]": "4242",
    }
    body.update(overrides)
    return body


def new_case(database: Database, **kwargs: Any) -> str:
    with database.session() as session, session.begin():
        return make_case(session, **kwargs).number


# Discovery and services -----------------------------------------------------------------------


def test_discovery_names_the_endpoint_its_spec_and_formats(client: FlaskClient) -> None:
    as_json = client.get("/open311/v2/discovery.json").get_json()
    assert tuple(as_json) == DISCOVERY_FIELDS
    [endpoint] = as_json["endpoints"]
    assert tuple(endpoint) == ENDPOINT_FIELDS
    assert endpoint["url"] == "https://hotline.example.test/open311/v2"
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["formats"] == ["text/xml", "application/json"]

    document = ElementTree.fromstring(client.get("/open311/v2/discovery.xml").data)
    assert [child.tag for child in document] == list(DISCOVERY_FIELDS)
    [xml_endpoint] = document.find("endpoints") or []
    assert [child.tag for child in xml_endpoint] == list(ENDPOINT_FIELDS)
    assert [f.text for f in xml_endpoint.findall("formats/format")] == endpoint["formats"]


def test_services_are_one_per_category_in_both_formats(
    client: FlaskClient, database: Database
) -> None:
    services = both(
        client, "/open311/v2/services", root="services", item="service", fields=SERVICE_FIELDS
    )
    with database.session() as session:
        codes = sorted(session.scalars(select(Category.code)))
    assert [service["service_code"] for service in services] == codes
    streetlight = next(s for s in services if s["service_code"] == "streetlight")
    assert streetlight["service_name"] == "路灯"
    assert streetlight["group"] == "城管局"
    assert streetlight["metadata"] is False and streetlight["type"] == "realtime"
    assert "Street lights" in streetlight["keywords"]
    assert "24" in streetlight["description"]


def test_services_speak_the_language_asked_for(client: FlaskClient) -> None:
    by_param = client.get("/open311/v2/services.json?locale=en-US").get_json()
    by_header = client.get("/open311/v2/services.json", headers={"Accept-Language": "en-US"})
    streetlight = next(s for s in by_param if s["service_code"] == "streetlight")
    assert streetlight["service_name"] == "Street lights"
    assert streetlight["group"] == "Urban Management Bureau"
    assert by_header.get_json() == by_param


def test_a_service_definition_asks_for_no_attributes(client: FlaskClient) -> None:
    as_json = client.get("/open311/v2/services/water_supply.json").get_json()
    assert as_json == {"service_code": "water_supply", "attributes": []}
    document = ElementTree.fromstring(client.get("/open311/v2/services/water_supply.xml").data)
    assert document.tag == "service_definition"
    assert [(c.tag, c.text) for c in document] == [
        ("service_code", "water_supply"),
        ("attributes", None),
    ]


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_an_unknown_service_code_is_404(client: FlaskClient, fmt: str) -> None:
    response = client.get(f"/open311/v2/services/potholes.{fmt}")
    assert_errors(response, 404, fmt, "potholes")


# Requests: reading ----------------------------------------------------------------------------


def test_a_request_is_read_in_both_formats_with_no_personal_data(
    client: FlaskClient, database: Database
) -> None:
    deadline = utcnow().replace(microsecond=0) + timedelta(hours=20)
    number = new_case(
        database,
        text="我叫王小明，电话13800001111，鲁城街道春秋路的路灯坏了",
        caller_number="+8613800001111",
        deadline_at=deadline,
    )
    [record] = both(
        client,
        f"/open311/v2/requests/{number}",
        root="service_requests",
        item="request",
        fields=REQUEST_FIELDS,
    )
    assert record["service_request_id"] == number
    assert record["status"] == "open"
    assert (record["service_code"], record["service_name"]) == ("streetlight", "路灯")
    assert record["agency_responsible"] == "城管局"
    assert record["expected_datetime"] == deadline.astimezone(CITY).isoformat()
    for name in ("requested_datetime", "updated_datetime", "expected_datetime"):
        assert record[name].endswith("+08:00")
    assert record["status_notes"] and record["service_notice"]
    # A call's words can name people: never shown, nor the number they called from.
    assert record["description"] is None
    text = client.get(f"/open311/v2/requests/{number}.xml").get_data(as_text=True)
    for personal in ("王小明", "13800001111", "1111"):
        assert personal not in text


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_an_unknown_request_or_token_is_404(client: FlaskClient, fmt: str) -> None:
    assert_errors(client.get(f"/open311/v2/requests/999999999999.{fmt}"), 404, fmt, "999999999999")
    assert_errors(client.get(f"/open311/v2/tokens/no-such-token.{fmt}"), 404, fmt, "no-such-token")
    # Odd characters are "not found", never a database error (PostgreSQL refuses a NUL).
    assert_errors(client.get(f"/open311/v2/requests/12%0034.{fmt}"), 404, fmt)
    assert_errors(client.get(f"/open311/v2/tokens/ab%00cd.{fmt}"), 404, fmt)
    assert client.get(f"/open311/v2/requests.{fmt}?service_request_id=1%002").status_code == 200


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_unknown_resources_and_methods_get_errors_documents(client: FlaskClient, fmt: str) -> None:
    assert_errors(client.get(f"/open311/v2/potholes.{fmt}"), 404, fmt)
    assert_errors(client.get("/open311/v2/services.html"), 404, "xml")
    response = client.delete(f"/open311/v2/requests.{fmt}")
    assert_errors(response, 405, fmt)
    assert response.headers["Allow"] == "GET, POST"


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("start_date=yesterday", ["start_date"]),
        ("end_date=2026-13-01T00:00:00Z", ["end_date"]),
        ("start_date=2026-12-01T10:00:00", ["start_date", "zone"]),
        ("start_date=2026-01-01T00:00:00Z&end_date=2026-12-01T00:00:00Z", ["90 days"]),
        ("start_date=2026-12-02T00:00:00Z&end_date=2026-12-01T00:00:00Z", ["after"]),
        ("status=pending", ["open or closed"]),
        ("service_code=potholes", ["potholes"]),
    ],
)
def test_a_malformed_search_is_400(
    client: FlaskClient, fmt: str, query: str, words: list[str]
) -> None:
    assert_errors(client.get(f"/open311/v2/requests.{fmt}?{query}"), 400, fmt, *words)


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_malformed_update_dates_are_400(client: FlaskClient, fmt: str) -> None:
    response = client.get(f"/open311/v2/servicerequestupdates.{fmt}?start_date=2026/12/01")
    assert_errors(response, 400, fmt, "start_date")


@pytest.mark.parametrize(
    "query", ["end_date=0001-01-01T00:00:00Z", "start_date=9999-12-31T00:00:00Z"]
)
def test_a_date_at_the_end_of_the_calendar_is_400_not_an_error(
    client: FlaskClient, query: str
) -> None:
    assert_errors(client.get(f"/open311/v2/requests.json?{query}"), 400, "json", "range")


def test_statuses_map_our_lifecycle_to_open_and_closed(
    client: FlaskClient, database: Database
) -> None:
    with database.session() as session, session.begin():
        working = make_case(session, department_code="water", category_code="water_supply")
        resolved = make_case(session, department_code="water", category_code="water_supply")
        repeat = make_case(session, department_code="water", category_code="water_supply")
        actor = staff.department_actor(session.get_one(Department, "water"))
        lifecycle.accept(session, case=working, actor=actor)
        merging.join(session, case=repeat, into=resolved, actor="system", how="test")
        lifecycle.accept(session, case=resolved, actor=actor)
        lifecycle.resolve(session, case=resolved, actor=actor, reply="管道已修复，恢复供水。")
        numbers = [working.number, resolved.number, repeat.number]
    ids = ",".join(numbers)
    records = both(
        client,
        "/open311/v2/requests",
        root="service_requests",
        item="request",
        fields=REQUEST_FIELDS,
        query_string={"service_request_id": ids},
    )
    by_id = {record["service_request_id"]: record for record in records}
    assert [record["service_request_id"] for record in records] == numbers
    assert by_id[numbers[0]]["status"] == "open"
    assert "已签收" in by_id[numbers[0]]["status_notes"]
    assert by_id[numbers[1]]["status"] == "closed"
    # A reply to a caller may greet them by name: only a reply to an Open311 report is shown.
    assert by_id[numbers[1]]["status_notes"] == "已办结。"
    # The repeat report follows the case it joined, and says which.
    assert by_id[numbers[2]]["status"] == "closed"
    assert numbers[1] in by_id[numbers[2]]["status_notes"]
    assert "管道" not in str(records)

    def listed(status: str) -> set[str]:
        found = client.get(f"/open311/v2/requests.json?status={status}&service_code=water_supply")
        return {record["service_request_id"] for record in found.get_json()}

    assert numbers[0] in listed("open") and not {numbers[1], numbers[2]} & listed("open")
    assert {numbers[1], numbers[2]} <= listed("closed") and numbers[0] not in listed("closed")
    assert set(numbers) <= listed("open,closed")


def test_a_search_defaults_to_the_last_90_days(client: FlaskClient, database: Database) -> None:
    old = new_case(database, opened_at=utcnow() - timedelta(days=120))
    recent = new_case(database)
    listed = {r["service_request_id"] for r in client.get("/open311/v2/requests.json").get_json()}
    assert recent in listed and old not in listed
    start = (utcnow() - timedelta(days=125)).astimezone(CITY).replace(microsecond=0).isoformat()
    end = (utcnow() - timedelta(days=115)).astimezone(CITY).replace(microsecond=0).isoformat()
    window = client.get(
        "/open311/v2/requests.json", query_string={"start_date": start, "end_date": end}
    )
    assert old in {r["service_request_id"] for r in window.get_json()}


# Requests: posting ----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("key", [None, "", "o311_not-a-key", "the-departments-key"])
def test_a_post_without_a_valid_key_is_403_and_opens_nothing(
    client: FlaskClient, database: Database, fmt: str, key: str | None
) -> None:
    body = report() if key is None else report(api_key=key)
    before = case_count(database)
    assert_errors(client.post(f"/open311/v2/requests.{fmt}", data=body), 403, fmt, "api_key")
    assert case_count(database) == before


def test_a_revoked_key_stops_working(client: FlaskClient, database: Database) -> None:
    name = f"revoked-{uuid.uuid4().hex[:6]}"
    with database.session() as session, session.begin():
        key = open311.make_key(session, name=name)
    with database.session() as session, session.begin():
        open311.revoke_key(session, name=name)
    response = client.post("/open311/v2/requests.xml", data=report(api_key=key))
    assert_errors(response, 403, "xml", "api_key")
    with database.session() as session, session.begin():
        assert open311.make_key(session, name=name) != key  # a new key for the same client
        with pytest.raises(InvalidInputError):
            open311.make_key(session, name=name)


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize(
    ("changes", "status", "words"),
    [
        ({"service_code": "potholes"}, 404, ["potholes"]),
        ({"service_code": ""}, 400, ["service_code"]),
        ({"lat": "", "long": "", "address_string": ""}, 400, ["location"]),
        ({"long": ""}, 400, ["lat and long"]),
        ({"lat": "north"}, 400, ["lat"]),
        ({"lat": "135.0"}, 400, ["range"]),
        ({"description": ""}, 400, ["description"]),
        ({"description": "路灯\x00坏了"}, 400, ["description"]),
        ({"service_code": "street\x00light"}, 404, ["service_code"]),
        ({"media_url": "http://example.org/\x00.jpg"}, 400, ["media_url"]),
    ],
)
def test_a_bad_post_gets_the_specs_error_and_opens_nothing(
    client: FlaskClient,
    database: Database,
    api_key: str,
    fmt: str,
    changes: dict[str, str],
    status: int,
    words: list[str],
) -> None:
    before = case_count(database)
    response = client.post(f"/open311/v2/requests.{fmt}", data=report(api_key=api_key, **changes))
    assert_errors(response, status, fmt, *words)
    assert case_count(database) == before


def test_an_address_id_alone_is_a_location(client: FlaskClient, api_key: str) -> None:
    body = report(api_key=api_key, lat="", long="", address_string="", address_id="A-1234")
    assert client.post("/open311/v2/requests.json", data=body).status_code == 200


def test_a_post_answers_in_both_formats_and_a_retry_gets_the_same_case(
    client: FlaskClient, database: Database, api_key: str
) -> None:
    body = report(api_key=api_key)
    first = json_records(client.post("/open311/v2/requests.json", data=body))
    assert [tuple(record) for record in first] == [POST_REQUEST_FIELDS]
    [answer] = first
    assert answer["service_notice"] and answer["account_id"] == "fms-user-17"

    [xml_answer] = xml_records(
        client.post("/open311/v2/requests.xml", data=body), "service_requests", "request"
    )
    assert tuple(tag for tag, _ in xml_answer) == POST_REQUEST_FIELDS
    assert xml_answer[0][1].text == answer["service_request_id"]
    assert xml_answer[1][1].text == answer["token"]

    other = client.post("/open311/v2/requests.json", data=report(api_key=api_key)).get_json()
    assert other[0]["service_request_id"] != answer["service_request_id"]
    with database.session() as session:
        case = session.scalars(
            select(Case).where(Case.number == answer["service_request_id"])
        ).one()
        assert [e.kind for e in case.events].count(open311.RECEIVED) == 1
        # The client's code is a hint on the timeline; the reporter's details are not kept.
        received = next(e for e in case.events if e.kind == open311.RECEIVED)
        assert received.data["service_code"] == "streetlight"
        assert received.data["attributes"] == {"fixmystreet_id": ["4242"]}
        assert case.caller_number is None
        kept = str([e.data for e in case.events]) + str(case.report_text)
        for personal in ("citizen@example.org", "Zhang", "13912345678"):
            assert personal not in kept


def test_what_a_client_posted_reads_back_without_the_reporter(
    client: FlaskClient, api_key: str
) -> None:
    [answer] = client.post("/open311/v2/requests.json", data=report(api_key=api_key)).get_json()
    [record] = both(
        client,
        f"/open311/v2/requests/{answer['service_request_id']}",
        root="service_requests",
        item="request",
        fields=REQUEST_FIELDS,
    )
    assert record["description"].startswith("石门山镇石门村村口的路灯坏了三天")
    assert record["address"] == "石门山镇石门村村口"
    assert (record["lat"], record["long"]) == (35.596, 116.991)
    # Not classified yet: the client's own code stands in.
    assert record["service_code"] == "streetlight" and record["status"] == "open"
    text = client.get(f"/open311/v2/requests/{answer['service_request_id']}.xml").get_data(
        as_text=True
    )
    for personal in ("citizen@example.org", "Wei", "Zhang", "13912345678", "fms-user-17"):
        assert personal not in text
    [token] = both(
        client,
        f"/open311/v2/tokens/{answer['token']}",
        root="service_requests",
        item="request",
        fields=TOKEN_FIELDS,
    )
    assert token == {"service_request_id": answer["service_request_id"], "token": answer["token"]}


# Updates ---------------------------------------------------------------------------------------


def test_updates_list_our_status_changes_in_both_formats(
    client: FlaskClient, database: Database
) -> None:
    start = utcnow().replace(microsecond=0) - timedelta(seconds=1)
    with database.session() as session, session.begin():
        case = make_case(session, department_code="water", category_code="water_supply")
        actor = staff.department_actor(session.get_one(Department, "water"))
        lifecycle.add_note(session, case=case, actor=actor, text="联系了报修人张三 13700001234")
        lifecycle.accept(session, case=case, actor=actor)
        lifecycle.resolve(session, case=case, actor=actor, reply="张先生，已修复。")
        kept = make_case(session, department_code="water", category_code="water_supply")
        repeat = make_case(session, department_code="water", category_code="water_supply")
        merging.join(session, case=repeat, into=kept, actor="system", how="test")
        number, repeat_number, kept_number = case.number, repeat.number, kept.number
    query = {
        "start_date": start.isoformat(),
        "end_date": (utcnow() + timedelta(seconds=1)).isoformat(),
    }
    updates = both(
        client,
        "/open311/v2/servicerequestupdates",
        root="service_request_updates",
        item="request_update",
        fields=UPDATE_FIELDS,
        query_string=query,
    )
    ours = [u for u in updates if u["service_request_id"] == number]
    assert [u["status"] for u in ours] == ["open", "in_progress", "fixed"]
    assert ours[0]["description"] == "已派给水务办理。"
    assert ours[-1]["description"] == "已办结。"  # a reply to a caller is not shown
    assert len({u["update_id"] for u in ours}) == 3
    # A repeat report hears that it joined another case (FixMyStreet's DUPLICATE).
    [joined] = [u for u in updates if u["service_request_id"] == repeat_number][-1:]
    assert joined["status"] == "duplicate" and kept_number in joined["description"]
    # Working notes stay inside.
    assert "张三" not in str(updates) and "张先生" not in str(updates)


def test_a_citizens_update_is_recorded_once_per_update_id(
    client: FlaskClient, database: Database, api_key: str
) -> None:
    name = f"client-{uuid.uuid4().hex[:8]}"
    with database.session() as session, session.begin():
        own_key = open311.make_key(session, name=name)
        case = make_case(session)
        # A report this client sent: a client speaks only for its own reports.
        case.intake, case.open311_client, number = Intake.OPEN311, name, case.number
    # Another client's key (or a caller's case) is told there is no such request.
    assert_errors(
        client.post(
            "/open311/v2/servicerequestupdates.json",
            data={
                "api_key": api_key,
                "service_request_id": number,
                "update_id": "1",
                "status": "OPEN",
                "updated_datetime": "2026-12-03T19:49:00+08:00",
                "description": "不是我的",
            },
        ),
        404,
        "json",
    )
    api_key = own_key
    body = {
        "api_key": api_key,
        "service_request_id": number,
        "update_id": "987",
        "status": "OPEN",
        "updated_datetime": "2026-12-03T19:49:00+08:00",
        "description": "路灯还是不亮",
        "first_name": "Wei",
        "last_name": "Zhang",
        "email": "citizen@example.org",
    }
    first = xml_records(
        client.post("/open311/v2/servicerequestupdates.xml", data=body),
        "service_request_updates",
        "request_update",
    )
    assert [[tag for tag, _ in record] for record in first] == [list(POSTED_UPDATE_FIELDS)]
    again = client.post("/open311/v2/servicerequestupdates.json", data=body).get_json()
    assert again == [{"update_id": first[0][0][1].text}]
    with database.session() as session:
        case = session.scalars(select(Case).where(Case.number == number)).one()
        [event] = [e for e in case.events if e.kind == open311.CLIENT_UPDATE]
        assert event.data["description"] == "路灯还是不亮" and event.data["status"] == "open"
        assert "citizen@example.org" not in str(event.data) and "Zhang" not in str(event.data)
        assert case.status == CaseStatus.ASSIGNED  # a citizen's word changes no status

    assert_errors(
        client.post("/open311/v2/servicerequestupdates.xml", data={**body, "api_key": "x"}),
        403,
        "xml",
    )
    assert_errors(
        client.post(
            "/open311/v2/servicerequestupdates.json",
            data={**body, "service_request_id": "999999999999"},
        ),
        404,
        "json",
    )
    assert_errors(
        client.post(
            "/open311/v2/servicerequestupdates.json",
            data={**body, "update_id": "988", "updated_datetime": "yesterday"},
        ),
        400,
        "json",
        "updated_datetime",
    )


# Dates ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-03T19:49:00+08:00", datetime(2026, 12, 3, 11, 49, tzinfo=UTC)),
        ("2026-12-03T11:49:00Z", datetime(2026, 12, 3, 11, 49, tzinfo=UTC)),
        ("2026-12-03T11:49Z", datetime(2026, 12, 3, 11, 49, tzinfo=UTC)),
        ("2026-12-03T11:49:00.25Z", datetime(2026, 12, 3, 11, 49, 0, 250000, tzinfo=UTC)),
        ("2026-12-03", datetime(2026, 12, 2, 16, 0, tzinfo=UTC)),
        # An unescaped "+" in a query string arrives as a space.
        ("2026-12-03T19:49:00 08:00", datetime(2026, 12, 3, 11, 49, tzinfo=UTC)),
    ],
)
def test_w3c_dates_are_read(text: str, expected: datetime) -> None:
    assert open311.parse_w3c(text, field="start_date", zone=CITY) == expected


@pytest.mark.parametrize(
    "text", ["2026-12-03T19:49:00", "2026-12-32", "03/12/2026", "2026-12-03 19:49:00Z", ""]
)
def test_malformed_w3c_dates_are_refused(text: str) -> None:
    with pytest.raises(open311.BadRequestError):
        open311.parse_w3c(text, field="start_date", zone=CITY)


# The command line ----------------------------------------------------------------------------


def test_key_add_prints_the_key_last_and_once(app: Flask, database: Database) -> None:
    name = f"cli-{uuid.uuid4().hex[:6]}"
    runner = app.test_cli_runner()
    result = runner.invoke(args=["open311", "key", "add", name])
    assert result.exit_code == 0, result.output
    key = result.output.strip().splitlines()[-1]
    assert key.startswith(open311.KEY_PREFIX)
    with database.session() as session:
        assert open311.client_for_key(session, key=key) == name
    again = runner.invoke(args=["open311", "key", "add", name])
    assert again.exit_code != 0 and "revoke" in again.output
    revoked = runner.invoke(args=["open311", "key", "revoke", name])
    assert revoked.exit_code == 0, revoked.output
    with database.session() as session:
        assert open311.client_for_key(session, key=key) is None


# A FixMyStreet-style session --------------------------------------------------------------------


@pytest.mark.usefixtures("celery_worker")
def test_a_fixmystreet_style_client_posts_reads_back_and_hears_the_outcome(
    app: Flask, live_server: str, database: Database
) -> None:
    result = app.test_cli_runner().invoke(
        args=["open311", "key", "add", f"fixmystreet-{uuid.uuid4().hex[:6]}"]
    )
    key = result.output.strip().splitlines()[-1]
    base = f"{live_server}/open311/v2"
    started = utcnow().replace(microsecond=0) - timedelta(seconds=1)
    http = requests.Session()

    # It reads the service list, then posts the report form-encoded, as Open311.pm does.
    services = xml_records(http.get(f"{base}/services.xml", timeout=10), "services", "service")
    assert "streetlight" in {dict(s)["service_code"].text for s in services}
    # (Words, place and category of their own in this module, so that it joins no other case.)
    body = report(
        api_key=key,
        service_code="water_supply",
        address_string="尼山镇夫子洞村",
        description="尼山镇夫子洞村自来水停水两天了，家里做饭都没水",
    )
    posted = http.post(f"{base}/requests.xml", data=body, timeout=10)
    [answer] = xml_records(posted, "service_requests", "request")
    number, token = dict(answer)["service_request_id"].text, dict(answer)["token"].text
    assert number and token

    # Read back by token and by id.
    [by_token] = xml_records(
        http.get(f"{base}/tokens/{token}.xml", timeout=10), "service_requests", "request"
    )
    assert dict(by_token)["service_request_id"].text == number

    def routed() -> dict[str, Any] | None:
        [record] = http.get(f"{base}/requests/{number}.json", timeout=10).json()
        return record if record["agency_responsible"] == "水务" else None

    record = wait_until(routed, timeout=60, what="the worker to route the Open311 report")
    assert record["service_code"] == "water_supply" and record["status"] == "open"
    assert record["expected_datetime"] is not None

    def listed(status: str) -> set[str]:
        params = {
            "status": status,
            "start_date": started.isoformat(),
            "end_date": (utcnow() + timedelta(minutes=1)).isoformat(),
        }
        found = http.get(f"{base}/requests.xml", params=params, timeout=10)
        return {
            dict(r)["service_request_id"].text
            for r in xml_records(found, "service_requests", "request")
        }

    assert number in listed("open") and number not in listed("closed")

    # The department works the case; the client hears of it through servicerequestupdates.
    with database.session() as session, session.begin():
        case = session.scalars(select(Case).where(Case.number == number)).one()
        actor = staff.department_actor(session.get_one(Department, "water"))
        lifecycle.accept(session, case=case, actor=actor)
        lifecycle.resolve(session, case=case, actor=actor, reply="管道已抢修，恢复供水。")
    params = {
        "start_date": started.isoformat(),
        "end_date": (utcnow() + timedelta(minutes=1)).isoformat(),
    }
    found = http.get(f"{base}/servicerequestupdates.xml", params=params, timeout=10)
    updates = [dict(u) for u in xml_records(found, "service_request_updates", "request_update")]
    ours = [u for u in updates if u["service_request_id"].text == number]
    assert [u["status"].text for u in ours] == ["open", "in_progress", "fixed"]
    assert ours[-1]["description"].text == "管道已抢修，恢复供水。"
    assert number in listed("closed") and number not in listed("open")
    [closed] = http.get(f"{base}/requests/{number}.json", timeout=10).json()
    assert closed["status_notes"] == "管道已抢修，恢复供水。"
    assert closed["updated_datetime"] >= closed["requested_datetime"]

    # The citizen comments on FixMyStreet; it is posted back and lands on the case's timeline.
    comment = {
        "api_key": key,
        "service_request_id": number,
        "update_id": "5001",
        "status": "FIXED",
        "updated_datetime": utcnow().astimezone(CITY).replace(microsecond=0).isoformat(),
        "description": "谢谢，已经来水了",
        "first_name": "Wei",
        "last_name": "Zhang",
    }
    reply = http.post(f"{base}/servicerequestupdates.xml", data=comment, timeout=10)
    [[(tag, element)]] = xml_records(reply, "service_request_updates", "request_update")
    assert tag == "update_id" and element.text
    with database.session() as session:
        case = session.scalars(select(Case).where(Case.number == number)).one()
        assert [e.data["description"] for e in case.events if e.kind == open311.CLIENT_UPDATE] == [
            "谢谢，已经来水了"
        ]


def test_a_client_posting_too_fast_is_paused_without_slowing_others(database: Database) -> None:
    now = utcnow()
    with database.session() as session, session.begin():
        verdicts = [
            open311.check_post_rate(session, client="busy-client", now=now)
            for _ in range(open311.POST_POLICY.address_ceiling + 1)
        ]
        assert all(verdict.allowed for verdict in verdicts[:-1])
        assert not verdicts[-1].allowed and 0 < verdicts[-1].wait_seconds <= 60
        assert open311.check_post_rate(session, client="quiet-client", now=now).allowed
        later = now + open311.POST_POLICY.ceiling_window + timedelta(seconds=1)
        assert open311.check_post_rate(session, client="busy-client", now=later).allowed
        session.rollback()
