"""The consent texts customers agree to (R-CON-1…4) and a device's consent state."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from domain.base import DomainError, Msg

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
        raise ConsentError(
            Msg(
                "Unknown consent text version {text_version!r}; known: {known}.",
                text_version=text_version,
                known=known,
            )
        )
    return hashlib.sha256(wording.encode()).hexdigest()


@dataclass(frozen=True)
class ConsentState:
    """Consent in effect for a device: which wording, set where (device or hosting device)."""

    text_version: str
    scope: str


class ConsentRecords:
    """A device's consent records and which of them is in effect (R-CON-3, R-CON-4).

    A mixin of Device. The record in effect is the latest grant or withdrawal, or the
    correction that replaced it; a correction of any other record changes only the past
    (docs/decisions.md, "The record in effect", issue 8).
    """

    consent: ConsentState | None
    consent_versions: list[int]  # versions of this device's consent records, oldest first
    # A class default, so snapshots taken before it existed read None (see below).
    consent_record: int | None = None

    @property
    def consent_record_in_effect(self) -> int | None:
        """The version of the consent record that decides the present, if any."""
        if self.consent_record is None and self.consent_versions:
            # A snapshot from before the field: then every consent record set the present.
            return self.consent_versions[-1]
        return self.consent_record

    def record_correction(
        self, version: int, corrects_version: int, text_version: str | None
    ) -> None:
        """R-CON-4: keep the correction; it replaces the record it names only if in effect."""
        in_effect = self.consent_record_in_effect
        self.consent_versions.append(version)
        if corrects_version == in_effect:
            self.consent = (
                None if text_version is None else ConsentState(text_version, "correction")
            )
            self.consent_record = version
