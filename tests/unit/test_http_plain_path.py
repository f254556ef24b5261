"""The All Customers page's plain path (infra/http/routes/customers.py, `plain_groups_page`;
infra/http/routing.py, `plain_path`): a GET with only a bearer token, `limit` and `cursor`
is answered without FastAPI's dependencies, by the same checks in the same order. Every
answer, refusals included, must be the one the route's dependencies give; the store is
asked who the caller is on every request, and other forms are left to the dependencies."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import pytest
from fastapi.testclient import TestClient

from handlers import access
from handlers.access import Claims
from infra.http import deps
from infra.http.deps import PlainList, in_plain_thread
from infra.http.paging import MAX_CURSOR_LENGTH
from infra.http.routes import customers
from tests.scenarios import OPS
from tests.unit.test_http_customers import GROUPS, TOKENS, World, world

Answer = tuple[int, dict[str, str], Any]


@pytest.fixture
def w() -> World:
    """The customers' world, its views caught up (the plain form does not wait for them)."""
    made = world()
    made.api.app.state.views.catch_up()  # type: ignore[attr-defined]
    return made


def get(w: World, path: str, token: str | None, **headers: str) -> Answer:
    """The answer to GET `path`, without what differs per request (the request id)."""
    if token is not None:
        headers["Authorization"] = token
    answer = w.api.get(path, headers=headers)
    kept = {k: v for k, v in answer.headers.items() if k != "x-request-id"}
    body: Any = answer.content
    if answer.headers.get("content-type", "").startswith("application/problem+json"):
        body = {k: v for k, v in answer.json().items() if k != "instance"}
    return answer.status_code, kept, body


def both(w: World, monkeypatch: pytest.MonkeyPatch, path: str, token: str | None) -> Answer:
    """The answer with the plain path, asserted equal to the answer without it."""
    plain = get(w, path, token)
    with monkeypatch.context() as patched:
        patched.setattr(customers, "plain_list", declined)
        full = get(w, path, token)
    assert plain == full, path
    return plain


async def declined(request: Any) -> None:
    """A plain_list that takes no request: every one goes to the route's dependencies."""
    return


def first_cursor(w: World) -> str:
    """Anna's cursor after the first tile."""
    cursor = w.api.get(GROUPS + "?limit=1", headers={"Authorization": "Bearer anna"})
    return str(cursor.json()["next_cursor"])


FORMS = [
    (GROUPS, "Bearer anna", 200),
    (GROUPS + "?limit=1", "Bearer anna", 200),
    (GROUPS + "?limit=200", "Bearer ben", 200),
    (GROUPS, "bearer   anna  ", 200),  # the scheme in any case, the token stripped
    ("/partners/LOC-2/customer-groups", "Bearer anna", 404),  # another partner's
    (GROUPS, "Bearer otto", 404),  # LOC-2's admin asking for LOC-1's page
    (GROUPS, "Bearer c1", 403),
    (GROUPS, "Bearer ops", 403),
    (GROUPS, "Bearer nobody", 401),
    (GROUPS, None, 401),
    (GROUPS, "Basic YW5uYTp4", 401),
    (GROUPS, "Bearer", 401),
    (GROUPS + "?limit=0", "Bearer anna", 422),
    (GROUPS + "?limit=201", "Bearer anna", 422),
    (GROUPS + "?limit=ten", "Bearer anna", 422),
    (GROUPS + "?limit=01", "Bearer anna", 200),
    (GROUPS + "?limit=%2B5", "Bearer anna", 200),
    (GROUPS + "?limit=1&limit=2", "Bearer anna", 200),
    (GROUPS + "?cursor=", "Bearer anna", 400),
    (GROUPS + "?cursor=junk", "Bearer anna", 400),
    (GROUPS + "?cursor=junk", "Bearer nobody", 401),  # the token before the cursor
    (GROUPS + "?cursor=" + "x" * (MAX_CURSOR_LENGTH + 1), "Bearer anna", 422),
    (GROUPS + "?view=favorites_only", "Bearer anna", 409),  # no favourites yet
    (GROUPS + "?search=Glob&limit=5", "Bearer anna", 200),
    (GROUPS + "?unknown=1", "Bearer anna", 200),
]


@pytest.mark.parametrize(("path", "token", "status"), FORMS)
def test_every_form_is_answered_as_the_route_answers_it(
    w: World, monkeypatch: pytest.MonkeyPatch, path: str, token: str | None, status: int
) -> None:
    """Twice each (the second from the page cache when the first was a page)."""
    for _ in range(2):
        assert both(w, monkeypatch, path, token)[0] == status


def test_a_cursor_is_followed_and_refused_to_another_principal(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    cursor = first_cursor(w)

    status, _, body = both(w, monkeypatch, f"{GROUPS}?limit=1&cursor={cursor}", "Bearer anna")
    stolen = both(w, monkeypatch, f"{GROUPS}?limit=1&cursor={cursor}", "Bearer ben")
    other_list = both(w, monkeypatch, f"{GROUPS}?limit=1&cursor={cursor}&search=A", "Bearer anna")

    assert status == 200
    assert b"Globex" in body
    assert b"Acme" not in body
    assert stolen[0] == 400
    assert "another principal" in stolen[2]["detail"]
    assert other_list[0] == 400


def taken(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether the plain path took each request since (a spy on plain_list)."""
    seen: list[bool] = []
    real = deps.plain_list

    async def spy(request: Any) -> PlainList | None:
        plain = await real(request)
        seen.append(plain is not None)
        return plain

    monkeypatch.setattr(customers, "plain_list", spy)
    return seen


def test_the_plain_form_takes_the_plain_path_and_every_other_the_dependencies(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = taken(monkeypatch)
    wait = {"Partnerfleet-Wait-For": str(w.fleet.recorder.max_notification_id())}

    get(w, GROUPS + "?limit=5", "Bearer anna")
    get(w, GROUPS + f"?cursor={first_cursor(w)}", "Bearer anna")
    get(w, GROUPS, "Bearer anna", **wait)
    get(w, GROUPS + "?view=all_customers", "Bearer anna")
    get(w, GROUPS + "?limit=5&limit=5", "Bearer anna")
    get(w, GROUPS, None)
    with_body = w.api.request("GET", GROUPS, headers={"Authorization": "Bearer anna"}, json={})

    assert with_body.status_code == 200
    # The first GET to the path is routed by FastAPI (which shows the path to PlainFront);
    # later ones are offered to the plain path by PlainFront (infra/http/front.py) and, when
    # it declines, again by the route: every other form is declined twice. first_cursor's
    # own request (limit=1) came second, before the cursor's. The GET with a body is never
    # offered (PlainFront leaves it to the stack, the route sees the body).
    assert seen == [True, True, True, *[False] * 8]


def test_the_store_is_asked_who_the_caller_is_on_every_request(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page cached for the partner is not given to a principal the store does not know;
    once registered, the same token reads it (nothing about the caller is remembered)."""
    monkeypatch.setitem(TOKENS, "zed", Claims("zed@LOC-1", "partner_user", "LOC-1"))
    calls: list[str] = []
    real = access.authenticate

    def counted(fleet: Any, claims: Claims, stored_versions: Any = None) -> Any:
        calls.append(claims.subject)
        return real(fleet, claims, stored_versions)

    monkeypatch.setattr(deps, "authenticate", counted)  # get_actor's
    monkeypatch.setattr(customers, "authenticate", counted)  # the plain path's
    seen = taken(monkeypatch)

    assert get(w, GROUPS, "Bearer anna")[0] == 200
    assert get(w, GROUPS, "Bearer anna")[0] == 200  # from the page cache
    refused = get(w, GROUPS, "Bearer zed")
    w.fleet.register_partner_user(OPS, "LOC-1", "zed@LOC-1")
    w.api.app.state.views.catch_up()  # type: ignore[attr-defined]
    admitted = get(w, GROUPS, "Bearer zed")

    assert refused[0] == 401
    assert "zed@LOC-1" in refused[2]["detail"]
    assert admitted[0] == 200
    assert b"Acme" in admitted[2]
    # zed's refusal is met once, by PlainFront: the route raises it again, unchecked
    assert calls == ["anna@LOC-1", "anna@LOC-1", "zed@LOC-1", "zed@LOC-1"]
    assert seen == [True, True, True, True]


def test_without_a_verifier_or_read_models_the_route_answers() -> None:
    """No verifier: 503 from the dependencies, as before (the plain path declines)."""
    w = world()
    w.api.app.state.verifier = None  # type: ignore[attr-defined]

    answer = w.api.get(GROUPS, headers={"Authorization": "Bearer anna"})

    assert answer.status_code == 503


def test_in_plain_thread_runs_in_the_callers_context_and_raises_its_errors() -> None:
    bound: contextvars.ContextVar[str] = contextvars.ContextVar("bound", default="")

    async def main() -> tuple[str, str]:
        bound.set("request-1")
        seen = await in_plain_thread(bound.get)
        try:
            await in_plain_thread(lambda: 1 // 0)
        except ZeroDivisionError as error:
            return seen, type(error).__name__
        return seen, "nothing raised"

    assert asyncio.run(main()) == ("request-1", "ZeroDivisionError")


def test_the_openapi_document_still_gives_the_routes_parameters_and_schema(w: World) -> None:
    """The route's documented parameters are unchanged (view, search, connection, ...)."""
    spec = TestClient(w.api.app).get("/openapi.json").json()
    route = spec["paths"]["/partners/{location_id}/customer-groups"]["get"]
    params = [p["name"] for p in route["parameters"]]

    assert params == [
        *("location_id", "view", "search", "connection", "has_critical", "limit", "cursor"),
        "Partnerfleet-Wait-For",
    ]
    assert route["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CustomerList"
    }
