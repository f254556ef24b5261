"""The consent texts customers agree to (R-CON-1…4) and a device's consent state."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from domain.base import DomainError

# Versioned wording of "Optimize my IT environment". A version's wording never changes:
# a new wording is a new version, so every recorded grant names exactly what was agreed to.
CONSENT_TEXTS: dict[str, str] = {
    "2024-01": (
        "I agree that HPE or my authorised HPE reseller/partner may access my collected "
        "configuration data and contact me to discuss optimising my IT environment."
    ),
    "2025-06": (
        "I agree that HP/HPE or my authorised reseller/partner may access my collected "
        "configuration data and contact me with recommendations to optimise my IT "
        "environment. These providers may be located in other countries."
    ),
}
CURRENT_CONSENT_TEXT = "2025-06"


class ConsentError(DomainError):
    """A consent command was refused."""


def consent_text_digest(text_version: str) -> str:
    """SHA-256 of the wording of `text_version`; refuses unknown versions."""
    wording = CONSENT_TEXTS.get(text_version)
    if wording is None:
        known = ", ".join(sorted(CONSENT_TEXTS))
        raise ConsentError(f"Unknown consent text version {text_version!r}; known: {known}.")
    return hashlib.sha256(wording.encode()).hexdigest()


@dataclass(frozen=True)
class ConsentState:
    """Consent in effect for a device: which wording, set where (device or hosting device)."""

    text_version: str
    scope: str
