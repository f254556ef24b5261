"""e2Open intake: resold-PC reports and the batches that carry them (R-HLD-1).

E2OpenBatch is an aggregate of its own because R-HLD-1 keeps rejected reports, which
belong to no partner or device (unknown partner, malformed serial), and because a
redelivered batch must be recognised as already received.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from domain.base import Cause, DomainError, FleetAggregate, natural_id
from domain.device import normalise_serial
from domain.text import FREE_TEXT, feed_texts, printable


class E2OpenReport(BaseModel):
    """One resold PC as reported through e2Open by a distributor or reseller."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    serial: str = Field(min_length=1, max_length=32)
    model: str = Field(min_length=1, max_length=200)
    reseller_location_id: str = Field(min_length=1, max_length=64)
    distributor: str = Field(min_length=1, max_length=200)
    ship_date: date
    end_customer: str | None = Field(default=None, max_length=200)
    care_plan: Literal["premium", "premium_plus"] = "premium"

    @field_validator("serial")
    @classmethod
    def _serial(cls, value: str) -> str:
        try:
            return normalise_serial(value)
        except DomainError as error:
            raise ValueError(str(error)) from None

    @model_validator(mode="before")
    @classmethod
    def _texts(cls, report: object) -> object:
        return feed_texts(report, ("model", "reseller_location_id", "distributor", "end_customer"))


@dataclass(frozen=True)
class Unreadable:
    """A feed message that could not even be parsed; it is rejected with this reason."""

    reason: str


class Rejection(BaseModel):
    """A report kept as rejected, with its position in the batch and the reason."""

    model_config = ConfigDict(frozen=True)

    index: int
    serial: str | None
    reason: str

    @field_validator("serial", "reason")
    @classmethod
    def _printable(cls, value: str | None, info: ValidationInfo) -> str | None:
        # What a rejected message said is kept, but never a character no view can store.
        limit = 64 if info.field_name == "serial" else FREE_TEXT.max_length
        return None if value is None else printable(value, limit)


class IntakeError(DomainError):
    """An e2Open batch was refused as a whole."""


class InboundBatch(FleetAggregate):
    """A received batch of feed messages: what was accepted, what rejected and why.

    An aggregate of its own because rejected messages belong to no partner or device
    (R-HLD-1 keeps them), and because a redelivered batch must be recognised.
    """

    KIND = "inbound-batch"  # the natural-key kind of the batch ids

    def __init__(self) -> None:
        """State comes from the Received event."""
        self.batch_id: str = ""
        self.accepted: list[str] = []
        self.rejected: list[dict[str, object]] = []

    @classmethod
    def id_for(cls, batch_id: str) -> UUID:
        """The aggregate id derived from the sender's batch id."""
        return natural_id(cls.KIND, batch_id)

    class Received(FleetAggregate.Created):
        batch_id: str
        accepted: list[str]
        rejected: list[dict[str, object]]

        def apply(self, aggregate: InboundBatch) -> None:
            aggregate.batch_id = self.batch_id
            aggregate.accepted = list(self.accepted)
            aggregate.rejected = list(self.rejected)

    @classmethod
    def receive(
        cls, cause: Cause, batch_id: str, accepted: list[str], rejected: list[Rejection]
    ) -> Self:
        """Record the batch, everything accepted and every rejection with its reason."""
        if not batch_id.strip():
            raise IntakeError(f"A batch ({cls.KIND}) needs a batch id.")
        return cls._start(
            cls.Received,
            cause,
            cls.id_for(batch_id),
            batch_id=batch_id,
            accepted=accepted,
            rejected=[r.model_dump() for r in rejected],
        )


class E2OpenBatch(InboundBatch):
    """R-HLD-1: a batch of e2Open reports; accepted are the serials that landed."""

    KIND = "e2open-batch"

    class Received(InboundBatch.Received):
        pass


class AlertBatch(InboundBatch):
    """A batch of the device-alerts feed; accepted are the alert ids raised."""

    KIND = "alert-batch"

    class Received(InboundBatch.Received):
        pass
