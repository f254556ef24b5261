"""Taking a batch of feed messages: one transaction, every rejection kept, redelivery known.

A batch id is an idempotency key guarding the batch's content (domain/idempotency.py):
the same content again is a redelivery (the first outcome, nothing recorded); other
content under the same id is refused as a whole and kept as rejected with the reason
(R-HLD-1: never dropped silently), and dead-lettered when it came from Kafka.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

from pydantic import ValidationError

from domain.base import Cause
from domain.feed_bounds import screened, values_fingerprint
from domain.idempotency import PREFIX, V2_PREFIX, ContentMismatchError
from domain.intake import InboundBatch, Rejection, Unreadable
from handlers.base import Working


@dataclass
class IntakeOutcome:
    """What became of a batch: accepted, rejected (with reasons), duplicates, or a redelivery.

    `refused`: the batch id was used before with other content; every message is rejected
    with that reason and nothing of it was taken.
    """

    batch_id: str
    accepted: list[str] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)  # taken before: nothing new
    redelivered: bool = False
    refused: bool = False


@dataclass(frozen=True)
class Delivery:
    """A batch as delivered: its id, its messages and the fingerprint of their content."""

    batch_id: str
    messages: Sequence[object]
    fingerprint: str
    # What the batch's screen found per message (e2Open: its plain report or None), when
    # the messages were screened by one (`Screen`); None otherwise.
    forms: Sequence[object] | None = None

    @classmethod
    def of(
        cls,
        batch_class: type[InboundBatch],
        batch_id: str,
        messages: Sequence[object],
        fingerprint: str | None = None,
        screen: Screen | None = None,
    ) -> Delivery:
        """A delivery, checked and fingerprinted (in the intake command's body: again on a
        retry after a conflict, which is rare).

        With a `fingerprint` the messages were read from raw bytes by read_message (already
        bounded, hashed by bytes_fingerprint); without, each is bounded and the whole hashed,
        by `screen` when given (domain/e2open_screen.py), else by feed_bounds.screened.
        """
        batch_class.check_size(len(messages))
        if fingerprint is not None:
            return cls(batch_id, messages, fingerprint)
        if screen is not None:
            kept, computed, forms = screen(messages)
            return cls(batch_id, kept, computed, forms)
        kept, computed = screened(messages)
        return cls(batch_id, kept, computed)

    def fingerprint_for(self, stored: str | None) -> str:
        """The delivery's fingerprint in the version `stored` (the batch id's first
        delivery's) was made in: a batch received from values before session 19 has a
        version-1 fingerprint ("sha256:"), so a delivery screened into version 2 is
        fingerprinted again the old way, only then (redelivery is rare)."""
        if (
            stored is not None
            and stored.startswith(PREFIX)
            and self.fingerprint.startswith(V2_PREFIX)
        ):
            return values_fingerprint(self.messages)
        return self.fingerprint


# A batch's screen: the messages kept, the fingerprint, a form per message.
Screen = Callable[[Sequence[object]], tuple[list[object], str, Sequence[object]]]


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


@contextmanager
def collection_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused for one intake command.

    A batch makes tens of thousands of objects that live until its save (aggregates,
    events, stored records); each full collection meanwhile walks all of them and finds
    nothing to free: measured on a 10,000-report e2Open batch on PostgreSQL, 0.57 s with
    the collector, 0.48 s without. The command is bounded (MAX_BATCH_MESSAGES), so memory
    is too; the collector runs again as soon as the command ends, raised or not.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def take_batch(
    w: Working,
    cause: Cause,
    batch_class: type[InboundBatch],
    delivery: Delivery,
    take: Callable[[object, Any], str],
    forms: Iterable[object] | None = None,
) -> IntakeOutcome:
    """Take each message with its form (`take(raw, form)` returns what it accepted, or
    raises; `forms` one per message, else None each), then record the batch."""
    previous = w.find(batch_class, batch_class.id_for(delivery.batch_id))
    if previous is not None:
        return _again(cause, previous, delivery)
    outcome = IntakeOutcome(delivery.batch_id)
    messages = delivery.messages
    paired = zip(messages, repeat(None, len(messages)) if forms is None else forms, strict=True)
    for index, (raw, form) in enumerate(paired):
        try:
            outcome.accepted.append(take(raw, form))
        except DuplicateError as duplicate:
            outcome.duplicates.append(str(duplicate))
        except RejectedError as rejected:
            outcome.rejected.append(_rejection(index, raw, str(rejected)))
    w.add(
        batch_class.receive(
            cause, delivery.batch_id, outcome.accepted, outcome.rejected, delivery.fingerprint
        )
    )
    return outcome


def _again(cause: Cause, previous: InboundBatch, delivery: Delivery) -> IntakeOutcome:
    """A batch id seen before: the first outcome for its content, else a refusal kept."""
    fingerprint = delivery.fingerprint_for(previous.fingerprint)
    try:
        previous.is_redelivery(fingerprint, delivery.messages)
    except ContentMismatchError as mismatch:
        rejected = [_rejection(i, m, str(mismatch)) for i, m in enumerate(delivery.messages)]
        previous.refuse_delivery(cause, fingerprint, rejected)
        return IntakeOutcome(delivery.batch_id, rejected=rejected, refused=True)
    first = [Rejection.model_validate(r) for r in previous.rejected]
    return IntakeOutcome(delivery.batch_id, list(previous.accepted), first, redelivered=True)


def _rejection(index: int, raw: object, reason: str) -> Rejection:
    """A rejection keeping the message's serial when it is text or a number."""
    if isinstance(raw, Unreadable):
        return Rejection(index=index, serial=raw.serial, reason=reason)
    serial = raw.get("serial") if isinstance(raw, Mapping) else None
    # Only text and modest numbers: str() of a deep value could exhaust the stack, and of
    # an int of more than 4,300 digits raises.
    number = isinstance(serial, int | float) and abs(serial) < 1e64
    text = str(serial) if isinstance(serial, str) or number else None
    return Rejection(index=index, serial=text, reason=reason)
