"""`PlainFront`: a route's plain path (infra/http/routing.py, `plain_path`) answered before
the middleware stack, FastAPI's routing and the route's handler (issue 11, session 18).

A GET to a path that FastAPI's router already sent to a route with a plain path is given to
that plain path directly, with the scope the router gave it (the route, its path
parameters, the endpoint): `PlainRoutes` remembers, per exact (root_path, path), what the
router chose the last time a GET there reached the route (`FleetRoute` tells it, after
routing), so the choice is the router's own, never guessed from a pattern. The router's
choice depends only on the request's type, method and path (no route here looks at the
Host), and the routes do not change after the app is built.

What the front answers, and what it leaves to the stack:
- it takes only an HTTP GET without `Content-Length` and `Transfer-Encoding` (no body: the
  stack's BodyLimit and the route's JSON parsing have nothing to do) to a remembered path;
- it answers only when the plain path gives a response; when the plain path declines (None:
  another form, nothing checked) the request goes down the whole stack unchanged, which
  answers it as before; when it raises (a refusal, a storage failure) the request goes down
  the stack with that exception (`FRONT_ERROR` in its scope), which the route raises again
  in place of running its plain path a second time, so the exception handlers answer it as
  before and the checks run once (a refused token verified and logged once, a store that
  is down waited for once: session 18's attack);
- only a path whose plain path gave an answer is remembered (a refused, declined or
  unauthenticated request teaches it nothing, so no client fills the memory with paths of
  its choosing or pushes the partners' pages out), and none longer than MAX_PATH_CHARS;
- it sits inside `RequestIds` (infra/http/requests.py): the request id, its log binding and
  the `X-Request-Id` header are the same as for every other request.

What it spares a page: BodyLimit's and the exception middleware's layers, FastAPI's
routing (every included router's routes matched, twice), the route's wrappers and the
body read (docs/decisions.md, "Issue 11, the HTTP front and the membership read beside
the positions (session 18)").
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

PlainAnswer = Callable[[Request], Coroutine[Any, Any, Any]]
MAX_PATHS = 4_096  # remembered paths (one per partner's page); the oldest is forgotten first
MAX_PATH_CHARS = 1_024  # a longer (root_path + path) is routed every time, never remembered
# The scope key under which the front hands the plain path's exception to the stack: the
# route that raised it (the router's choice) and the exception, for `FleetRoute` to raise.
FRONT_ERROR = "partnerfleet.front_error"
_BODY_HEADERS = (b"content-length", b"transfer-encoding")


class PlainRoutes:
    """Per exact (root_path, path): the route FastAPI's router chose for a GET there, its
    path parameters and the route's plain path. At most `max_paths` entries, oldest out."""

    def __init__(self, max_paths: int = MAX_PATHS) -> None:
        self.max_paths = max_paths
        self._chosen: dict[tuple[str, str], tuple[Any, dict[str, Any], PlainAnswer]] = {}

    def __len__(self) -> int:
        return len(self._chosen)

    def learn(self, scope: Scope, plain: PlainAnswer) -> None:
        """Remember the routed `scope` of a GET (its route, endpoint and path parameters),
        whose route's plain path is `plain`. Called by the route, after the router, once
        the plain path answered. A path longer than MAX_PATH_CHARS is not remembered."""
        if scope.get("type") != "http" or scope.get("method") != "GET" or self.max_paths < 1:
            return
        key = (scope.get("root_path", ""), scope["path"])
        if len(key[0]) + len(key[1]) > MAX_PATH_CHARS:
            return
        if key not in self._chosen and len(self._chosen) >= self.max_paths:
            self._chosen.pop(next(iter(self._chosen)), None)
        self._chosen[key] = (scope["route"], dict(scope.get("path_params", {})), plain)

    def chosen(self, scope: Scope) -> tuple[Any, dict[str, Any], PlainAnswer] | None:
        """What the router chose for this GET's path, or None when it is not remembered."""
        return self._chosen.get((scope.get("root_path", ""), scope["path"]))


class PlainFront:
    """ASGI middleware: a GET without a body to a path `routes` remembers is offered to its
    route's plain path first (see the module's docstring); everything else, and whatever
    the plain path declines or refuses, goes to `app` as before."""

    def __init__(self, app: ASGIApp, routes: PlainRoutes) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        chosen = self._plain(scope)
        if chosen is not None:
            route, path_params, plain = chosen
            routed = dict(scope)
            routed.update(
                route=route,
                endpoint=route.endpoint,
                path_params=dict(path_params),
                router=scope["app"].router,
            )
            try:
                answer = await plain(Request(routed, receive, send))
            except Exception as error:  # a refusal or a failure: the stack answers it
                scope[FRONT_ERROR] = (route, error)  # the route raises it, not checks again
                answer = None
            if answer is not None:
                await answer(routed, receive, send)
                return
        await self.app(scope, receive, send)

    def _plain(self, scope: Scope) -> tuple[Any, dict[str, Any], PlainAnswer] | None:
        if scope["type"] != "http" or scope["method"] != "GET" or "app" not in scope:
            return None
        chosen = self.routes.chosen(scope)
        if chosen is None:
            return None
        for name, _ in scope["headers"]:
            if name.lower() in _BODY_HEADERS:
                return None
        return chosen
