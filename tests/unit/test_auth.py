"""Bearer tokens -> Claims (issue 9, infra/http/auth.py): every refusal with its reason,
the accepted token, and a valid token of partner A that opens nothing of partner B."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Iterator

import pytest
import structlog
from jwt import PyJWK
from structlog.testing import capture_logs

from domain.base import NotFoundError
from handlers import PartnerFleet
from handlers.access import AuthenticationError, Claims, authenticate, partner_scope
from infra.http.auth import VERIFIED_SECONDS, FileKeys, TokenVerifier
from infra.tokens import SigningKey, mint
from tests.auth_keys import (
    AUDIENCE,
    ISSUER,
    LEEWAY,
    b64,
    claims_body,
    hmac_with_public_key,
    jwks,
    private_pem,
    signed,
    signing_key,
    unsigned,
    verifier,
)
from tests.unit.conftest import register_partner

ALGORITHMS = ["ES256", "RS256", "EdDSA"]


def refusal(token: str, match: str) -> None:
    """`token` is refused by the default verifier, for the reason `match`."""
    with pytest.raises(AuthenticationError, match=match) as refused:
        verifier().claims(token)
    assert not token or token not in str(refused.value)


# --- accepted --------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_a_valid_token_gives_its_claims_for_each_trusted_algorithm(alg: str) -> None:
    """ES256, RS256 and EdDSA keys each verify their own tokens into Claims."""
    key = signing_key(alg)
    token = signed(claims_body(role="end_user", tenant="C1", pcs=["PC1", "PC2"]), key)

    claims = verifier(key).claims(token, correlation_id="corr-1")

    assert claims == Claims("anna@LOC-1", "end_user", "C1", ("PC1", "PC2"), "corr-1")


def test_a_minted_token_verifies_with_the_audience_and_issuer_it_names() -> None:
    """`mint` makes tokens the verifier accepts: the claims come back unchanged."""
    wanted = Claims("ops@example.com", "operator")

    token = mint(wanted, signing_key(), 60, audience=AUDIENCE, issuer=ISSUER)

    assert verifier().claims(token) == wanted


def test_clock_skew_within_the_leeway_is_accepted() -> None:
    """exp 10 s ago and iat 10 s ahead pass with the 30 s leeway."""
    now = int(time.time())

    claims = verifier().claims(signed(claims_body(exp=now - 10, iat=now + 10)))

    assert claims.subject == "anna@LOC-1"


# --- refused -----------------------------------------------------------------------------


def test_a_tampered_payload_is_refused() -> None:
    """The role changed after signing: the signature no longer verifies."""
    header, _, signature = signed(claims_body()).split(".")
    forged_body = b64(b'{"sub":"anna@LOC-1","role":"operator"}')

    refusal(f"{header}.{forged_body}.{signature}", "signature does not verify")


def test_a_tampered_signature_is_refused() -> None:
    """One byte of the signature flipped."""
    header, body, signature = signed(claims_body()).split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[5] ^= 0x01

    refusal(f"{header}.{body}.{b64(bytes(raw))}", "signature does not verify")


def test_alg_none_is_refused() -> None:
    """An unsigned token naming a trusted kid: the key's algorithm is not the header's."""
    refusal(unsigned(claims_body(), signing_key().kid), "algorithm is not its key's")


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_hmac_signed_with_the_public_key_is_refused(alg: str) -> None:
    """HS256 with the public key as secret (key confusion) is refused before any MAC check."""
    key = signing_key(alg)
    token = hmac_with_public_key(claims_body(), key)

    with pytest.raises(AuthenticationError, match="algorithm is not its key's"):
        verifier(key).claims(token)


def test_a_token_signed_with_another_algorithm_of_the_same_kid_is_refused() -> None:
    """An RS256 signature presented under the ES256 key's kid."""
    token = signed(claims_body(), signing_key("RS256"), kid=signing_key().kid)

    refusal(token, "algorithm is not its key's")


def test_an_expired_token_is_refused() -> None:
    """exp further back than the leeway."""
    now = int(time.time())

    refusal(signed(claims_body(iat=now - 600, exp=now - 60)), "has expired")


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_a_token_not_yet_valid_is_refused(claim: str) -> None:
    """nbf or iat further ahead than the leeway."""
    ahead = int(time.time()) + 120

    refusal(signed(claims_body(**{claim: ahead})), "not valid yet")


def test_a_token_for_another_audience_is_refused() -> None:
    """aud names another service."""
    refusal(signed(claims_body(aud="another-service")), "not meant for this service")


def test_a_token_from_another_issuer_is_refused() -> None:
    """iss is not the configured issuer, though the key is trusted."""
    refusal(signed(claims_body(iss="https://evil.example")), "issuer this service does not trust")


@pytest.mark.parametrize("claim", ["exp", "iat", "sub", "aud", "iss", "role"])
def test_a_token_without_a_required_claim_is_refused(claim: str) -> None:
    """exp, iat, sub, aud, iss (registered) and role (ours) are required."""
    refusal(signed(claims_body(**{claim: None})), f"lacks the '{claim}' claim")


def test_a_token_of_an_unknown_key_is_refused() -> None:
    """Signed by a key the service does not trust, under that key's own kid."""
    refusal(signed(claims_body(), signing_key("ES256", "stranger")), "not one this service trusts")


def test_a_token_without_kid_is_refused() -> None:
    """No kid: no key to choose, and no guessing."""
    refusal(signed(claims_body(), kid=None), "names no key")


@pytest.mark.parametrize(
    ("token", "match"),
    [
        ("", "empty or over 8192"),
        ("x" * 8193, "empty or over 8192"),
        ("not-a-jwt", "malformed"),
        ("a.b.c", "malformed"),
    ],
    ids=["empty", "too-long", "one-segment", "not-base64-json"],
)
def test_a_malformed_token_is_refused(token: str, match: str) -> None:
    """Not a compact JWS of at most 8192 characters."""
    refusal(token, match)


@pytest.mark.parametrize(
    ("changes", "claim"),
    [({"role": 7}, "role"), ({"pcs": "PC1"}, "pcs"), ({"tenant": ["LOC-1"]}, "tenant")],
)
def test_a_custom_claim_of_the_wrong_type_is_refused(
    changes: dict[str, object], claim: str
) -> None:
    """role and tenant are strings, pcs a list of strings."""
    refusal(signed(claims_body(**changes)), f"'{claim}' claim is malformed")


# --- at the access layer -----------------------------------------------------------------


@pytest.fixture
def two_partners(app: PartnerFleet) -> PartnerFleet:
    """LOC-1 (admin anna, user ben) and LOC-2 (admin otto)."""
    register_partner(app, "LOC-1", "anna@LOC-1", "ben@LOC-1")
    register_partner(app, "LOC-2", "otto@LOC-2")
    return app


def test_r_lnk_1_a_valid_token_of_partner_a_opens_nothing_of_partner_b(
    two_partners: PartnerFleet,
) -> None:
    """R-LNK-1: anna's valid LOC-1 token makes a LOC-1 actor; LOC-2's ids are not found."""
    claims = verifier().claims(signed(claims_body(sub="anna@LOC-1", tenant="LOC-1")))

    actor = authenticate(two_partners, claims)

    assert partner_scope(actor, "LOC-1").admin  # admin from the store, not the token
    with pytest.raises(NotFoundError, match="LOC-2"):
        partner_scope(actor, "LOC-2")


def test_r_par_2_a_valid_token_naming_another_partners_tenant_makes_no_actor(
    two_partners: PartnerFleet,
) -> None:
    """R-PAR-2: anna's signed token claiming LOC-2 is refused: she is no user of LOC-2."""
    claims = verifier().claims(signed(claims_body(sub="anna@LOC-1", tenant="LOC-2")))

    with pytest.raises(AuthenticationError, match="not a user registered under"):
        authenticate(two_partners, claims)


# --- never in the logs -------------------------------------------------------------------


@pytest.fixture
def debug_level() -> Iterator[None]:
    """structlog at debug level for one test (an earlier test may have set info)."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    yield
    structlog.configure(**saved)


@pytest.mark.usefixtures("debug_level")
def test_tokens_and_key_material_never_reach_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    """A refused and an accepted verification log their outcome, never the token or key."""
    good = signed(claims_body())
    bad = signed(claims_body(aud="another-service"))
    caplog.set_level(logging.DEBUG)

    with capture_logs() as logs:
        verifier().claims(good)
        with pytest.raises(AuthenticationError):
            verifier().claims(bad)

    assert [entry["event"] for entry in logs] == ["token_accepted", "token_refused"]
    shown = repr(logs) + caplog.text
    for secret in (good, bad, good.split(".")[2], bad.split(".")[2]):
        assert secret not in shown
    assert private_pem(signing_key()).splitlines()[1] not in shown


class Clock:
    """A clock the test moves (seconds since the epoch)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class CountingKeys:
    """Trusted keys that count how often a signature needed one, and can drop a key."""

    def __init__(self, *keys: SigningKey) -> None:
        self.inner = FileKeys(jwks(*keys), "counted keys")
        self.dropped: set[str] = set()
        self.asked = 0

    def key(self, kid: str) -> PyJWK | None:
        self.asked += 1
        return None if kid in self.dropped else self.inner.key(kid)


def cached_verifier(keys: CountingKeys, clock: Clock) -> TokenVerifier:
    return TokenVerifier(keys, audience=AUDIENCE, issuer=ISSUER, leeway=LEEWAY, clock=clock)


def test_a_verified_token_is_taken_again_without_decoding_until_it_expires() -> None:
    """The second use of a token is not decoded again (jwt.decode is patched to fail)…"""
    key, clock = signing_key(), Clock()
    checker = cached_verifier(CountingKeys(key), clock)
    token = signed(claims_body(exp=int(clock.now) + 45))
    first = checker.claims(token, "c-1")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("infra.http.auth.jwt.decode", _no_decoding)
        again = checker.claims(token, "c-2")
        clock.now += 45 + LEEWAY  # …and refused once past exp + leeway, decoded again
        with pytest.raises(RuntimeError, match="decoded"):
            checker.claims(token)

    assert again == Claims(first.subject, first.role, first.tenant, first.pcs, "c-2")


def test_a_verified_token_is_checked_again_after_a_minute() -> None:
    """Taken without decoding for VERIFIED_SECONDS at most, however long it is valid."""
    key, clock = signing_key(), Clock()
    checker = cached_verifier(CountingKeys(key), clock)
    token = signed(claims_body())
    checker.claims(token)

    clock.now += VERIFIED_SECONDS
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("infra.http.auth.jwt.decode", _no_decoding)
        with pytest.raises(RuntimeError, match="decoded"):
            checker.claims(token)


def test_a_verified_token_whose_key_is_no_longer_trusted_is_refused() -> None:
    """A key withdrawn from the JWKS ends its tokens at once, remembered or not."""
    key, clock = signing_key(), Clock()
    keys = CountingKeys(key)
    checker = cached_verifier(keys, clock)
    token = signed(claims_body())
    checker.claims(token)

    keys.dropped.add(key.kid)

    with pytest.raises(AuthenticationError, match="not one this service trusts"):
        checker.claims(token)


def test_a_tampered_copy_of_a_verified_token_is_still_refused() -> None:
    """Remembered by the whole token's hash: a copy with another signature is checked."""
    key, clock = signing_key(), Clock()
    checker = cached_verifier(CountingKeys(key), clock)
    token = signed(claims_body())
    checker.claims(token)
    head, payload, signature = token.split(".")
    tampered = f"{head}.{payload}.{signature[:-4]}AAAA"

    with pytest.raises(AuthenticationError, match="signature"):
        checker.claims(tampered)


def _no_decoding(*_args: object, **_kwargs: object) -> None:
    raise RuntimeError("decoded")
