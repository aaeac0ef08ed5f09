"""Schemathesis over the department API's OpenAPI document, against the real app in-process
(run by `tests.fuzz.harness` in a process of its own; `tests/fuzz/test_fuzz.py` starts it).

The schema is loaded from the app itself (`/api/v1/openapi.yaml`, which serves
`api/openapi.yaml`), so the fuzzer tests what departments are given. Requests are generated
from every operation, both as the document allows (positive) and as it does not (negative),
authenticated as the water authority's system with its API key, except a share sent with no
key or a wrong one. Half the requests that name a case name one of the water authority's real
cases (or another department's), so actions reach the lifecycle rather than a 404; the pool of
open cases is topped up as the actions use them up.

Checks, for every request: `not_a_server_error`, `response_schema_conformance` (the answer
matches what the document says for that status), and no row written by a refused request (4xx).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from sqlalchemy import select

from cases import staff
from cases.models import Case, CaseStatus
from hotline.db import Database
from hotline.wiring import wiring_of
from tests.fuzz.harness import ErrorLog, Figures, RowCounts, examples
from tests.support.factories import make_case

DEPARTMENT = "water"
# Open cases of the department kept for the fuzzer to act on.
OPEN_POOL = 8
WORKABLE = (CaseStatus.ASSIGNED, CaseStatus.ACCEPTED)


@dataclass
class CasePool:
    """Real case numbers to put in generated paths: the department's, and another's."""

    database: Database
    numbers: list[str]
    foreign: str

    def top_up(self) -> None:
        """Route cases to the department until OPEN_POOL of them can still be worked."""
        with self.database.session() as session, session.begin():
            open_numbers = set(
                session.scalars(
                    select(Case.number).where(
                        Case.number.in_(self.numbers), Case.status.in_(WORKABLE)
                    )
                )
            )
            for _ in range(OPEN_POOL - len(open_numbers)):
                self.numbers.append(make_case(session, department_code=DEPARTMENT).number)
            self.numbers[:] = self.numbers[-4 * OPEN_POOL :]


def _seed(database: Database) -> tuple[str, CasePool]:
    with database.session() as session, session.begin():
        key = staff.issue_api_key(session, code=DEPARTMENT)
        foreign = make_case(session, department_code="power").number
    pool = CasePool(database=database, numbers=[], foreign=foreign)
    pool.top_up()
    return key, pool


def fuzz(app: Flask, row_counts: RowCounts, errors: ErrorLog, seen: Figures) -> None:
    """Send `examples()` generated requests; raise, with the smallest failing one, if a check
    fails."""
    database = wiring_of(app).database
    key, pool = _seed(database)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.yaml", app)
    cases = st.one_of(
        schema.as_strategy(generation_mode=GenerationMode.POSITIVE),
        schema.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )
    authorisation = st.sampled_from(
        [f"Bearer {key}"] * 8 + [None, "Bearer nope", f"Basic {key}", f"Bearer {key}x"]
    )
    real_number = st.one_of(st.none(), st.integers(min_value=0, max_value=10))

    client = app.test_client()

    def send(case: Any, auth: str | None) -> None:
        """Send one case as the department's system (or a stranger) and check the answer."""
        headers = dict(case.headers or {})
        headers.pop("Authorization", None)
        if auth is not None:
            headers["Authorization"] = auth
        case.headers = headers
        before, errors_before = row_counts(), errors.count
        try:
            response = case.call()
        except Exception:
            seen.crashes += 1
            raise
        seen.answered(response.status_code)
        # An exception caught and answered politely (the IVR apologises with a 200) is still a
        # crash: odd input deserves a clear refusal or a normal answer, not an exception.
        crashed_inside = errors.count > errors_before
        seen.internal_errors += crashed_inside
        assert not crashed_inside, f"the app logged an exception:\n{errors.last[-3000:]}"
        if 400 <= response.status_code < 500:
            written = RowCounts.written(before, row_counts())
            seen.rows_written_by_rejected += sum(written.values())
            assert not written, f"a refused request ({response.status_code}) wrote {written}"
        case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
        number = (case.path_parameters or {}).get("number")
        if number in pool.numbers:
            # Whatever was sent, the case still reads for the department (the audit's note of
            # "\ud800" made it answer 500 to everyone).
            read = client.get(f"/api/v1/cases/{number}", headers={"Authorization": f"Bearer {key}"})
            assert read.status_code in (200, 404), f"case {number} now answers {read.status_code}"

    # The audit's reproducer first, then what Hypothesis generates.
    note = schema["/cases/{number}/notes"]["POST"]
    send(
        note.Case(
            path_parameters={"number": pool.numbers[0]},
            body={"text": "\ud800"},
            media_type="application/json",
        ),
        f"Bearer {key}",
    )

    @settings(
        max_examples=examples(),
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases, auth=authorisation, pick=real_number)
    def one_request(case: Any, auth: str | None, pick: int | None) -> None:
        pool.top_up()
        if pick is not None and "number" in (case.path_parameters or {}):
            numbers = [*pool.numbers, pool.foreign]
            case.path_parameters["number"] = numbers[pick % len(numbers)]
        send(case, auth)

    one_request()
