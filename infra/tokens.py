"""Bearer-token keys and minting (issue 9): which keys are trusted, the local signing key.

Trust policy, shared by the verifier (infra/http/auth.py) and minting:

- One asymmetric algorithm per key, named by the key itself (the JWK's `alg`, required):
  ES256 (P-256, the default for minting), RS256 (RSA of at least 2048 bits) or EdDSA
  (Ed25519). HMAC (`kty` "oct") and `none` are refused when a key set is loaded, so a
  token can never choose its own algorithm or turn a public key into a shared secret.
- A key set holds public keys only, each with a `kid`; keys for encryption (`use` "enc")
  are left out.

Minting (`mint`) signs with a *local* key: a private JWK or PEM file named by
JWT_SIGNING_KEY_PATH, or the demo key generated once under var/. It is for the demo and
tests; in production the operator's identity provider issues the tokens.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import get_default_algorithms

from handlers.access import Claims

# The algorithms a key may name, with the key type (and curve) each needs.
KEY_TYPES: dict[str, tuple[str, str | None]] = {
    "ES256": ("EC", "P-256"),
    "RS256": ("RSA", None),
    "EdDSA": ("OKP", "Ed25519"),
}
ALGORITHMS = tuple(KEY_TYPES)
MIN_RSA_BITS = 2048
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
LOCAL_ISSUER = "partnerfleet-local"  # `iss` of locally minted tokens when JWT_ISSUER is unset
MAX_TTL_SECONDS = 7 * 24 * 3600

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


class AuthConfigurationError(ValueError):
    """Keys or settings the service cannot authenticate with; says which and why (exit 2)."""


class KeySetError(AuthConfigurationError):
    """A JWK Set that is not trusted: names the key and the rule it breaks."""


# --- key sets (public keys, for verifying) ------------------------------------------------


def checked_jwks(data: object, source: str) -> dict[str, list[dict[str, Any]]]:
    """The signing keys of a JWK Set (`{"keys": [...]}`), each checked; keys whose `use` is
    not "sig" (encryption keys) are left out.

    Raises `KeySetError` naming `source` (JWKS_PATH, JWKS_URL), the key and the reason, for
    the whole set: a key without `kid` or `alg`, an HMAC or `none` key, an `alg` that does
    not fit the key type, private key material, a duplicate `kid`, or no signing key at all.
    """
    keys = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(keys, list):
        raise KeySetError(f"{source}: not a JWK Set (a JSON object with a 'keys' list).")
    signing = [k for k in keys if not (isinstance(k, dict) and k.get("use", "sig") != "sig")]
    for number, jwk in enumerate(signing, 1):
        _check_jwk(jwk, f"{source}: key {number}")
    kids = [jwk["kid"] for jwk in signing]
    if len(set(kids)) != len(kids):
        raise KeySetError(f"{source}: two keys share a 'kid'; each kid must name one key.")
    if not signing:
        raise KeySetError(f"{source}: the JWK Set holds no signing key.")
    return {"keys": signing}


def _check_jwk(jwk: object, where: str) -> None:
    if not isinstance(jwk, dict):
        raise KeySetError(f"{where} is not a JSON object.")
    kid, alg, kty = jwk.get("kid"), jwk.get("alg"), jwk.get("kty")
    if not isinstance(kid, str) or not kid:
        raise KeySetError(f"{where} has no 'kid'; tokens name their key by it.")
    where = f"{where} (kid {kid[:64]!r})"
    if kty == "oct" or (isinstance(alg, str) and alg.upper().startswith("HS")):
        raise KeySetError(f"{where} is an HMAC key; only asymmetric keys are trusted.")
    if alg not in KEY_TYPES:
        raise KeySetError(
            f"{where} names no trusted 'alg'; each key must name one of "
            f"{', '.join(ALGORITHMS)} (never 'none' or HMAC)."
        )
    if (kty, jwk.get("crv") if kty != "RSA" else None) != KEY_TYPES[alg]:
        raise KeySetError(f"{where} names {alg} but is not a {_key_type_text(alg)} key.")
    if PRIVATE_MEMBERS & jwk.keys():
        raise KeySetError(f"{where} holds private key material; publish public keys only.")
    _check_key_material(jwk, alg, where)


def _check_key_material(jwk: Mapping[str, Any], alg: str, where: str) -> None:
    try:
        key = jwt.PyJWK(dict(jwk), algorithm=alg).key
    except jwt.PyJWTError:
        raise KeySetError(f"{where} cannot be read as an {alg} public key.") from None
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        raise KeySetError(f"{where} is an RSA key of {key.key_size} bits; {MIN_RSA_BITS} at least.")


def _key_type_text(alg: str) -> str:
    kty, crv = KEY_TYPES[alg]
    return f"{kty} {crv}" if crv else kty


def read_jwks_file(path: Path) -> dict[str, list[dict[str, Any]]]:
    """The checked JWK Set in the file at `path` (JWKS_PATH); `AuthConfigurationError` if
    it cannot be read or parsed, `KeySetError` if a key is not trusted."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise AuthConfigurationError(
            f"JWKS_PATH {path}: cannot be read ({error.strerror})."
        ) from None
    except ValueError:
        raise AuthConfigurationError(f"JWKS_PATH {path}: not JSON.") from None
    return checked_jwks(data, f"JWKS_PATH {path}")


# --- the local signing key (private, for minting) -----------------------------------------


@dataclass(frozen=True)
class SigningKey:
    """A private key for minting: its `kid` (the RFC 7638 thumbprint unless the JWK names
    one) and its one algorithm. Its repr shows no key material."""

    kid: str
    algorithm: str
    private_key: PrivateKey = field(repr=False)

    def public_jwk(self) -> dict[str, Any]:
        """The public half as a JWK with `kid`, `alg` and `use` "sig"."""
        return {
            **_public_members(self.private_key),
            "kid": self.kid,
            "alg": self.algorithm,
            "use": "sig",
        }

    def public_jwks(self) -> dict[str, list[dict[str, Any]]]:
        """The JWK Set that trusts this key (what `serve --demo` verifies with)."""
        return {"keys": [self.public_jwk()]}


def _public_members(key: PrivateKey) -> dict[str, Any]:
    algorithm = get_default_algorithms()[_algorithm_of(key)]
    found: dict[str, Any] = algorithm.to_jwk(key.public_key(), as_dict=True)
    return found


def _algorithm_of(key: object) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return "ES256"
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size >= MIN_RSA_BITS:
        return "RS256"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "EdDSA"
    raise AuthConfigurationError(
        "the signing key must be EC P-256 (ES256), RSA of 2048 bits or more (RS256) or "
        "Ed25519 (EdDSA)."
    )


def thumbprint(public_jwk: Mapping[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url): a `kid` that follows from the key."""
    required = {
        "EC": ("crv", "kty", "x", "y"),
        "RSA": ("e", "kty", "n"),
        "OKP": ("crv", "kty", "x"),
    }
    members = {name: public_jwk[name] for name in required[public_jwk["kty"]]}
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


def load_signing_key(path: Path) -> SigningKey:
    """The private key in `path`: a PEM (PKCS#8 or traditional, unencrypted) or a private JWK.

    Raises `AuthConfigurationError` saying why, never showing the file's content.
    """
    try:
        text = path.read_bytes()
    except OSError as error:
        raise AuthConfigurationError(
            f"signing key {path}: cannot be read ({error.strerror})."
        ) from None
    return signing_key_of(_private_key_of(text, path), _jwk_kid(text))


def signing_key_of(key: PrivateKey, kid: str | None = None) -> SigningKey:
    """A `SigningKey` for a private key; `kid` defaults to its RFC 7638 thumbprint.

    Raises `AuthConfigurationError` for a key of no trusted algorithm (e.g. EC P-384).
    """
    alg = _algorithm_of(key)
    return SigningKey(kid or thumbprint(_public_members(key)), alg, key)


def _private_key_of(text: bytes, path: Path) -> PrivateKey:
    try:
        if text.lstrip().startswith(b"{"):
            data = json.loads(text)
            alg = data.get("alg") if isinstance(data, dict) else None
            found: object = jwt.PyJWK(data, algorithm=alg).key
        else:
            found = serialization.load_pem_private_key(text, password=None)
    except (ValueError, TypeError, AttributeError, jwt.PyJWTError):
        raise AuthConfigurationError(
            f"signing key {path}: not an unencrypted private key (PEM or JWK)."
        ) from None
    if not isinstance(
        found, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
    ):
        raise AuthConfigurationError(f"signing key {path}: holds no private key.")
    return found


def _jwk_kid(text: bytes) -> str | None:
    if not text.lstrip().startswith(b"{"):
        return None
    kid = json.loads(text).get("kid")
    return kid if isinstance(kid, str) and kid else None


def demo_signing_key(path: Path) -> SigningKey:
    """The demo key at `path`, generated once (EC P-256, PEM, readable by its owner only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_signing_key(path)  # made by an earlier run (or a concurrent one)
    with os.fdopen(descriptor, "wb") as file:
        file.write(pem)
    return load_signing_key(path)


# --- minting ------------------------------------------------------------------------------


def mint(
    claims: Claims,
    key: SigningKey,
    ttl: int,
    *,
    audience: str,
    issuer: str = LOCAL_ISSUER,
    now: datetime | None = None,
) -> str:
    """A signed JWT for `claims`, valid for `ttl` seconds (1 to 7 days) from `now`.

    Claims: `sub`, `role`, `tenant` and `pcs` (when set), `aud`, `iss`, `iat`, `exp`, a
    random `jti`; header `kid` and the key's one `alg`. Raises ValueError for a bad ttl.
    """
    if not 1 <= ttl <= MAX_TTL_SECONDS:
        raise ValueError(f"ttl must be 1 to {MAX_TTL_SECONDS} seconds.")
    issued = now or datetime.now(UTC)
    payload: dict[str, Any] = {
        "sub": claims.subject,
        "role": claims.role,
        "aud": audience,
        "iss": issuer,
        "iat": issued,
        "exp": issued + timedelta(seconds=ttl),
        "jti": uuid.uuid4().hex,
    }
    if claims.tenant:
        payload["tenant"] = claims.tenant
    if claims.pcs:
        payload["pcs"] = list(claims.pcs)
    return jwt.encode(payload, key.private_key, algorithm=key.algorithm, headers={"kid": key.kid})
