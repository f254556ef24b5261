"""Taking a batch of feed messages: one transaction, every rejection kept, redelivery known."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError

from domain.base import Cause
from domain.intake import InboundBatch, Rejection
from handlers.base import Working


@dataclass
class IntakeOutcome:
    """What became of a batch: accepted, rejected (with reasons), duplicates, or a redelivery."""

    batch_id: str
    accepted: list[str] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)  # taken before: nothing new
    redelivered: bool = False


def malformed(what: str, error: ValidationError) -> RejectedError:
    """The rejection of a message that failed validation, naming each field and problem."""
    # A check of the whole message (its texts, domain.text.feed_texts) has no location.
    parts = [
        ": ".join(filter(None, (".".join(map(str, e["loc"])), e["msg"]))) for e in error.errors()
    ]
    return RejectedError(f"malformed {what}: " + "; ".join(parts))


class DuplicateError(Exception):
    """The message was taken before (a redelivery): not a rejection, nothing to store."""


class RejectedError(Exception):
    """One message cannot be taken; the batch goes on and keeps the reason."""


def take_batch(
    w: Working,
    cause: Cause,
    batch_class: type[InboundBatch],
    batch_id: str,
    messages: Sequence[object],
    take: Callable[[object], str],
) -> IntakeOutcome:
    """Take each message (`take` returns what it accepted, or raises), then record the batch."""
    previous = w.find(batch_class, batch_class.id_for(batch_id))
    if previous is not None:
        rejected = [Rejection.model_validate(r) for r in previous.rejected]
        return IntakeOutcome(batch_id, list(previous.accepted), rejected, redelivered=True)
    outcome = IntakeOutcome(batch_id)
    for index, raw in enumerate(messages):
        try:
            outcome.accepted.append(take(raw))
        except DuplicateError as duplicate:
            outcome.duplicates.append(str(duplicate))
        except RejectedError as rejected:
            serial = raw.get("serial") if isinstance(raw, Mapping) else None
            text = None if serial is None else str(serial)[:64]
            outcome.rejected.append(Rejection(index=index, serial=text, reason=str(rejected)))
    w.add(batch_class.receive(cause, batch_id, outcome.accepted, outcome.rejected))
    return outcome
