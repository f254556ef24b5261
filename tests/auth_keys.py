"""Keys and tokens for authentication tests: one signing key per algorithm (made once per
run), verifiers over them, and raw tokens that no honest issuer would sign."""

from __future__ import annotations

import base64
import functools
import hmac
import json
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from infra.http.auth import FileKeys, TokenVerifier
from infra.tokens import PrivateKey, SigningKey, signing_key_of

AUDIENCE = "partnerfleet"
ISSUER = "https://idp.example/realms/partnerfleet"
LEEWAY = 30


@functools.cache
def signing_key(alg: str = "ES256", name: str = "") -> SigningKey:
    """A fresh private key of `alg` (ES256, RS256, EdDSA); another `name`, another key."""
    makers: dict[str, Any] = {
        "ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
        "RS256": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "EdDSA": ed25519.Ed25519PrivateKey.generate,
    }
    private: PrivateKey = makers[alg]()
    return signing_key_of(private)


def jwks(*keys: SigningKey) -> dict[str, list[dict[str, Any]]]:
    """The public JWK Set of `keys`."""
    return {"keys": [key.public_jwk() for key in keys]}


def jwks_file(folder: Path, *keys: SigningKey) -> Path:
    """A JWKS file of `keys` in `folder`."""
    path = folder / "jwks.json"
    path.write_text(json.dumps(jwks(*keys)), encoding="utf-8")
    return path


def verifier(*keys: SigningKey, leeway: int = LEEWAY) -> TokenVerifier:
    """A verifier trusting `keys` (default: the ES256 test key) for AUDIENCE and ISSUER."""
    trusted = FileKeys(jwks(*(keys or (signing_key(),))), "test keys")
    return TokenVerifier(trusted, audience=AUDIENCE, issuer=ISSUER, leeway=leeway)


def claims_body(**changes: Any) -> dict[str, Any]:
    """A valid payload for partner user anna@LOC-1, issued now for an hour; a change to
    None removes that claim."""
    now = int(time.time())
    body: dict[str, Any] = {
        "sub": "anna@LOC-1",
        "role": "partner_user",
        "tenant": "LOC-1",
        "aud": AUDIENCE,
        "iss": ISSUER,
        "iat": now,
        "exp": now + 3600,
    }
    body.update(changes)
    return {name: value for name, value in body.items() if value is not None}


def signed(body: dict[str, Any], key: SigningKey | None = None, **header: Any) -> str:
    """`body` signed by `key` (default: the ES256 test key) with its kid, or `header`'s
    (a header entry of None is left out)."""
    key = key or signing_key()
    headers = {name: value for name, value in {"kid": key.kid, **header}.items() if value}
    return jwt.encode(body, key.private_key, algorithm=key.algorithm, headers=headers)


def b64(data: bytes) -> str:
    """base64url without padding, as in a compact JWS."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(value: dict[str, Any]) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


def unsigned(body: dict[str, Any], kid: str) -> str:
    """An `alg: none` token naming `kid`, with an empty signature."""
    return f"{_segment({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{_segment(body)}."


def hmac_with_public_key(body: dict[str, Any], key: SigningKey) -> str:
    """An HS256 token whose secret is `key`'s public PEM: the key-confusion attack."""
    public_pem = key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = f"{_segment({'alg': 'HS256', 'typ': 'JWT', 'kid': key.kid})}.{_segment(body)}"
    mac = hmac.new(public_pem, signing_input.encode(), "sha256").digest()
    return f"{signing_input}.{b64(mac)}"


def private_pem(key: SigningKey) -> str:
    """The PEM text of `key`'s private half (to assert it never shows)."""
    return key.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
