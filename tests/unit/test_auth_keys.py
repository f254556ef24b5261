"""Trusted keys (issue 9, infra/tokens.py + infra/http/auth.py): what a JWK Set may hold,
keys from a URL, the local signing key, and the start-up refusals of `build_verifier`."""

from __future__ import annotations

import json
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from pydantic import ValidationError

from handlers.access import AuthenticationError, Claims
from infra.bootstrap import build_signing_key, build_verifier
from infra.http.auth import FileKeys, KeysUnavailableError, TokenVerifier, UrlKeys
from infra.settings import Settings
from infra.tokens import (
    AuthConfigurationError,
    KeySetError,
    demo_signing_key,
    load_signing_key,
    mint,
    read_jwks_file,
)
from tests.auth_keys import (
    AUDIENCE,
    ISSUER,
    claims_body,
    jwks,
    jwks_file,
    private_pem,
    signed,
    signing_key,
)


def public(key_alg: str = "ES256", /, **changes: Any) -> dict[str, Any]:
    """The public JWK of the test key of `key_alg`, with `changes` (None removes a member)."""
    jwk = {**signing_key(key_alg).public_jwk(), **changes}
    return {name: value for name, value in jwk.items() if value is not None}


# --- what a key set may hold -------------------------------------------------------------


@pytest.mark.parametrize(
    ("jwk", "match"),
    [
        ({"kty": "oct", "k": "c2VjcmV0", "kid": "h", "alg": "HS256"}, "HMAC key"),
        (public(alg="HS256"), "HMAC key"),
        (public(alg="none"), "names no trusted 'alg'"),
        (public(alg=None), "names no trusted 'alg'"),
        (public(alg="RS256"), "names RS256 but is not a RSA key"),
        (public(kid=None), "has no 'kid'"),
        ({**public(), "d": "private"}, "private key material"),
        (public(x="AAAA"), "cannot be read as an ES256 public key"),
    ],
    ids=["oct", "hs256", "none", "no-alg", "alg-of-another-type", "no-kid", "private", "bad-x"],
)
def test_an_untrusted_key_refuses_the_whole_set(jwk: dict[str, Any], match: str) -> None:
    """HMAC, `none`, a missing or mismatched alg, no kid or private parts: refused at load."""
    with pytest.raises(KeySetError, match=match):
        FileKeys({"keys": [public("EdDSA"), jwk]}, "JWKS_PATH test")


def test_an_rsa_key_under_2048_bits_is_refused() -> None:
    """RS256 keys need 2048 bits at least."""
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    jwk = {**RSAAlgorithm.to_jwk(small, as_dict=True), "kid": "small", "alg": "RS256"}

    with pytest.raises(KeySetError, match="1024 bits"):
        FileKeys({"keys": [jwk]}, "JWKS_PATH test")


def test_duplicate_kids_and_empty_sets_are_refused() -> None:
    """A kid names one key; a set without a signing key trusts nothing."""
    with pytest.raises(KeySetError, match="share a 'kid'"):
        FileKeys({"keys": [public(), public()]}, "test")
    with pytest.raises(KeySetError, match="no signing key"):
        FileKeys({"keys": [public(use="enc")]}, "test")
    with pytest.raises(KeySetError, match="not a JWK Set"):
        FileKeys({"key": []}, "test")


def test_encryption_keys_are_left_out_and_signing_keys_kept() -> None:
    """A key with `use` "enc" is not a signing key; the others verify."""
    keys = FileKeys({"keys": [public("RS256", use="enc"), public("EdDSA")]}, "test")

    assert keys.key(signing_key("RS256").kid) is None
    assert keys.key(signing_key("EdDSA").kid) is not None


def test_a_jwks_file_is_read_and_checked(tmp_path: Path) -> None:
    """JWKS_PATH: a readable, trusted set; a missing file or non-JSON says so."""
    assert read_jwks_file(jwks_file(tmp_path, signing_key())) == jwks(signing_key())
    with pytest.raises(AuthConfigurationError, match="cannot be read"):
        read_jwks_file(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{nope", encoding="utf-8")
    with pytest.raises(AuthConfigurationError, match="not JSON"):
        read_jwks_file(tmp_path / "bad.json")


# --- keys from a URL -----------------------------------------------------------------------


@pytest.fixture
def jwks_server() -> Iterator[tuple[str, dict[str, Any]]]:
    """A loopback HTTP server answering its `served` dict as JSON (or, under the key "raw",
    that text as it is); yields (url, served)."""
    served: dict[str, Any] = {}

    class Answer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = str(served["raw"]).encode() if "raw" in served else json.dumps(served).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json", served
    server.shutdown()
    server.server_close()


def url_verifier(url: str) -> TokenVerifier:
    return TokenVerifier(UrlKeys(url), audience=AUDIENCE, issuer=ISSUER, leeway=30)


def test_keys_from_a_url_verify_tokens(jwks_server: tuple[str, dict[str, Any]]) -> None:
    """JWKS_URL: the fetched set's keys verify; an unknown kid is refused."""
    url, served = jwks_server
    served.update(jwks(signing_key("RS256")))

    claims = url_verifier(url).claims(signed(claims_body(), signing_key("RS256")))

    assert claims.subject == "anna@LOC-1"
    with pytest.raises(AuthenticationError, match="not one this service trusts"):
        url_verifier(url).claims(signed(claims_body(), signing_key("EdDSA")))


def test_a_url_serving_an_hmac_key_makes_keys_unavailable(
    jwks_server: tuple[str, dict[str, Any]],
) -> None:
    """A fetched set with an HMAC key is refused whole: no token verifies, none is trusted."""
    url, served = jwks_server
    served.update({"keys": [public(), {"kty": "oct", "k": "c2VjcmV0", "kid": "h", "alg": "HS256"}]})

    with pytest.raises(KeysUnavailableError, match="unavailable"):
        url_verifier(url).claims(signed(claims_body()))


def test_a_url_serving_no_json_makes_keys_unavailable(
    jwks_server: tuple[str, dict[str, Any]],
) -> None:
    """An HTML error page instead of a JWK Set: KeysUnavailableError, not a crash."""
    url, served = jwks_server
    served["raw"] = "<html>maintenance</html>"

    with pytest.raises(KeysUnavailableError):
        url_verifier(url).claims(signed(claims_body()))


def test_an_unreachable_url_makes_keys_unavailable() -> None:
    """Connection refused: KeysUnavailableError, which HTTP may answer with 503."""
    with pytest.raises(KeysUnavailableError):
        url_verifier("http://127.0.0.1:9/jwks.json").claims(signed(claims_body()))


# --- the local signing key -----------------------------------------------------------------


def test_the_demo_key_is_made_once_and_readable_by_its_owner_only(tmp_path: Path) -> None:
    """var/…pem: EC P-256 (ES256), mode 0600; a second call loads the same key."""
    path = tmp_path / "var" / "demo.pem"

    first, second = demo_signing_key(path), demo_signing_key(path)

    assert (first.kid, first.algorithm) == (second.kid, "ES256")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert private_pem(first).splitlines()[1] not in repr(first)


@pytest.mark.parametrize("alg", ["RS256", "EdDSA"])
def test_a_pem_signing_key_is_loaded_with_its_algorithm(tmp_path: Path, alg: str) -> None:
    """JWT_SIGNING_KEY_PATH may hold a PEM; the kid is its thumbprint."""
    (tmp_path / "key.pem").write_text(private_pem(signing_key(alg)), encoding="utf-8")

    loaded = load_signing_key(tmp_path / "key.pem")

    assert (loaded.algorithm, loaded.kid) == (alg, signing_key(alg).kid)


def test_a_bad_signing_key_file_is_refused_without_showing_it(tmp_path: Path) -> None:
    """A public key, or no key at all, is refused; the message shows no content."""
    (tmp_path / "public.json").write_text(json.dumps(public()), encoding="utf-8")
    (tmp_path / "junk.pem").write_text("s3cr3t-not-a-key", encoding="utf-8")

    with pytest.raises(AuthConfigurationError, match="no private key"):
        load_signing_key(tmp_path / "public.json")
    with pytest.raises(AuthConfigurationError, match="not an unencrypted private key") as junk:
        load_signing_key(tmp_path / "junk.pem")
    assert "s3cr3t" not in str(junk.value)


# --- start-up: Settings and build_verifier -------------------------------------------------


def test_outside_demo_mode_there_is_no_default_key(tmp_path: Path) -> None:
    """No JWKS, or no JWT_ISSUER: `build_verifier` refuses, saying what to set."""
    with pytest.raises(AuthConfigurationError, match="JWKS_URL"):
        build_verifier(Settings(jwt_issuer=ISSUER), demo=False)
    with pytest.raises(AuthConfigurationError, match="JWT_ISSUER"):
        build_verifier(Settings(jwks_path=jwks_file(tmp_path, signing_key())), demo=False)


def test_a_configured_jwks_file_and_issuer_verify_tokens(tmp_path: Path) -> None:
    """JWKS_PATH + JWT_ISSUER: the production path with a file."""
    settings = Settings(jwks_path=jwks_file(tmp_path, signing_key()), jwt_issuer=ISSUER)

    claims = build_verifier(settings, demo=False).claims(signed(claims_body()))

    assert claims.tenant == "LOC-1"


def test_demo_mode_trusts_the_local_signing_key(tmp_path: Path) -> None:
    """`serve --demo` without a JWKS verifies what `token issue` signs."""
    settings = Settings(jwt_signing_key_path=tmp_path / "local.pem")
    (tmp_path / "local.pem").write_text(private_pem(signing_key("EdDSA")), encoding="utf-8")
    wanted = Claims("auditor@example.com", "auditor")

    token = mint(wanted, build_signing_key(settings), 60, audience=settings.jwt_audience)

    assert build_verifier(settings, demo=True).claims(token) == wanted


def test_settings_take_one_key_source_and_an_http_url() -> None:
    """JWKS_PATH and JWKS_URL together, or a non-HTTP URL, are refused at once."""
    with pytest.raises(ValidationError, match="not both"):
        Settings(jwks_path=Path("a.json"), jwks_url="https://idp.example/jwks")
    with pytest.raises(ValidationError, match="jwks_url"):
        Settings(jwks_url="file:///etc/passwd")
    assert Settings().jwt_leeway_seconds == 30
    assert Settings().jwt_audience == "partnerfleet"
