"""e2Open intake: resold-PC reports and the batches that carry them (R-HLD-1).

E2OpenBatch is an aggregate of its own because R-HLD-1 keeps rejected reports, which
belong to no partner or device (unknown partner, malformed serial), and because a
redelivered batch must be recognised as already received.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from domain.base import Cause, DomainError, FleetAggregate, natural_id
from domain.device import normalise_serial


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


class IntakeError(DomainError):
    """An e2Open batch was refused as a whole."""


class E2OpenBatch(FleetAggregate):
    """A received batch of e2Open reports: what landed, what was rejected and why."""

    batch_id: str
    accepted: list[str]
    rejected: list[dict[str, object]]

    def __init__(self) -> None:
        """State comes from the Received event."""

    @staticmethod
    def id_for(batch_id: str) -> UUID:
        """The batch id derived from the sender's batch id."""
        return natural_id("e2open-batch", batch_id)

    class Received(FleetAggregate.Created):
        batch_id: str
        accepted: list[str]
        rejected: list[dict[str, object]]

        def apply(self, aggregate: E2OpenBatch) -> None:
            aggregate.batch_id = self.batch_id
            aggregate.accepted = list(self.accepted)
            aggregate.rejected = list(self.rejected)

    @classmethod
    def receive(
        cls, cause: Cause, batch_id: str, accepted: list[str], rejected: list[Rejection]
    ) -> E2OpenBatch:
        """R-HLD-1: record the batch, every accepted serial and every rejection with its reason."""
        if not batch_id.strip():
            raise IntakeError("An e2Open batch needs a batch id.")
        return cls._start(
            cls.Received,
            cause,
            cls.id_for(batch_id),
            batch_id=batch_id,
            accepted=accepted,
            rejected=[r.model_dump() for r in rejected],
        )


class AlertBatch(FleetAggregate):
    """A received batch of device alerts from the alerts feed: what was raised, what rejected."""

    batch_id: str
    accepted: list[str]
    rejected: list[dict[str, object]]

    def __init__(self) -> None:
        """State comes from the Received event."""

    @staticmethod
    def id_for(batch_id: str) -> UUID:
        """The batch id derived from the feed's batch id (topic, partition, offsets)."""
        return natural_id("alert-batch", batch_id)

    class Received(FleetAggregate.Created):
        batch_id: str
        accepted: list[str]
        rejected: list[dict[str, object]]

        def apply(self, aggregate: AlertBatch) -> None:
            aggregate.batch_id = self.batch_id
            aggregate.accepted = list(self.accepted)
            aggregate.rejected = list(self.rejected)

    @classmethod
    def receive(
        cls, cause: Cause, batch_id: str, accepted: list[str], rejected: list[Rejection]
    ) -> AlertBatch:
        """Record the batch: the alert ids raised and every rejected message with its reason."""
        if not batch_id.strip():
            raise IntakeError("An alert batch needs a batch id.")
        return cls._start(
            cls.Received,
            cause,
            cls.id_for(batch_id),
            batch_id=batch_id,
            accepted=accepted,
            rejected=[r.model_dump() for r in rejected],
        )
