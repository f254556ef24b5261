"""e2Open and alert intake over HTTP (R-HLD-1, R-ALR-1): batches in, their outcome out.

A message is any JSON value: one that is not a valid report or alert is kept as rejected
with its reason (R-HLD-1: never dropped silently), so the batch itself stays valid.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from domain.feed_bounds import MAX_BATCH_MESSAGES
from handlers.intake import IntakeOutcome
from infra.http.schemas.partners import RequestModel

BatchId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=256,
        description="The sender's batch id: the idempotency key of the batch's content",
        examples=["e2open-2026-10-01-0001"],
    ),
]


class E2OpenBatchIn(RequestModel):
    """A batch of e2Open reports of resold PCs (R-HLD-1), as the Kafka feed carries them."""

    batch_id: BatchId
    reports: list[Any] = Field(
        min_length=1,
        max_length=MAX_BATCH_MESSAGES,
        description="Reports: {serial, model, reseller_location_id, distributor, ship_date, "
        "end_customer?, care_plan?}",
    )


class AlertBatchIn(RequestModel):
    """A batch of device alerts (R-ALR-1), as the Kafka feed carries them."""

    batch_id: BatchId
    alerts: list[Any] = Field(
        min_length=1,
        max_length=MAX_BATCH_MESSAGES,
        description="Alerts: {serial, alert_id, severity: critical|warning|info, message}",
    )


class Rejected(BaseModel):
    """A message kept as rejected: its index in the batch, its serial if it had one, why."""

    index: int
    serial: str | None
    reason: str


class BatchOutcome(BaseModel):
    """What became of a batch (R-HLD-1).

    `outcome`: `received` the first time; `redelivered` for the same content again (the
    first answer, nothing new recorded); `refused` for other content under a batch id used
    before (every message rejected with that reason, kept; nothing of it taken).
    """

    batch_id: str
    outcome: Literal["received", "redelivered", "refused"]
    accepted: list[str] = Field(description="Serials (e2Open) or alert ids (alerts) taken")
    rejected: list[Rejected]
    duplicates: list[str] = Field(description="Taken before under another batch: nothing new")

    @classmethod
    def of(cls, outcome: IntakeOutcome) -> BatchOutcome:
        """The answer about an intake command's outcome."""
        kind: Literal["received", "redelivered", "refused"] = (
            "refused" if outcome.refused else "redelivered" if outcome.redelivered else "received"
        )
        return cls(
            batch_id=outcome.batch_id,
            outcome=kind,
            accepted=list(outcome.accepted),
            rejected=[Rejected.model_validate(r.model_dump()) for r in outcome.rejected],
            duplicates=list(outcome.duplicates),
        )


class RejectedReport(BaseModel):
    """An e2Open report kept as rejected, with its reason (R-HLD-1).

    `fingerprint` is "" for a batch's first delivery, else the refused delivery's content
    fingerprint.
    """

    batch_id: str
    index: int
    serial: str | None
    reason: str
    received_at: str
    fingerprint: str
