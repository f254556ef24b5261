"""Attack on PlainFront (infra/http/front.py, session 18): what a hostile client or a
failing store makes of the per-path memory and of the front's fall-back to the stack.

- A refusal or a failure met by the plain path must be answered once: the checks (token
  verification, the store's partner read, a storage wait) are not run a second time by the
  stack, so a refused token is logged once and a storage failure waits once.
- Only a path the plain path answered is remembered, and only a path of bounded length: an
  unauthenticated client can neither fill the memory with paths of its choosing (each of
  them up to the server's URL size) nor push the partners' pages out of it.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from infra.http import deps, front
from infra.http.routes import customers
from tests.unit.test_http_customers import GROUPS, World, world
from tests.unit.test_http_front import raw, without_front


@pytest.fixture
def w() -> World:
    made = world()
    made.api.app.state.views.catch_up()  # type: ignore[attr-defined]
    return made


def counted(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[int]:
    """Calls of `module.name` since (one entry per call)."""
    seen: list[int] = []
    real = getattr(module, name)

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, spy)
    return seen


@pytest.mark.parametrize(
    ("path", "token", "status"),
    [
        (GROUPS, "Bearer nobody", 401),  # the verifier refuses the token
        (GROUPS, "Bearer otto", 404),  # another partner's Location ID
        ("/partners/LOC-2/customer-groups", "Bearer anna", 404),
    ],
)
def test_a_refusal_runs_the_checks_once(
    w: World, monkeypatch: pytest.MonkeyPatch, path: str, token: str, status: int
) -> None:
    raw(w, path, "Bearer otto" if "LOC-2" in path else "Bearer anna")  # the path is learnt
    claims = counted(monkeypatch, customers, "claims_of")

    refused = raw(w, path, token)

    assert refused[0] == status
    assert b"application/problem+json" in dict(refused[1]).get("content-type", "").encode()
    assert len(claims) == 1


def test_a_storage_failure_is_waited_for_once_and_answered_503(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The views' pool timing out (PostgreSQL down): one wait, not one per layer."""
    assert raw(w, GROUPS, "Bearer anna")[0] == 200
    waits: list[int] = []

    def down(*args: Any, **kwargs: Any) -> Any:
        waits.append(1)
        raise psycopg.OperationalError("couldn't get a connection after 30.00 sec")

    monkeypatch.setattr(deps.Reads, "page", down)

    answer = raw(w, GROUPS, "Bearer anna")

    assert answer[0] == 503
    assert b"storage-unavailable" in answer[2]
    assert len(waits) == 1
    monkeypatch.undo()
    assert raw(w, GROUPS, "Bearer anna")[0] == 200  # recovered: the front answers again


def test_only_a_path_the_plain_path_answered_is_remembered(w: World) -> None:
    routes = w.api.app.state.plain_routes  # type: ignore[attr-defined]
    for i in range(50):
        raw(w, f"/partners/X{i}/customer-groups", None)  # no token
        raw(w, f"/partners/Y{i}/customer-groups", "Bearer nobody")  # a refused token
        raw(w, f"/partners/Z{i}/customer-groups", "Bearer anna")  # another partner's
    assert len(routes) == 0

    assert raw(w, GROUPS, "Bearer anna")[0] == 200
    assert len(routes) == 1


def test_a_long_path_is_not_remembered() -> None:
    """The memory's bound is in paths: each path's size is bounded too (a path up to the
    server's URL limit, 4,096 times, would be hundreds of MB)."""
    bound: int = front.MAX_PATH_CHARS
    routes = front.PlainRoutes()
    route = type("Route", (), {"endpoint": None})()

    async def plain(request: Any) -> None:
        return None

    for path in ("/p/" + "L" * bound, "/p/" + "L" * (bound - 3)):
        routes.learn({"type": "http", "method": "GET", "path": path, "route": route}, plain)

    assert routes.chosen({"path": "/p/" + "L" * bound}) is None
    assert routes.chosen({"path": "/p/" + "L" * (bound - 3)}) is not None
    assert len(routes) == 1


HOSTILE = [
    ("/partners/LOC%2D1/customer-groups", {}),  # %-encoded: the same decoded path
    ("/partners/LOC-1%2Fcustomer-groups", {}),  # an encoded slash: another path
    ("/partners/LOC-1//customer-groups", {}),
    ("//partners/LOC-1/customer-groups", {}),
    ("/Partners/LOC-1/customer-groups", {}),
    ("/partners/loc-1/customer-groups", {}),
    ("/partners/LOC-1/customer-groups/", {}),
    ("/partners/LOC-1/customer-groups?limit=%31", {}),
    ("/partners/LOC-1/customer-groups?limit=1&limit=1", {}),
    ("/partners/LOC-1/customer-groups?limit=1&", {}),
    ("/partners/LOC-1/customer-groups?=1", {}),
    ("/partners/LOC-1/customer-groups?cursor=", {}),
    ("/partners/LOC-1/customer-groups?limit=0", {}),
    ("/partners/LOC-1/customer-groups?limit=99999999", {}),
    ("/partners/LOC-1/customer-groups?lim%69t=2", {}),
    ("/partners/LOC-1/customer-groups", {"Expect": "100-continue"}),
    ("/partners/LOC-1/customer-groups", {"X-Request-Id": "<script>alert(1)</script>\\r"}),
    ("/partners/LOC-1/customer-groups", {"Authorization": "bearer anna"}),
    ("/partners/LOC-1/customer-groups", {"Authorization": "Bearer  anna"}),
    ("/partners/LOC-1/customer-groups", {"Authorization": "Basic YW5uYTp4"}),
    ("/partners/LOC-1/customer-groups", {"Partnerfleet-Wait-For": "nope"}),
    ("/partners/LOC-1/customer-groups", {"Partnerfleet-Wait-For": "1"}),
]


@pytest.mark.parametrize(("path", "headers"), HOSTILE)
def test_hostile_forms_get_the_stacks_answer(
    w: World, monkeypatch: pytest.MonkeyPatch, path: str, headers: dict[str, str]
) -> None:
    """Each path and header trick, after the page's path is learnt, against the stack
    alone: status, headers and body alike (but a request id made for the request)."""
    assert raw(w, GROUPS, "Bearer anna")[0] == 200
    token = None if "Authorization" in headers else "Bearer anna"
    front_answer = raw(w, path, token, **headers)
    with monkeypatch.context() as patched:
        without_front(patched)
        stack = raw(w, path, token, **headers)

    assert same(front_answer) == same(stack)
    if front_answer[0] >= 400 and front_answer[0] != 405:
        assert dict(front_answer[1])["content-type"] == "application/problem+json"


def same(answer: tuple[int, list[tuple[str, str]], bytes]) -> tuple[Any, ...]:
    """The answer without a request id the service made (header and problem instance)."""
    status, headers, body = answer
    kept = [(k, v) for k, v in headers if k != "x-request-id"]
    if dict(headers).get("content-type") == "application/problem+json":
        problem = json.loads(body)
        problem.pop("instance")
        return status, kept, problem
    return status, kept, body
