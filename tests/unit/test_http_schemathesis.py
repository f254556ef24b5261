"""The HTTP API against its own OpenAPI document, with schemathesis, in-process (issue 9).

The app is create_api over the access world (tests/unit/access_world.py) in memory, with
its read models; each request carries the token of the operation's owner
(tests/unit/http_operations.py), so generated requests pass authentication and reach the
commands and queries. Path parameters are either generated or the own side's ids.

- Stateless: every operation, a few examples each; no 5xx, only documented statuses,
  content types and response schemas.
- Stateful: chains of calls along the document's links; "a created resource can be read
  back" (ensure_resource_availability) holds because every request names the position of
  the last write in Partnerfleet-Wait-For (read-your-writes).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ensure_resource_availability,
    response_schema_conformance,
    status_code_conformance,
)

from tests.unit.access_world import OWN, world
from tests.unit.http_operations import OPERATIONS, fill
from tests.unit.http_world import Served, app_over
from tests.views import memory_runner

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
Case = schemathesis.Case[APIOperation[Any, Any, Any, Any]]
PARAMETER = re.compile(r"\{([^}]+)\}")
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ReadsItsWrites:
    """ASGI: the API over a copy of the access world, naming in Partnerfleet-Wait-For on
    every request the last Partnerfleet-Position a command answered (as a client reading
    its writes does). `reset()` starts over on a fresh copy."""

    def __init__(self) -> None:
        self.served = fresh()
        self.app: ASGIApp = app_over(self.served.fleet, self.served.views)
        self.position = 0

    def reset(self) -> None:
        """A fresh copy of the world, and no write seen yet."""
        self.served.views.db.close()
        self.served = fresh()
        self.app = app_over(self.served.fleet, self.served.views)
        self.position = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.position:
            headers = [(k, v) for k, v in scope["headers"] if k != b"partnerfleet-wait-for"]
            scope["headers"] = [*headers, (b"partnerfleet-wait-for", b"%d" % self.position)]

        async def seen(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                for name, value in message.get("headers", []):
                    if name.lower() == b"partnerfleet-position" and value.isdigit():
                        self.position = max(self.position, int(value))
            await send(message)

        await self.app(scope, receive, seen)


def own_parameters(key: str) -> dict[str, str]:
    """The path parameters of operation `key` in its own-side call."""
    template, filled = key.split(" ", 1)[1], fill(OPERATIONS[key].path, OWN)
    found = re.fullmatch(PARAMETER.sub("([^/]+)", template), filled)
    assert found is not None, (key, filled)
    return dict(zip(PARAMETER.findall(template), found.groups(), strict=True))


def operation_key(case: Case) -> str:
    """The case's operation as "METHOD /path" (the path as templated)."""
    return f"{case.operation.method.upper()} {case.operation.path}"


def authorized(case: Case, who: str | None = None) -> dict[str, str]:
    """The bearer token of `who`, by default of the operation's owner (none for public
    routes)."""
    who = who or OPERATIONS[operation_key(case)].who
    return {"Authorization": f"Bearer {who}"} if who else {}


def fresh() -> Served:
    """A copy of the access world in memory, its views caught up (schemathesis brings the
    client)."""
    fleet = world()
    views = memory_runner(fleet)
    views.catch_up()
    return Served(fleet, views, None)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def app() -> Iterator[ReadsItsWrites]:
    """The API over the access world, reading its writes."""
    running = ReadsItsWrites()
    yield running
    running.served.views.db.close()


@pytest.fixture(scope="module")
def api_schema(app: ReadsItsWrites) -> schemathesis.BaseSchema:
    """The app's OpenAPI document, its path parameters mixed with the own side's ids."""
    loaded = schemathesis.openapi.from_asgi("/openapi.json", app)

    def flatmap_path_parameters(context: Any, parameters: dict[str, Any] | None) -> Any:
        if not parameters:
            return st.just(parameters)
        own = own_parameters(f"{context.operation.method.upper()} {context.operation.path}")
        return st.sampled_from([parameters, {**parameters, **own}])

    loaded.hooks.register_hook_with_name(flatmap_path_parameters, "flatmap_path_parameters")
    return loaded


@pytest.mark.parametrize("key", sorted(OPERATIONS))
def test_issue_9_every_operation_answers_only_what_its_openapi_document_says(
    api_schema: schemathesis.BaseSchema, key: str
) -> None:
    """R-PAR-1…R-ALR-4 over HTTP: no 5xx, documented statuses, content types and schemas."""
    method, path = key.split(" ", 1)
    operation = api_schema[path][method]

    @hypothesis.given(case=operation.as_strategy())
    @hypothesis.settings(
        max_examples=10,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def answers_as_documented(case: Case) -> None:
        case.call_and_validate(headers=authorized(case), checks=CHECKS)

    answers_as_documented()


def test_issue_9_chains_of_calls_along_the_links_read_back_what_they_created(
    app: ReadsItsWrites, api_schema: schemathesis.BaseSchema
) -> None:
    """R-PAR-1, R-HLD-2 …: stateful runs along the OpenAPI links; a created resource can be
    read back at once (read-your-writes), and every answer is as documented."""
    machine = api_schema.as_state_machine()

    class Machine(machine):  # type: ignore[misc, valid-type]
        def setup(self) -> None:
            app.reset()
            self.principals: dict[str, str | None] = {}

        def get_call_kwargs(self, case: Case) -> dict[str, Any]:
            # A step along a link is sent by whoever sent the step it follows: the client
            # that created a resource reads it back (with its own token).
            parent = self.recorder.find_parent(case_id=case.id)
            owner = OPERATIONS[operation_key(case)].who
            who = owner if parent is None else self.principals.get(parent.id, owner)
            self.principals[case.id] = who
            return {"headers": authorized(case, who)}

        def validate_response(self, response: Any, case: Case, **kwargs: Any) -> None:
            case.validate_response(
                response,
                checks=[*CHECKS, ensure_resource_availability],
                transport_kwargs=kwargs or None,
                recorder=self.recorder,
            )

    Machine.run(
        settings=hypothesis.settings(
            max_examples=10,
            stateful_step_count=6,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
    )
