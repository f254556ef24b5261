"""Bearer token -> `Claims` (issue 9): JWTs verified with PyJWT against a JWK Set.

`TokenVerifier.claims(token)` checks, in this order: the token's size and form, its `kid`
(one of the trusted keys), its `alg` (the key's own, never the header's choice), the
signature, then `exp`, `iat`, `nbf` (with the configured leeway), `aud` and `iss`, and
the custom claims `role`, `tenant`, `pcs`. Each refusal is an `AuthenticationError`
(HTTP 401) with a fixed reason that never repeats the token or anything taken from it.

The keys come from a JWKS file (`file_keys`, read once at start) or URL (`url_keys`,
PyJWKClient: cached for 5 minutes, refetched at most every 30 s for an unknown `kid`).
Both go through `infra.tokens.checked_jwks`: HMAC and `none` keys, keys without `alg`,
and private key material are refused. The HTTP dependency (infra/http/deps.py) calls
`claims` and then `handlers.access.authenticate`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import jwt
import structlog
from jwt import PyJWK, PyJWKClient, PyJWKSet
from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

from domain.base import Msg
from handlers.access import AuthenticationError, Claims
from infra.tokens import KEY_TYPES, AuthConfigurationError, checked_jwks

log = structlog.get_logger("partnerfleet.auth")

MAX_TOKEN_CHARS = 8192
VERIFIED_SECONDS = 60.0  # how long a verified token is taken without checking it again
VERIFIED_TOKENS = 10_000  # how many verified tokens are remembered (least recent out)
REQUIRED_CLAIMS = ["exp", "iat", "sub", "aud", "iss"]
JWKS_LIFESPAN_SECONDS = 300.0
JWKS_FETCH_TIMEOUT_SECONDS = 5.0

# PyJWT's refusals, in the words the caller gets (subclasses before their bases).
REASONS: list[tuple[type[jwt.PyJWTError], Msg]] = [
    (jwt.InvalidSignatureError, Msg("The token's signature does not verify.")),
    (jwt.InvalidAlgorithmError, Msg("The token's algorithm is not its key's algorithm.")),
    (jwt.ExpiredSignatureError, Msg("The token has expired.")),
    (jwt.ImmatureSignatureError, Msg("The token is not valid yet (nbf or iat is in the future).")),
    (jwt.InvalidAudienceError, Msg("The token is not meant for this service (aud).")),
    (jwt.InvalidIssuerError, Msg("The token comes from an issuer this service does not trust.")),
    (jwt.InvalidIssuedAtError, Msg("The token's iat claim is not a time.")),
    (jwt.exceptions.InvalidSubjectError, Msg("The token's sub claim is not a string.")),
]
MALFORMED = Msg("The bearer token is malformed.")


class KeysUnavailableError(AuthenticationError):
    """The trusted keys could not be fetched or were refused (the JWKS URL is down or
    serves an untrusted set): no token can be checked now. HTTP may answer 503."""


class KeySource(Protocol):
    """Where the trusted public keys come from."""

    def key(self, kid: str) -> PyJWK | None:
        """The trusted key named `kid`, or None. May raise `KeysUnavailableError`."""
        ...


class FileKeys:
    """A fixed JWK Set: a JWKS file read at start, or the local key's public half (demo)."""

    def __init__(self, jwks: Mapping[str, Any], source: str) -> None:
        self._keys = PyJWKSet.from_dict(checked_jwks(jwks, source))  # each key names its alg

    def key(self, kid: str) -> PyJWK | None:
        """The key named `kid`, or None."""
        try:
            return self._keys[kid]
        except KeyError:
            return None


class _CheckedJWKClient(PyJWKClient):
    """PyJWKClient whose fetched sets pass `checked_jwks` before they are cached or used."""

    def fetch_data(self) -> Any:
        try:
            return checked_jwks(super().fetch_data(), "JWKS_URL")
        except (jwt.PyJWTError, ValueError, OSError) as error:  # ValueError: not JSON, or ours
            if self.jwk_set_cache is not None:
                self.jwk_set_cache.put(None)  # PyJWKClient cached the unchecked set
            reason = (
                str(error) if isinstance(error, AuthConfigurationError) else type(error).__name__
            )
            log.error("jwks_unavailable", reason=reason)
            raise KeysUnavailableError(Msg("The service's signing keys are unavailable.")) from None


class UrlKeys:
    """The identity provider's JWK Set at a URL, through PyJWKClient's cache."""

    def __init__(self, url: str) -> None:
        try:
            self._client = _CheckedJWKClient(
                url, lifespan=JWKS_LIFESPAN_SECONDS, timeout=JWKS_FETCH_TIMEOUT_SECONDS
            )
        except jwt.PyJWKClientError as error:
            raise AuthConfigurationError(f"JWKS_URL: {error}") from None

    def key(self, kid: str) -> PyJWK | None:
        """The key named `kid` (refetching the set once per cool-down), or None."""
        try:
            return self._client.get_signing_key(kid)
        except jwt.PyJWKClientError:
            return None  # only "no key matches": fetch failures raise KeysUnavailableError


class _Body(BaseModel):
    """The claims partnerfleet reads besides the registered ones."""

    model_config = ConfigDict(extra="ignore", frozen=True, hide_input_in_errors=True)

    sub: StrictStr = Field(min_length=1, max_length=320)
    role: StrictStr = Field(min_length=1, max_length=40)
    tenant: StrictStr = Field(default="", max_length=200)
    pcs: tuple[StrictStr, ...] = Field(default=(), max_length=10_000)


@dataclasses.dataclass(frozen=True)
class _Verified:
    """A token verified before: its claims, its key, and until when (clock seconds) it is
    taken again without checking its signature."""

    claims: Claims
    kid: str
    until: float


class TokenVerifier:
    """Verifies bearer JWTs against trusted keys for one audience and issuer.

    `leeway` (seconds) is allowed on `exp`, `iat` and `nbf` for clock skew. A token verified
    once is taken again without checking its signature for up to VERIFIED_SECONDS (60 s),
    never past its `exp` (+ leeway), and only while its key is still trusted: a client
    sends the same token with every request, and the signature check is a third of a
    read's time (docs/benchmarks.md). The last VERIFIED_TOKENS (10,000) are remembered by
    their SHA-256, never the token itself.
    """

    def __init__(
        self,
        keys: KeySource,
        *,
        audience: str,
        issuer: str,
        leeway: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys = keys
        self._audience = audience
        self._issuer = issuer
        self._leeway = leeway
        self._clock = clock
        self._verified_tokens: OrderedDict[bytes, _Verified] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def never_waits(self) -> bool:
        """Whether `claims` never waits for the network (keys from a file, not JWKS_URL):
        then it may run on the event loop (the page's plain path, session 19)."""
        return isinstance(self._keys, FileKeys)

    def claims(self, token: str, correlation_id: str = "") -> Claims:
        """The verified claims of `token` (a compact JWS, at most 8192 characters).

        Raises `AuthenticationError` with a reason safe to show (it never contains the
        token), or `KeysUnavailableError` when the keys cannot be had.
        """
        # surrogatepass: a token from a command line or environment that was not UTF-8
        # holds surrogate escapes; it is refused below as malformed, never a crash.
        digest = (
            hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
            if isinstance(token, str)
            else b""
        )
        known = self._known(digest)
        if known is not None:
            return dataclasses.replace(known.claims, correlation_id=correlation_id)
        try:
            payload, kid = self._verified(token)
            body = _body(payload)
        except AuthenticationError as refusal:
            log.info("token_refused", reason=str(refusal))
            raise
        log.debug("token_accepted", subject=body.sub, role=body.role, tenant=body.tenant)
        claims = Claims(body.sub, body.role, body.tenant, body.pcs, correlation_id)
        self._remember(digest, claims, kid, payload.get("exp"))
        return claims

    def _known(self, digest: bytes) -> _Verified | None:
        """A token verified before, still within its time and with its key still trusted."""
        with self._lock:
            known = self._verified_tokens.get(digest)
            if known is None:
                return None
            if self._clock() >= known.until:
                del self._verified_tokens[digest]
                return None
            self._verified_tokens.move_to_end(digest)
        return known if self._keys.key(known.kid) is not None else None

    def _remember(self, digest: bytes, claims: Claims, kid: str, expires: object) -> None:
        if not digest or not isinstance(expires, int | float) or isinstance(expires, bool):
            return
        until = min(self._clock() + VERIFIED_SECONDS, float(expires) + self._leeway)
        with self._lock:
            self._verified_tokens[digest] = _Verified(claims, kid, until)
            while len(self._verified_tokens) > VERIFIED_TOKENS:
                self._verified_tokens.popitem(last=False)

    def _verified(self, token: str) -> tuple[dict[str, Any], str]:
        """The token's payload, checked, and the id of the key that signed it."""
        key, kid = self._key_for(token)
        try:
            payload: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[key.algorithm_name],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": REQUIRED_CLAIMS, "enforce_minimum_key_length": True},
            )
        except jwt.MissingRequiredClaimError as error:
            raise AuthenticationError(
                Msg("The token lacks the {claim!r} claim.", claim=error.claim)
            ) from None
        except jwt.PyJWTError as error:
            raise AuthenticationError(_reason(error)) from None
        return payload, kid

    def _key_for(self, token: str) -> tuple[PyJWK, str]:
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
            raise AuthenticationError(
                Msg(
                    "The bearer token is empty or over {most} characters.",
                    most=MAX_TOKEN_CHARS,
                )
            )
        if not token.isascii():  # a compact JWS is base64url and dots only
            raise AuthenticationError(MALFORMED)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthenticationError(MALFORMED) from None
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthenticationError(Msg("The token names no key (kid)."))
        key = self._keys.key(kid)
        if key is None:
            raise AuthenticationError(Msg("The token's key (kid) is not one this service trusts."))
        if key.algorithm_name not in KEY_TYPES:  # checked at load; kept as a second lock
            raise AuthenticationError(Msg("The token's key has no trusted algorithm."))
        return key, kid


def _reason(error: jwt.PyJWTError) -> Msg:
    for kind, reason in REASONS:
        if isinstance(error, kind):
            return reason
    return MALFORMED


def _body(payload: dict[str, Any]) -> _Body:
    try:
        return _Body.model_validate(payload)
    except ValidationError as error:
        first = error.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "payload"
        if first["type"] == "missing":
            raise AuthenticationError(
                Msg("The token lacks the {name!r} claim.", name=name)
            ) from None
        raise AuthenticationError(
            Msg("The token's {name!r} claim is malformed.", name=name)
        ) from None
