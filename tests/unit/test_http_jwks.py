"""Issue 9: `serve --demo` publishes the local signing key's public JWK Set at
/.well-known/jwks.json when its verifier trusts that key, and nothing otherwise."""

from __future__ import annotations

from pathlib import Path

from infra.bootstrap import local_jwks
from infra.http.auth import FileKeys, TokenVerifier
from infra.settings import Settings
from tests.auth_keys import (
    AUDIENCE,
    ISSUER,
    claims_body,
    jwks_file,
    private_pem,
    signed,
    signing_key,
)
from tests.scenarios import in_memory_fleet
from tests.unit.audit_http import api_of
from tests.unit.http_client import problem_of


def test_the_api_serves_the_jwk_set_it_was_given_and_404_without_one() -> None:
    """Issue 9: /.well-known/jwks.json serves the JWK Set it was given; without one, 404."""
    fleet = in_memory_fleet()
    keys = {"keys": [{"kty": "EC", "crv": "P-256", "x": "x", "y": "y", "kid": "k1"}]}

    served = api_of(fleet, jwks=keys).get("/.well-known/jwks.json")
    none = api_of(fleet).get("/.well-known/jwks.json")

    assert (served.status_code, served.json()) == (200, keys)
    assert served.headers["cache-control"] == "public, max-age=300"
    assert (none.status_code, problem_of(none)["type"]) == (404, "/problems/not-found")


def test_the_demo_serves_the_public_half_of_the_key_its_verifier_trusts(tmp_path: Path) -> None:
    """Issue 9: `serve --demo` without a JWKS publishes the local key's public half (a demo
    token verifies with it, no private member shows); with JWKS_PATH, or outside demo
    mode, nothing is published."""
    key = signing_key()
    pem = tmp_path / "signing-key.pem"
    pem.write_text(private_pem(key), encoding="utf-8")
    settings = Settings(jwt_signing_key_path=pem)

    published = local_jwks(settings, demo=True)
    served = api_of(in_memory_fleet(), jwks=published).get("/.well-known/jwks.json").json()
    trusting = TokenVerifier(FileKeys(served, "served"), audience=AUDIENCE, issuer=ISSUER, leeway=0)

    assert trusting.claims(signed(claims_body())).subject == "anna@LOC-1"
    assert not any("d" in jwk for jwk in served["keys"])
    with_file = settings.model_copy(update={"jwks_path": jwks_file(tmp_path, key)})
    assert local_jwks(with_file, demo=True) is None
    assert local_jwks(settings, demo=False) is None
