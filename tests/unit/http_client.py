"""The HTTP API in memory for tests: a fake token verifier, clients, and a small world.

The verifier is the edge of the world here (signatures are infra/http/auth.py's, tested on
their own): a token is the name of its claims in `TOKENS`; any other is refused.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.testclient import TestClient

from handlers import PartnerFleet
from handlers.access import AuthenticationError, Claims
from infra.follow.view_runner import ViewRunner
from infra.http.app import create_api
from infra.settings import Settings
from tests.actors import operator

OPS = operator("ops")
TOKENS: dict[str, Claims] = {
    "ops": Claims("ops", "operator"),
    "auditor": Claims("audit@example", "auditor"),
    "anna": Claims("anna@LOC-1", "partner_user", "LOC-1"),  # LOC-1's admin (first user)
    "ben": Claims("ben@LOC-1", "partner_user", "LOC-1"),
    "otto": Claims("otto@LOC-2", "partner_user", "LOC-2"),  # LOC-2's admin
}


class FakeVerifier:
    """Accepts exactly the tokens of `TOKENS`; says why it refuses, never the token."""

    def claims(self, token: str) -> Claims:
        """The claims a known token names."""
        found = TOKENS.get(token)
        if found is None:
            raise AuthenticationError("The token's signature does not verify.")
        return found


def bearer(name: str, **headers: str) -> dict[str, str]:
    """Headers of a request by the principal `name` (of TOKENS), with `headers` besides."""
    return {
        "Authorization": f"Bearer {name}",
        **{k.replace("_", "-"): v for k, v in headers.items()},
    }


def client(
    fleet: PartnerFleet,
    views: ViewRunner | None = None,
    *extra: APIRouter,
    settings: Settings | None = None,
) -> TestClient:
    """A client of the API over `fleet` (server errors answered, not raised)."""
    api = create_api(fleet, settings or Settings(), views, verifier=FakeVerifier())
    for router in extra:
        api.include_router(router)
    return TestClient(api, raise_server_exceptions=False)


def two_partners(fleet: PartnerFleet) -> None:
    """LOC-1 with admin Anna and user Ben; LOC-2 with admin Otto."""
    for location, users in (("LOC-1", ("anna@LOC-1", "ben@LOC-1")), ("LOC-2", ("otto@LOC-2",))):
        fleet.register_partner(OPS, location, f"Partner {location}")
        for user in users:
            fleet.register_partner_user(OPS, location, user)


def problem_of(answer: Any) -> dict[str, Any]:
    """The problem document of an error answer, after checking its media type and shape."""
    assert answer.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = answer.json()
    assert body["status"] == answer.status_code
    assert body["type"].startswith("/problems/")
    assert body["title"]
    assert body["detail"]
    assert body["instance"] == f"urn:uuid:{answer.headers['x-request-id']}"
    return body
