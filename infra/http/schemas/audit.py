"""Consent audit over HTTP (R-CON-3, R-CON-4): filters, records, answers, corrections."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.iso import IsoAwareDatetime
from projections.consent_queries import ConsentAnswer, Row, Selection

Key = Annotated[str, Field(min_length=1, max_length=256)]
UTC_TEXT = "UTC, ISO 8601 with microseconds (2025-06-01T08:00:00.000000Z)"


class CustomerHistoryFilter(BaseModel):
    """Which of a customer's consent and link records to read; any given narrow them.

    `since` (inclusive) and `until` (exclusive) are instants with an offset; a naive time
    means another instant on each host and is refused (422).
    """

    serial: Key | None = Field(default=None, description="A device's serial number")
    partner: Key | None = Field(
        default=None, description="A partner's Location ID: the records of its link periods"
    )
    since: IsoAwareDatetime | None = Field(default=None, description="Records at or after")
    until: IsoAwareDatetime | None = Field(default=None, description="Records before")

    @model_validator(mode="after")
    def _period_is_ordered(self) -> Self:
        if self.since is not None and self.until is not None and self.until < self.since:
            raise ValueError("until is before since: the period would be empty.")
        return self

    def selection(self) -> Selection:
        """The filter as the history queries take it."""
        return Selection(**self.model_dump())


class HistoryFilter(CustomerHistoryFilter):
    """Which consent and link records an auditor reads: a device, a customer or a partner
    (at least one; any given narrow the others), within a period if given."""

    customer_id: Key | None = Field(default=None, description="A customer id")

    @model_validator(mode="after")
    def _names_what_to_read(self) -> Self:
        if self.serial is None and self.customer_id is None and self.partner is None:
            raise ValueError("Name what to read: serial, customer_id or partner (any of them).")
        return self


Format = Literal["jsonl", "csv"]
After = Annotated[
    int,
    Field(
        ge=0,
        description="Resume a broken download after this store position (the last line's "
        "`position`); 0 from the start",
    ),
]


class ConsentRecord(BaseModel):
    """One consent or link record of a device, with its store position (R-CON-3).

    `kind` "consent": `action` granted, withdrawn or corrected (with `reason` and
    `corrects_version`), `text_version` and `text_digest` naming the consent wording;
    `kind` "link": `action` linked or unlinked, `partner` and `role`.
    """

    model_config = ConfigDict(from_attributes=True)

    position: int = Field(description="Store position: order, paging and `after`")
    device_id: str
    version: int = Field(description="The record's version in its device's history")
    at: str = Field(description=f"When it was recorded, {UTC_TEXT}")
    serial: str
    customer_id: str | None
    kind: Literal["consent", "link"]
    action: Literal["granted", "withdrawn", "corrected", "linked", "unlinked"]
    partner: str | None
    role: str | None
    text_version: str | None
    text_digest: str | None
    scope: str | None
    reason: str | None
    corrects_version: int | None
    principal: str = Field(description="Who caused it (Passport ID or service account)")
    correlation_id: str | None


class PartnerLink(BaseModel):
    """The partner link an answer relied on (R-LNK-4)."""

    role: str
    location_id: str
    since: str = Field(description=f"Linked since, {UTC_TEXT}")


class ConsentInEffect(BaseModel):
    """R-CON-3: whether consent was in effect for a device and a partner at a moment, and why.

    In effect when consent was granted and the partner linked. `deciding_records` are the
    consent record and the link record then in effect; `later_corrections` are corrections
    of those recorded after the moment, listed beside the answer, not rewriting it (R-CON-4).
    """

    serial: str
    partner: str
    at: str = Field(description=f"The moment asked about, {UTC_TEXT}")
    in_effect: bool
    consent_granted: bool
    partner_linked: bool
    link: PartnerLink | None
    deciding_records: list[ConsentRecord]
    later_corrections: list[ConsentRecord]

    @classmethod
    def of(cls, answer: ConsentAnswer) -> ConsentInEffect:
        """The answer of `consent_queries.consent_in_effect`."""
        return cls.model_validate(answer, from_attributes=True)


class ConsentCorrection(BaseModel):
    """A correction of a wrong consent record, with why (R-CON-4): a new record, the old one
    stays. `text_version` names the wording that was in fact agreed to; null: none was."""

    model_config = ConfigDict(extra="forbid")

    corrects_version: int = Field(ge=1, description="The version of the record to correct")
    reason: str = Field(min_length=1, max_length=4_000, pattern=r"\S")
    text_version: str | None = Field(default=None, min_length=1, max_length=64)


class ConsentCorrected(BaseModel):
    """The recorded correction."""

    serial: str
    corrects_version: int
    reason: str
    text_version: str | None


class KeyClaims(BaseModel):
    """The outcome of claiming stored Passport IDs and Location IDs (issue 8, R-PAR-1)."""

    collisions: list[str] = Field(
        description="Two spellings of one key stored before claims existed, each to resolve"
        " by hand; empty when every key was claimed"
    )


class JWKS(BaseModel):
    """A JSON Web Key Set (RFC 7517) of public keys."""

    keys: list[dict[str, Any]]


def record(row: Row) -> ConsentRecord:
    """A history row as its answer."""
    return ConsentRecord.model_validate(row)
