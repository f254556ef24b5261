"""Issue 9: every error is application/problem+json (RFC 9457), with a specific detail.

One route per kind of error (a test router) checks the mapping table; the real partner
routes check the common cases end to end. No answer ever carries a stack trace.
"""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from fastapi import APIRouter
from structlog.testing import capture_logs

from domain.base import DomainError, NotFoundError
from domain.text import TextError
from handlers.access import ForbiddenError
from handlers.base import ConflictError
from handlers.conditions import KeyInFlightError, PreconditionFailedError
from infra.http.auth import KeysUnavailableError
from infra.http.routing import FleetRoute
from tests.scenarios import event_count, in_memory_fleet
from tests.unit.http_client import bearer, client, problem_of, two_partners

raising = APIRouter(route_class=FleetRoute)
ERRORS: dict[str, Exception] = {
    "rule": DomainError("At most 25 favourites per user (R-FAV-2); unmark one first."),
    "forbidden": ForbiddenError("The role auditor may not register partner."),
    "missing": NotFoundError("No partner with Location ID 'LOC-9' found."),
    "conflict": ConflictError("register_partner conflicted with concurrent changes 8 times."),
    "in-flight": KeyInFlightError("A request with this Idempotency-Key is still being processed."),
    "stale": PreconditionFailedError("If-Match names no current version of this resource."),
    "text": TextError("name: a NUL character (U+0000) at position 1; remove it."),
    "sqlite-down": sqlite3.OperationalError("unable to open database file /var/secret/path"),
    "pg-down": psycopg.OperationalError("connection to server at 10.0.0.7 failed: user app"),
    "bug": RuntimeError("Traceback secret=hunter2 in frame"),
    "idp-down": KeysUnavailableError("The identity provider's keys cannot be fetched."),
}


@raising.post("/raise/{error_kind}")
def raise_error(error_kind: str) -> None:
    """Raises the error named in the path."""
    raise ERRORS[error_kind]


@pytest.mark.parametrize(
    ("name", "status", "kind"),
    [
        ("rule", 409, "rule-refused"),
        ("forbidden", 403, "forbidden"),
        ("missing", 404, "not-found"),
        ("conflict", 409, "concurrent-change"),
        ("in-flight", 409, "key-in-flight"),
        ("stale", 412, "precondition-failed"),
        ("text", 422, "invalid-fields"),
        ("sqlite-down", 503, "storage-unavailable"),
        ("pg-down", 503, "storage-unavailable"),
        ("bug", 500, "internal-error"),
        ("idp-down", 503, "keys-unavailable"),
    ],
)
def test_i9_each_error_kind_answers_its_status_and_problem_type(
    name: str, status: int, kind: str
) -> None:
    """The mapping: one status and one `type` per kind of error, in problem+json."""
    with capture_logs():  # no console rendering of the 500's traceback (slow)
        answer = client(in_memory_fleet(), None, raising).post(f"/raise/{name}")

    body = problem_of(answer)
    assert (answer.status_code, body["type"]) == (status, f"/problems/{kind}")


def test_r_fav_2_a_rule_refusal_names_its_rule_and_says_why() -> None:
    """R-FAV-2: a domain refusal is 409 with its reason as detail and its rule ID as `rule`."""
    answer = client(in_memory_fleet(), None, raising).post("/raise/rule")

    body = problem_of(answer)
    assert body["rule"] == "R-FAV-2"
    assert body["detail"] == "At most 25 favourites per user (R-FAV-2); unmark one first."


def test_i9_storage_down_is_503_with_retry_after_and_no_driver_text() -> None:
    """A store that is away: 503 + Retry-After; the driver's text (hosts, users) stays out."""
    api = client(in_memory_fleet(), None, raising)

    answers = [api.post("/raise/sqlite-down"), api.post("/raise/pg-down")]

    for answer in answers:
        assert answer.headers["retry-after"] == "5"
        assert "10.0.0.7" not in answer.text
        assert "/var/secret" not in answer.text


def test_i9_an_unexpected_error_is_500_without_trace_and_logged_with_the_request_id() -> None:
    """A bug: a generic 500 without the error's text; the log has it under the request id."""
    api = client(in_memory_fleet(), None, raising)

    with capture_logs() as logs:
        answer = api.post("/raise/bug")

    body = problem_of(answer)
    assert "hunter2" not in answer.text
    assert "Traceback" not in answer.text
    [line] = [e for e in logs if e["event"] == "request_failed"]
    assert line["request_id"] == answer.headers["x-request-id"]
    assert body["instance"] == f"urn:uuid:{line['request_id']}"


def test_i9_a_text_error_names_its_field() -> None:
    """A text the store refuses is 422 naming the argument."""
    answer = client(in_memory_fleet(), None, raising).post("/raise/text")

    assert problem_of(answer)["errors"] == [
        {
            "field": "name",
            "in": "body",
            "message": "a NUL character (U+0000) at position 1; remove it.",
        }
    ]


def test_r_par_1_malformed_json_is_400_and_records_nothing() -> None:
    """R-PAR-1: a body that is not JSON is 400 before any command runs."""
    fleet = in_memory_fleet()
    api = client(fleet)

    answer = api.post(
        "/partners",
        content=b'{"location_id": "LOC-1",',
        headers=bearer("ops", content_type="application/json"),
    )

    assert problem_of(answer)["type"] == "/problems/malformed-request"
    assert (answer.status_code, event_count(fleet)) == (400, 0)


def test_r_par_1_invalid_fields_are_422_naming_each_field() -> None:
    """R-PAR-1: each invalid field is named with its message; the input is not echoed."""
    fleet = in_memory_fleet()

    answer = client(fleet).post(
        "/partners", json={"location_id": "", "nme": "s3cr3t-typo"}, headers=bearer("ops")
    )

    body = problem_of(answer)
    assert answer.status_code == 422
    assert {(e["field"], e["in"]) for e in body["errors"]} == {
        ("location_id", "body"),
        ("name", "body"),
        ("nme", "body"),
    }
    assert "s3cr3t-typo" not in answer.text
    assert event_count(fleet) == 0


def test_i9_no_token_is_401_with_a_bearer_challenge() -> None:
    """No Authorization header: 401 and `WWW-Authenticate: Bearer realm=...` (no error code)."""
    answer = client(in_memory_fleet()).post("/partners", json={"location_id": "L", "name": "N"})

    assert problem_of(answer)["type"] == "/problems/unauthenticated"
    assert answer.headers["www-authenticate"] == 'Bearer realm="partnerfleet"'


def test_i9_a_refused_token_is_401_with_invalid_token_and_never_echoed() -> None:
    """A token the verifier refuses: 401, `error="invalid_token"`, the token nowhere."""
    answer = client(in_memory_fleet()).get("/partners/LOC-1", headers=bearer("forged-t0ken"))

    assert answer.status_code == 401
    assert (
        answer.headers["www-authenticate"] == 'Bearer realm="partnerfleet", error="invalid_token"'
    )
    assert "forged-t0ken" not in answer.text


def test_r_lnk_1_another_partners_resource_is_404_in_the_same_words_as_a_missing_one() -> None:
    """R-LNK-1: Otto (LOC-2) asking for LOC-1 gets what he gets for a partner that is not."""
    fleet = in_memory_fleet()
    two_partners(fleet)
    api = client(fleet)

    foreign = api.get("/partners/LOC-1", headers=bearer("otto"))
    missing = api.get("/partners/LOC-404", headers=bearer("otto"))

    assert (foreign.status_code, missing.status_code) == (404, 404)
    assert problem_of(foreign)["detail"].replace("LOC-1", "X") == problem_of(missing)[
        "detail"
    ].replace("LOC-404", "X")


def test_r_par_2_a_role_that_may_never_read_partner_data_gets_403() -> None:
    """R-PAR-2: only partner users see a partner's data; an auditor is forbidden (403)."""
    fleet = in_memory_fleet()
    two_partners(fleet)

    answer = client(fleet).get("/partners/LOC-1", headers=bearer("auditor"))

    assert (answer.status_code, problem_of(answer)["type"]) == (403, "/problems/forbidden")


def test_i9_unknown_routes_and_methods_are_problems_too() -> None:
    """404 for no route, 405 for a method the route has not, both problem+json."""
    api = client(in_memory_fleet())

    nowhere, wrong_method = api.get("/nowhere"), api.delete("/partners")

    assert (nowhere.status_code, problem_of(nowhere)["type"]) == (404, "/problems/not-found")
    assert problem_of(wrong_method)["type"] == "/problems/method-not-allowed"


def test_i9_every_problem_type_is_documented_at_its_uri() -> None:
    """The `type` of a problem resolves to its description."""
    api = client(in_memory_fleet())

    answer = api.get("/problems/precondition-failed")

    assert answer.json()["status"] == 412
    assert api.get("/problems/no-such-kind").status_code == 404
