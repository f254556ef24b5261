"""What schemathesis found in the HTTP mechanics (issue 9), pinned as plain tests.

- A command whose result is kept with its Idempotency-Key must be storable: the intake's
  outcome was not (500).
- A query parameter a query refuses (a control character, a moment without offset) is an
  invalid field (422, `in: query`), not a rule's refusal (409, undocumented on reads).
- A Partnerfleet-Wait-For beyond the last stored position can never be reached: 400 at once,
  not 503 after a wait.
- GET /problems/{kind} documents its 404.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from tests.scenarios import event_count, report
from tests.unit.access_world import world
from tests.unit.http_client import problem_of
from tests.unit.http_world import Served, serve


@pytest.fixture
def served() -> Iterator[Served]:
    """The access world, served."""
    running = serve(world())
    yield running
    running.close()


def test_r_hld_1_an_e2open_batch_under_an_idempotency_key_answers_its_outcome_again(
    served: Served,
) -> None:
    """R-HLD-1: the same batch with the same Idempotency-Key: the same 200 outcome (a
    malformed report kept as rejected), recorded once."""
    body = {"batch_id": "b-idem", "reports": [report("PN7", "LOC-1"), None]}
    headers = {"Authorization": "Bearer feed", "Idempotency-Key": '"intake-1"'}
    first = served.api.post("/intake/e2open/batches", json=body, headers=headers)
    stored = event_count(served.fleet)

    again = served.api.post("/intake/e2open/batches", json=body, headers=headers)

    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == first.json()
    assert first.json()["accepted"] == ["PN7"]
    assert [r["index"] for r in first.json()["rejected"]] == [1]
    assert again.headers["partnerfleet-position"] == first.headers["partnerfleet-position"]
    assert event_count(served.fleet) == stored


def test_r_con_3_a_control_character_in_a_query_parameter_is_422_naming_it(
    served: Served,
) -> None:
    """R-CON-3: an auditor's serial with a control character: 422 `invalid-fields`, the
    field `serial` in the query."""
    answer = served.api.as_("auditor", "GET", "/audit/consent-history", params={"serial": "S\x0e1"})

    problem = problem_of(answer)
    assert (answer.status_code, problem["type"]) == (422, "/problems/invalid-fields")
    [error] = problem["errors"]
    assert (error["field"], error["in"]) == ("serial", "query")
    assert "control character" in error["message"]


def test_i9_a_wait_for_beyond_the_last_stored_position_is_400_at_once(served: Served) -> None:
    """Read-your-writes: a position no command answered cannot be waited for: 400
    `malformed-request` naming the header, without waiting."""
    beyond = str((served.fleet.recorder.max_notification_id() or 0) + 1_000)

    answer = served.api.get(
        "/partners/LOC-1/customer-groups",
        headers={"Authorization": "Bearer ben", "Partnerfleet-Wait-For": beyond},
    )

    problem = problem_of(answer)
    assert (answer.status_code, problem["type"]) == (400, "/problems/malformed-request")
    assert "Partnerfleet-Wait-For" in problem["detail"]


def test_i9_the_problem_type_route_documents_its_404(served: Served) -> None:
    """GET /problems/{kind} of an unknown kind is 404, and its OpenAPI says so."""
    documented = served.api.get("/openapi.json").json()["paths"]["/problems/{kind}"]["get"]

    answer = served.api.get("/problems/no-such-kind")

    assert answer.status_code == 404
    assert "404" in documented["responses"]


SERIAL_PATHS = [
    ("c1", "GET", "/customers/C1/devices/{serial}"),
    ("c1", "GET", "/customers/C1/devices/{serial}/consent-history"),
    ("anna", "GET", "/partners/LOC-1/devices/{serial}/configuration"),
    ("c1", "PUT", "/customers/C1/hosting-devices/{host_serial}/partner"),
]


@pytest.mark.parametrize(
    "serial", ["S\x001", "S\u202e1", "S-1", "S" * 33], ids=["nul", "rtl", "dash", "long"]
)
@pytest.mark.parametrize(
    ("who", "method", "path"), SERIAL_PATHS, ids=[p for _, _, p in SERIAL_PATHS]
)
def test_r_par_2_a_malformed_serial_in_the_path_is_422_in_path(
    served: Served, serial: str, who: str, method: str, path: str
) -> None:
    """R-PAR-2: a serial with a NUL, an RTL override, a dash or 33 characters in the path:
    422 naming the field `serial` in the path, never the query (issue 9 attack 6) nor a
    rule's 409 (a malformed serial is an invalid value, `domain.device.SerialError`)."""
    body = {"partner": {"location_id": "LOC-1"}} if method == "PUT" else None
    [name] = re.findall(r"\{(\w+)\}", path)
    answer = served.api.as_(who, method, path.format(**{name: quote(serial)}), json=body)

    problem = problem_of(answer)
    assert (answer.status_code, problem["type"]) == (422, "/problems/invalid-fields")
    [error] = problem["errors"]
    assert (error["field"], error["in"]) == (name, "path")
