"""GET /.well-known/jwks.json: the local signing key's public JWK Set, in demo mode only.

`serve --demo` without JWKS_URL or JWKS_PATH trusts the local key that `token issue`
signs with (infra/bootstrap.local_jwks); publishing its public half lets a client check
the demo tokens as the service does. Otherwise the trusted keys are the identity
provider's, published by it, and this route answers 404.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from infra.http.errors import ProblemError
from infra.http.routing import FleetRoute
from infra.http.schemas.audit import JWKS
from infra.http.schemas.common import problem_responses

router = APIRouter(route_class=FleetRoute, tags=["authentication"])
CACHE_SECONDS = 300  # as long as the verifiers of other services cache a JWK Set


@router.get("/.well-known/jwks.json", responses=problem_responses(404))
def read_jwks(request: Request, response: Response) -> JWKS:
    """Issue 9: the public keys demo tokens are signed with (demo mode only; else 404)."""
    jwks: dict[str, Any] | None = request.app.state.jwks
    if jwks is None:
        raise ProblemError(
            "not-found",
            "This service publishes no keys: the tokens it trusts are signed by the identity "
            "provider (JWKS_URL or JWKS_PATH), which publishes its own.",
        )
    response.headers["Cache-Control"] = f"public, max-age={CACHE_SECONDS}"
    return JWKS.model_validate(jwks)
