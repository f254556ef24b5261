"""The access matrix over HTTP (issue 9): for every operation of the OpenAPI document, the
codes and problem documents come through: 401 without a token or with a refused one, 403
for a role that may never, 404 for another tenant's ids, 2xx for the own tenant. A refused
request records nothing. The cells of the whole matrix are proved at the access layer
(test_access_commands.py, test_access_queries.py); here each route shows it passes them on.

The coverage test fails when the OpenAPI document has an operation that
tests/unit/http_operations.py does not map to a command or query of the matrices.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from handlers.base import COMMANDS
from tests.scenarios import event_count, in_memory_fleet
from tests.unit.access_world import OTHER, OWN, Side, world
from tests.unit.http_client import problem_of
from tests.unit.http_operations import OPERATIONS, PUBLIC, fill
from tests.unit.http_world import Served, app_over, operations, serve
from tests.unit.test_access_queries import QUERIES
from tests.views import memory_runner


@pytest.fixture
def served() -> Iterator[Served]:
    """A fresh copy of the access world, served."""
    running = serve(world())
    yield running
    running.close()


def call(served: Served, key: str, who: str | None, side: Side) -> httpx.Response:
    """The operation `key`'s call on `side`'s ids, by the principal `who` (None: no token)."""
    op, method = OPERATIONS[key], key.split(" ", 1)[0]
    body = None if op.body is None else fill(op.body, side)
    return served.api.as_(who, method, fill(op.path, side), json=body, params=op.query)


def refused(answer: httpx.Response, status: int, kind: str) -> None:
    """`answer` is a problem of `kind` with `status`."""
    assert (answer.status_code, problem_of(answer)["type"]) == (status, f"/problems/{kind}")


@pytest.mark.parametrize("key", sorted(OPERATIONS))
def test_issue_9_every_route_answers_401_403_404_and_2xx_as_the_matrix_says(
    served: Served, key: str
) -> None:
    """R-PAR-2, R-LNK-1, R-HLD-3: no token 401, a refused token 401, a role that may never
    403, another tenant's ids 404 (all problem+json, nothing recorded), the own tenant 2xx."""
    op = OPERATIONS[key]
    if op.given is not None:
        op.given(served.fleet)
        served.views.catch_up()
    stored = event_count(served.fleet)

    if op.who is not None:
        missing = call(served, key, None, OWN)
        refused(missing, 401, "unauthenticated")
        assert missing.headers["www-authenticate"] == 'Bearer realm="partnerfleet"'
        refused(call(served, key, "forged", OWN), 401, "unauthenticated")
    if op.denied is not None:
        refused(call(served, key, op.denied, OWN), 403, "forbidden")
    if op.tenant:
        refused(call(served, key, op.who, OTHER), 404, "not-found")
    assert event_count(served.fleet) == stored
    answer = call(served, key, op.who, OWN)

    assert answer.status_code == op.ok, answer.text


def test_issue_9_the_matrices_list_every_operation_of_the_openapi_document() -> None:
    """Every operation of GET /openapi.json is in tests/unit/http_operations.py, naming a
    command of COMMANDS or a query of the query matrix; an unlisted one fails by name."""
    fleet = in_memory_fleet()
    published = set(operations(app_over(fleet, memory_runner(fleet))))

    unlisted = sorted(published - set(OPERATIONS))
    gone = sorted(set(OPERATIONS) - published)
    unknown = sorted(
        f"{key}: {op.name}"
        for key, op in OPERATIONS.items()
        if op.name not in COMMANDS and op.name not in QUERIES and op.name != PUBLIC
    )

    assert unlisted == [], f"operations missing from tests/unit/http_operations.py: {unlisted}"
    assert gone == [], f"rows for operations the API no longer has: {gone}"
    assert unknown == [], f"rows naming no command or query of the matrices: {unknown}"


def test_issue_9_every_public_route_is_the_only_kind_without_a_token() -> None:
    """Only health, the problem types and the demo keys answer without a token; any other is a
    command or query of the matrices, so it has an owner who may call it."""
    public = sorted(key for key, op in OPERATIONS.items() if op.who is None)

    assert public == ["GET /.well-known/jwks.json", "GET /healthz", "GET /problems/{kind}"]
    assert all(op.name == PUBLIC for op in OPERATIONS.values() if op.who is None)
