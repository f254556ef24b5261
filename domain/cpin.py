"""The customer's company PIN (cPIN, R-HLD-3): kept only as a keyed, salted verifier.

A cPIN is short (4-6 digits are common), so any unkeyed digest of it is reversed by trying
every value: an unsalted SHA-256 of every 6-digit cPIN takes about a second. partnerfleet
keeps `hmac-sha256$<salt hex>$<mac hex>`, the HMAC-SHA256 under a server key (never stored
with the events) of a per-dashboard random salt and the cPIN. Without the key the verifier
says nothing about the cPIN; with the key, the salt still makes each dashboard a search of
its own. The domain neither reads the key nor draws the salt: the handler passes both in.

Verifiers never leave the service: the event that holds one lists it in `internal_fields`,
and the Kafka relay and the published schemas leave such fields out.

Each verifier ends with the id of the key it was made under (`$<key id>`: 16 hex digits of
the key's HMAC of a fixed label, which says nothing of the key or the cPIN). A process
started with another CPIN_KEY then refuses with CpinKeyMismatchError, not "the cPIN does not
match": the customer's cPIN may be right, the service's key is not.

Dashboards created before verifiers were keyed hold `sha256$<hex>`, the unsalted digest
(upcast from `CustomerDashboardCreated` version 1), and those made before key ids
`hmac-sha256$<salt>$<mac>`; they still accept their cPIN.
"""

from __future__ import annotations

import hashlib
import hmac

from domain.base import DomainError, Msg

# The key of demo and test stores only (SQLite, in memory); PostgreSQL needs CPIN_KEY set.
DEMO_KEY = b"partnerfleet-demo-only-cpin-key-not-a-secret"
KEYED = "hmac-sha256"
LEGACY = "sha256"
MIN_KEY_BYTES = 32
SALT_BYTES = 16
KEY_ID_LABEL = b"partnerfleet cPIN key id"


class CpinKeyMismatchError(DomainError):
    """The dashboard's cPIN was set under another CPIN_KEY than this service has."""

    def __init__(self, made_under: str, service: str) -> None:
        super().__init__(
            Msg(
                "This customer dashboard's cPIN cannot be checked: it was set under another "
                "CPIN_KEY (key id {made_under}) than this service has (key id {service}). "
                "Nothing was recorded and the cPIN may well be right; HP operations must "
                "start partnerfleet with the CPIN_KEY the dashboard was created under.",
                made_under=made_under,
                service=service,
            )
        )


def key_id(key: bytes) -> str:
    """A name of `key` that reveals nothing of it: 16 hex digits of its HMAC of a label."""
    return hmac.new(key, KEY_ID_LABEL, hashlib.sha256).hexdigest()[:16]


def verifier_key_id(verifier: str) -> str | None:
    """The id of the key `verifier` was made under; None for verifiers older than key ids."""
    scheme, *parts = verifier.split("$")
    return parts[2] if scheme == KEYED and len(parts) == 3 else None


def require_key_of(verifier: str, key: bytes) -> None:
    """Raises CpinKeyMismatchError when `verifier` names a key other than `key`."""
    made_under = verifier_key_id(verifier)
    if made_under is not None and not hmac.compare_digest(made_under, key_id(key)):
        raise CpinKeyMismatchError(made_under, key_id(key))


def normalise_cpin(cpin: str) -> str:
    """The cPIN as compared: surrounding blanks are not part of it."""
    return cpin.strip()


def cpin_verifier(cpin: str, key: bytes, salt: bytes) -> str:
    """`hmac-sha256$<salt hex>$<mac hex>$<key id>` of the cPIN under `key` (>= 32 bytes)
    and `salt`.

    Raises ValueError for a short key or salt: a weak verifier must never be recorded.
    """
    if len(key) < MIN_KEY_BYTES or len(salt) < SALT_BYTES:
        raise ValueError(
            f"a cPIN verifier needs a key of at least {MIN_KEY_BYTES} bytes "
            f"and a salt of at least {SALT_BYTES} bytes."
        )
    return f"{KEYED}${salt.hex()}${_mac(key, salt, cpin)}${key_id(key)}"


def legacy_verifier(digest: str) -> str:
    """The verifier of a dashboard recorded with the unsalted SHA-256 hex digest."""
    return f"{LEGACY}${digest}"


def cpin_matches(verifier: str, cpin: str, key: bytes) -> bool:
    """Whether `cpin` opens the dashboard holding `verifier` (compared in constant time)."""
    scheme, _, rest = verifier.partition("$")
    if scheme == KEYED:
        salt, _, mac = rest.partition("$")
        mac = mac.partition("$")[0]  # without the key id
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
