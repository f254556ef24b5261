"""The customer's company PIN (cPIN, R-HLD-3): kept only as a keyed, salted verifier.

A cPIN is short (4-6 digits are common), so any unkeyed digest of it is reversed by trying
every value: an unsalted SHA-256 of every 6-digit cPIN takes about a second. partnerfleet
keeps `hmac-sha256$<salt hex>$<mac hex>`, the HMAC-SHA256 under a server key (never stored
with the events) of a per-dashboard random salt and the cPIN. Without the key the verifier
says nothing about the cPIN; with the key, the salt still makes each dashboard a search of
its own. The domain neither reads the key nor draws the salt: the handler passes both in.

Verifiers never leave the service: the event that holds one lists it in `internal_fields`,
and the Kafka relay and the published schemas leave such fields out.

Dashboards created before verifiers were keyed hold `sha256$<hex>`, the unsalted digest
(upcast from `CustomerDashboardCreated` version 1); they still accept their cPIN.
"""

from __future__ import annotations

import hashlib
import hmac

# The key of demo and test stores only (SQLite, in memory); PostgreSQL needs CPIN_KEY set.
DEMO_KEY = b"partnerfleet-demo-only-cpin-key-not-a-secret"
KEYED = "hmac-sha256"
LEGACY = "sha256"
MIN_KEY_BYTES = 32
SALT_BYTES = 16


def normalise_cpin(cpin: str) -> str:
    """The cPIN as compared: surrounding blanks are not part of it."""
    return cpin.strip()


def cpin_verifier(cpin: str, key: bytes, salt: bytes) -> str:
    """`hmac-sha256$<salt hex>$<mac hex>` of the cPIN under `key` (>= 32 bytes) and `salt`.

    Raises ValueError for a short key or salt: a weak verifier must never be recorded.
    """
    if len(key) < MIN_KEY_BYTES or len(salt) < SALT_BYTES:
        raise ValueError(
            f"a cPIN verifier needs a key of at least {MIN_KEY_BYTES} bytes "
            f"and a salt of at least {SALT_BYTES} bytes."
        )
    return f"{KEYED}${salt.hex()}${_mac(key, salt, cpin)}"


def legacy_verifier(digest: str) -> str:
    """The verifier of a dashboard recorded with the unsalted SHA-256 hex digest."""
    return f"{LEGACY}${digest}"


def cpin_matches(verifier: str, cpin: str, key: bytes) -> bool:
    """Whether `cpin` opens the dashboard holding `verifier` (compared in constant time)."""
    scheme, _, rest = verifier.partition("$")
    if scheme == KEYED:
        salt, _, mac = rest.partition("$")
        try:
            expected = _mac(key, bytes.fromhex(salt), cpin)
        except ValueError:
            return False
        return hmac.compare_digest(mac, expected)
    if scheme == LEGACY:
        digest = hashlib.sha256(normalise_cpin(cpin).encode()).hexdigest()
        return hmac.compare_digest(rest, digest)
    return False


def _mac(key: bytes, salt: bytes, cpin: str) -> str:
    return hmac.new(key, salt + normalise_cpin(cpin).encode(), hashlib.sha256).hexdigest()
