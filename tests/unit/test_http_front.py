"""PlainFront (infra/http/front.py): a GET to a path FastAPI's router already sent to a
route with a plain path is offered to that plain path before the middleware stack. Its
answers (refusals included) must be the stack's, header for header; it takes nothing it has
not seen routed, nothing with a body and no other method."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.types import Scope

from infra.http.front import PlainFront, PlainRoutes
from infra.http.paging import MAX_CURSOR_LENGTH
from tests.unit.test_http_customers import GROUPS, World, world
from tests.unit.test_http_plain_path import FORMS

Raw = tuple[int, list[tuple[str, str]], bytes]


@pytest.fixture
def w() -> World:
    made = world()
    made.api.app.state.views.catch_up()  # type: ignore[attr-defined]
    return made


def raw(w: World, path: str, token: str | None, **headers: str) -> Raw:
    """Status, every header in order but the request id (and the problem's `instance`,
    which names it), and the body."""
    if token is not None:
        headers["Authorization"] = token
    headers.setdefault("X-Request-Id", "0b7e6c1e-7e0b-4c1e-9b7e-000000000001")
    answer = w.api.get(path, headers=headers, follow_redirects=False)
    return answer.status_code, list(answer.headers.multi_items()), answer.content


def answered_by_front(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Per request PlainFront saw since: whether it answered it (else the stack did)."""
    seen: list[bool] = []
    real = PlainFront.__call__

    async def spy(self: PlainFront, scope: Scope, receive: Any, send: Any) -> None:
        inner, called = self.app, []

        async def stack(*args: Any) -> None:
            called.append(True)
            await inner(*args)

        self.app = stack
        try:
            await real(self, scope, receive, send)
        finally:
            self.app = inner
        seen.append(not called)

    monkeypatch.setattr(PlainFront, "__call__", spy)
    return seen


def without_front(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(PlainRoutes, "chosen", lambda self, scope: None)


@pytest.mark.parametrize(("path", "token", "status"), FORMS)
def test_every_form_gets_the_stacks_answer_header_for_header(
    w: World, monkeypatch: pytest.MonkeyPatch, path: str, token: str | None, status: int
) -> None:
    """The route's path is routed once first, so that PlainFront knows it."""
    assert raw(w, GROUPS + "?limit=1", "Bearer anna")[0] == 200
    front = raw(w, path, token)
    with monkeypatch.context() as patched:
        without_front(patched)
        stack = raw(w, path, token)

    assert front[0] == status
    assert front == stack  # the problem's instance names the request id, the same here


def test_the_front_answers_only_what_the_router_sent_to_the_route_before(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = answered_by_front(monkeypatch)
    other = "/partners/LOC-2/customer-groups"

    raw(w, GROUPS, "Bearer anna")  # routed: the path is learnt
    raw(w, GROUPS, "Bearer anna")  # the front
    raw(w, GROUPS + "?limit=3", "Bearer anna")  # the same path: the front
    raw(w, other, "Bearer otto")  # another path: routed first
    raw(w, other, "Bearer otto")
    slash = raw(w, GROUPS + "/", "Bearer anna")  # not the path learnt: the router redirects
    raw(w, GROUPS + "?search=G", "Bearer anna")  # declined by the plain path: the stack
    raw(w, GROUPS, "Bearer nobody")  # refused: the stack answers the refusal
    raw(w, "/partners/LOC-1/me", "Bearer anna")  # no plain path

    assert slash[0] == 307
    assert seen == [False, True, True, False, True, False, False, False, False]
    assert len(w.api.app.state.plain_routes) == 2  # type: ignore[attr-defined]


def test_a_body_or_another_method_goes_to_the_stack(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    bearer = {"Authorization": "Bearer anna"}
    raw(w, GROUPS, "Bearer anna")
    seen = answered_by_front(monkeypatch)

    too_large = w.api.request("GET", GROUPS, headers=bearer, content=b"x" * (1024 * 1024 + 1))
    with_body = w.api.request("GET", GROUPS, headers=bearer, content=b"{}")
    head = w.api.head(GROUPS, headers=bearer)
    post = w.api.post(GROUPS, headers=bearer, json={})

    assert too_large.status_code == 413  # BodyLimit still sees it
    assert with_body.status_code == 200
    assert head.status_code == 405  # as before: the route takes GET only
    assert post.status_code == 405
    assert seen == [False, False, False, False]


def test_the_request_id_a_client_sends_is_the_answers_and_the_problems_instance(
    w: World,
) -> None:
    given = "5f0c1e9a-3b7d-4e2a-9c1f-0123456789ab"
    raw(w, GROUPS, "Bearer anna")

    page = w.api.get(GROUPS, headers={"Authorization": "Bearer anna", "X-Request-Id": given})
    bad = w.api.get(
        GROUPS + "?cursor=" + "y" * MAX_CURSOR_LENGTH,
        headers={"Authorization": "Bearer anna", "X-Request-Id": given},
    )

    assert page.status_code == 200
    assert page.headers["x-request-id"] == given
    assert bad.status_code == 400
    assert bad.headers["x-request-id"] == given
    assert given in bad.json()["instance"]


def test_plain_routes_forget_the_oldest_path_beyond_their_bound() -> None:
    routes = PlainRoutes(max_paths=2)
    route = object()

    async def plain(request: Any) -> None:
        return None

    def scope(path: str, method: str = "GET") -> Scope:
        return {"type": "http", "method": method, "path": path, "route": route}

    for path in ("/a", "/b", "/a", "/c"):
        routes.learn(scope(path), plain)
    routes.learn(scope("/d", "POST"), plain)

    assert routes.chosen(scope("/a")) is None  # learnt first: out when /c came
    assert routes.chosen(scope("/b")) == (route, {}, plain)
    assert routes.chosen(scope("/c")) == (route, {}, plain)
    assert routes.chosen(scope("/d")) is None
    assert routes.chosen({**scope("/b"), "root_path": "/api"}) is None
    assert len(routes) == 2
    off = PlainRoutes(max_paths=0)
    off.learn(scope("/a"), plain)
    assert len(off) == 0
