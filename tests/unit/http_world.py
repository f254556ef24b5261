"""The HTTP API over the access matrix's world (tests/unit/access_world.py), for the tests of
the API as a whole: the HTTP access matrix, the no-leak property and schemathesis.

- `PRINCIPALS`: one bearer token per principal, named by who it is (`anna` is LOC-1's
  admin, `otto` LOC-2's, `c1` customer C1's admin ...). The verifier is the edge of the
  world here (signatures are infra/http/auth.py's, tested on their own): a token is the
  name of its claims; any other token is refused.
- `Api`: a test client that reads its own writes: every request names in
  `Partnerfleet-Wait-For` the last `Partnerfleet-Position` a command answered it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from handlers import PartnerFleet
from handlers.access import AuthenticationError, Claims
from infra.follow.view_runner import ViewRunner
from infra.http.app import create_api
from infra.http.deps import WAIT_HEADER
from infra.http.routing import POSITION
from infra.settings import Settings
from tests.unit.access_world import OTHER, OWN
from tests.views import memory_runner

PRINCIPALS: dict[str, Claims] = {
    "ops": Claims("ops@hp.example", "operator"),
    "auditor": Claims("dpo@hp.example", "auditor"),
    "feed": Claims("feed:e2open", "feed"),
    "anna": Claims(OWN.admin, "partner_user", OWN.loc),  # LOC-1's admin
    "ben": Claims(OWN.user, "partner_user", OWN.loc),  # LOC-1's plain user
    "otto": Claims(OTHER.admin, "partner_user", OTHER.loc),  # LOC-2's admin
    "c1": Claims("it@C1", "customer_admin", OWN.customer),
    "c2": Claims("it@C2", "customer_admin", OTHER.customer),
    "eu1": Claims("user@C1", "end_user", OWN.customer, (OWN.s("PCC"),)),
    "eu2": Claims("user@C2", "end_user", OTHER.customer, (OTHER.s("PCC"),)),
}


class Verifier:
    """Accepts exactly the tokens of `tokens` (the name of the claims); says why it refuses,
    never the token."""

    def __init__(self, tokens: Mapping[str, Claims]) -> None:
        self.tokens = dict(tokens)

    def claims(self, token: str) -> Claims:
        """The claims a known token names."""
        found = self.tokens.get(token)
        if found is None:
            raise AuthenticationError("The token's signature does not verify.")
        return found


def app_over(
    fleet: PartnerFleet,
    views: ViewRunner,
    tokens: Mapping[str, Claims] = PRINCIPALS,
) -> FastAPI:
    """The API over `fleet` and its `views`, accepting `tokens`."""
    return create_api(fleet, Settings(), views, verifier=Verifier(tokens))


class Api(TestClient):
    """A client that sends, with every request, the last position a command answered it
    (read-your-writes, infra/http/deps.py); server errors are answered, not raised."""

    def __init__(self, app: FastAPI) -> None:
        super().__init__(app, raise_server_exceptions=False)
        self.position = 0
        self.event_hooks = {"request": [self._wait], "response": [self._seen]}

    def _wait(self, request: httpx.Request) -> None:
        if self.position and WAIT_HEADER not in request.headers:
            request.headers[WAIT_HEADER] = str(self.position)

    def _seen(self, response: httpx.Response) -> None:
        position = response.headers.get(POSITION)
        if position and position.isdigit():
            self.position = max(self.position, int(position))

    def as_(self, who: str | None, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """`method path` by the principal `who` (None: without a token)."""
        headers = {"Authorization": f"Bearer {who}"} if who else {}
        answer: httpx.Response = self.request(method, path, headers=headers, **kwargs)
        return answer


@dataclass
class Served:
    """A fleet, its read models and a client of the API over them."""

    fleet: PartnerFleet
    views: ViewRunner
    api: Api

    def close(self) -> None:
        """Close the client (and its event loop) and the views' database."""
        self.api.__exit__(None, None, None)
        self.views.db.close()


def serve(fleet: PartnerFleet, tokens: Mapping[str, Claims] = PRINCIPALS) -> Served:
    """The API over `fleet`, its views caught up with what is stored."""
    views = memory_runner(fleet)
    views.catch_up()
    api = Api(app_over(fleet, views, tokens))
    api.__enter__()  # one event loop for all its requests, not one per request
    return Served(fleet, views, api)


def rebind(served: Served, fleet: PartnerFleet) -> Served:
    """The same app and client over another `fleet` (its views caught up): a property test
    builds a world per example, and a new app per example would pay FastAPI's first-request
    set-up each time."""
    served.views.db.close()
    views = memory_runner(fleet)
    views.catch_up()
    app = served.api.app
    assert isinstance(app, FastAPI)
    app.state.fleet, app.state.views = fleet, views
    served.api.position = 0
    return Served(fleet, views, served.api)


def operations(app: FastAPI) -> dict[str, dict[str, Any]]:
    """Every operation of the app's OpenAPI document, by "METHOD /path"."""
    paths: dict[str, dict[str, Any]] = app.openapi()["paths"]
    return {
        f"{method.upper()} {path}": operation
        for path, methods in paths.items()
        for method, operation in methods.items()
        if method in {"get", "post", "put", "patch", "delete"}
    }
