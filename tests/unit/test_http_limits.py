"""Issue 9: request bodies are bounded in size (413) and JSON in nesting depth (400).

Bounds (infra/http/limits.py, docs/decisions.md): 1 MiB per body, 8 MiB under /intake/,
objects and arrays nested at most 32 deep. A refused body records nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi import APIRouter

from infra.http.limits import MAX_BODY_BYTES, MAX_INTAKE_BODY_BYTES, MAX_JSON_DEPTH
from infra.http.routing import FleetRoute
from tests.scenarios import event_count, in_memory_fleet
from tests.unit.http_client import bearer, client, problem_of

intake = APIRouter(route_class=FleetRoute)


@intake.post("/intake/test-batches")
def receive_batch(batch: dict[str, object]) -> dict[str, int]:
    """Accepts any JSON object (a stand-in for the intake routes' prefix)."""
    return {"keys": len(batch)}


def nested(depth: int) -> str:
    """A JSON body of arrays nested `depth` deep, inside the object a route expects."""
    return '{"a":' + "[" * (depth - 1) + "]" * (depth - 1) + "}"


def test_r_par_1_a_body_over_1_mib_is_413_before_it_is_read() -> None:
    """R-PAR-1: registering with a body over the bound: 413 at once, nothing recorded."""
    fleet = in_memory_fleet()
    name = "x" * MAX_BODY_BYTES

    answer = client(fleet).post(
        "/partners", json={"location_id": "L", "name": name}, headers=bearer("ops")
    )

    assert (answer.status_code, problem_of(answer)["type"]) == (413, "/problems/body-too-large")
    assert event_count(fleet) == 0


def test_i9_a_chunked_body_without_length_is_cut_off_at_the_bound() -> None:
    """No Content-Length (chunked): 413 once the bytes received pass the bound."""

    def chunks() -> Iterator[bytes]:
        yield b'{"location_id": "L", "name": "'
        for _ in range(MAX_BODY_BYTES // 65_536 + 2):
            yield b"x" * 65_536
        yield b'"}'

    answer = client(in_memory_fleet()).post(
        "/partners", content=chunks(), headers=bearer("ops", content_type="application/json")
    )

    assert (answer.status_code, problem_of(answer)["type"]) == (413, "/problems/body-too-large")


def test_i9_intake_routes_take_up_to_8_mib_and_no_more() -> None:
    """Under /intake/ a 2 MiB batch passes; one over 8 MiB is 413."""
    api = client(in_memory_fleet(), None, intake)
    two_mib = json.dumps({"reports": "x" * (2 * MAX_BODY_BYTES)})
    nine_mib = json.dumps({"reports": "x" * (MAX_INTAKE_BODY_BYTES + 1)})
    json_type = {"content-type": "application/json"}

    accepted = api.post("/intake/test-batches", content=two_mib, headers=json_type)
    refused = api.post("/intake/test-batches", content=nine_mib, headers=json_type)

    assert (accepted.status_code, accepted.json()) == (200, {"keys": 1})
    assert (refused.status_code, problem_of(refused)["type"]) == (413, "/problems/body-too-large")


def test_i9_json_nested_deeper_than_32_is_400() -> None:
    """32 levels pass to validation; 33 are refused before it, with what the bound is."""
    api = client(in_memory_fleet(), None, intake)
    json_type = {"content-type": "application/json"}

    at_bound = api.post("/intake/test-batches", content=nested(MAX_JSON_DEPTH), headers=json_type)
    beyond = api.post("/intake/test-batches", content=nested(MAX_JSON_DEPTH + 1), headers=json_type)

    assert at_bound.status_code == 200
    assert (beyond.status_code, problem_of(beyond)["type"]) == (400, "/problems/nesting-too-deep")
    assert "32" in problem_of(beyond)["detail"]


def test_i9_json_nested_past_the_parsers_recursion_is_400_too() -> None:
    """100,000 levels (the parser's own recursion limit): still a 400, not a 500."""
    body = "[" * 100_000 + "]" * 100_000

    answer = client(in_memory_fleet(), None, intake).post(
        "/intake/test-batches", content=body, headers={"content-type": "application/json"}
    )

    assert (answer.status_code, problem_of(answer)["type"]) == (400, "/problems/nesting-too-deep")


def test_i9_brackets_inside_strings_do_not_count_as_nesting() -> None:
    """Depth is of the parsed value: a string full of brackets is not deep."""
    body = json.dumps({"note": "[" * 100})

    answer = client(in_memory_fleet(), None, intake).post(
        "/intake/test-batches", content=body, headers={"content-type": "application/json"}
    )

    assert answer.status_code == 200


@pytest.mark.parametrize("content_type", [None, "application/x-www-form-urlencoded", "text/plain"])
def test_r_par_1_a_json_body_sent_without_the_json_content_type_is_400_saying_so(
    content_type: str | None,
) -> None:
    """R-PAR-1: a well-formed JSON body under another Content-Type (curl -d sends a form's,
    some clients none) is refused with a message naming the Content-Type to send, not a
    validation error saying the body is not an object; nothing is recorded (issue 9 attack)."""
    fleet = in_memory_fleet()
    body = json.dumps({"location_id": "L", "name": "Reseller"})
    headers = {} if content_type is None else {"content-type": content_type}

    answer = client(fleet).post("/partners", content=body, headers=bearer("ops", **headers))

    assert (answer.status_code, problem_of(answer)["type"]) == (400, "/problems/malformed-request")
    assert "Content-Type: application/json" in problem_of(answer)["detail"]
    assert event_count(fleet) == 0


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ('{"location_id": "L", "location_id": "M", "name": "Reseller"}', "'location_id'"),
        ('{"location_id": "L", "name": "Reseller", "name": "Other"}', "'name'"),
        ('{"location_id": "L", "name": "R", "extra": {"a": 1, "a": 2}}', "'a'"),
    ],
    ids=["first-field", "last-field", "nested"],
)
def test_r_par_1_a_key_twice_in_one_object_is_400_naming_it_as_the_feeds_refuse_it(
    body: str, named: str
) -> None:
    """R-PAR-1: JSON readers disagree on which value a repeated key has (Python keeps the
    last, others the first): refused, naming the key, nothing recorded (issue 9 attack 4)."""
    fleet = in_memory_fleet()

    answer = client(fleet).post(
        "/partners", content=body, headers=bearer("ops", **{"content-type": "application/json"})
    )

    problem = problem_of(answer)
    assert (answer.status_code, problem["type"]) == (400, "/problems/malformed-request")
    assert named in problem["detail"]
    assert "twice" in problem["detail"]
    assert event_count(fleet) == 0


def test_r_par_1_a_number_beyond_64_bits_is_400_not_a_stored_bignum() -> None:
    """A JSON number beyond 64 bits cannot be read back by most consumers: refused."""
    fleet = in_memory_fleet()
    body = '{"location_id": "L", "name": "R", "n": 123456789012345678901234567890}'

    answer = client(fleet).post(
        "/partners", content=body, headers=bearer("ops", **{"content-type": "application/json"})
    )

    assert (answer.status_code, problem_of(answer)["type"]) == (400, "/problems/malformed-request")
    assert event_count(fleet) == 0
