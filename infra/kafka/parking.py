"""Events the relay cannot publish as they are: compressed, or parked with their reason.

One stored event must never stop the relay (issue 8, kind 5). An envelope larger than the
producer's `max_request_size` (KAFKA_MAX_MESSAGE_BYTES) goes out gzip-compressed, with the
header `content_encoding: gzip`. If it is still too large, or the broker refuses the record
for good (a size or validity error), or the relay cannot even encode the stored event, the
event is *parked*: a row in pf_relay_parked (destination, position, type, size, reason), an
error log line `relay_event_parked`, and, where the envelope could be made, a notice in its
place on the aggregate's topic: the same key, event id and headers plus `parked`, and the
envelope with `"payload": null` and `"parked": {"reason", "size"}`. The event itself stays
in the store; `partnerfleet relay-parked` lists the parked events. docs/events/README.md is
the consumer's side of this.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import structlog
from kafka.errors import (
    InvalidRecordError,
    InvalidTimestampError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
)
from projections.base import Tx

from infra.kafka.envelope import Record, shape_of_topic
from infra.storage.event_rows import EventRow
from infra.storage.viewdb import ViewDB

log = structlog.get_logger("partnerfleet.relay")

# Errors that say "this record will never be accepted", not "try again later".
PERMANENT_RECORD_ERRORS: tuple[type[Exception], ...] = (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    InvalidRecordError,
    InvalidTimestampError,
)
PARKED_DDL = (
    "CREATE TABLE IF NOT EXISTS pf_relay_parked ("
    " destination TEXT NOT NULL, position INTEGER NOT NULL, aggregate_id TEXT NOT NULL,"
    " aggregate_version INTEGER NOT NULL, type TEXT NOT NULL, size INTEGER NOT NULL,"
    " reason TEXT NOT NULL, PRIMARY KEY (destination, position))"
)
GZIP_LEVEL = 6


@dataclass(frozen=True)
class Parked:
    """A stored event the relay moved past without publishing it, and why."""

    position: int
    aggregate_id: str
    aggregate_version: int
    type: str
    size: int  # bytes of its envelope JSON; 0 when it could not be encoded
    reason: str


Send = Callable[..., Any]  # KafkaProducer.send


class ParkingLot:
    """The parked events of one relay's destination: kept, counted and logged."""

    def __init__(self, positions: ViewDB) -> None:
        self.positions = positions
        self.destination = ""
        self.reasons: dict[int, str] = {}  # position → reason
        self.count = 0  # events parked since the relay was made

    def open(self, tx: Tx, destination: str) -> None:
        """Load what was parked at `destination` before (a resent batch sends notices)."""
        self.destination = destination
        self.reasons = parked_positions(tx, destination)

    def park(self, row: EventRow, record: Record | None, reason: str) -> None:
        """Keep the event's row in pf_relay_parked, count it and log it as an error."""
        try:
            kind = shape_of_topic(row.topic).type
        except Exception:  # an unknown topic is one of the reasons to park
            kind = row.topic
        size = len(record[1]) if record else 0
        parked = Parked(row.position, row.aggregate_id, row.version, kind, size, reason)
        with self.positions.transaction() as tx:
            record_parked(tx, self.destination, parked)
        self.reasons[row.position] = reason
        self.count += 1
        log.error("relay_event_parked", destination=self.destination, **asdict(parked))

    def send_oversized(self, send: Send, row: EventRow, topic: str, record: Record) -> Any:
        """Send a record the producer found too large: compressed, or parked with a notice."""
        smaller = compressed(record)
        try:
            return send(topic, key=smaller[0], value=smaller[1], headers=smaller[2])
        except MessageSizeTooLargeError as error:
            reason = (
                f"its envelope is {len(record[1]):,} bytes ({len(smaller[1]):,} gzip-compressed),"
                f" over the producer's limit (KAFKA_MAX_MESSAGE_BYTES): {error}"
            )
        self.park(row, record, reason)
        return send_notice(send, topic, record, reason)


def send_notice(send: Send, topic: str, record: Record, reason: str) -> Any:
    """Send the notice standing in for a parked event; None if even that is too large."""
    stand_in = notice(record, reason)
    try:
        return send(topic, key=stand_in[0], value=stand_in[1], headers=stand_in[2])
    except MessageSizeTooLargeError:  # even without its payload (a huge principal)
        return None


def compressed(record: Record) -> Record:
    """The record with its value gzip-compressed and a `content_encoding: gzip` header."""
    key, value, headers = record
    return key, gzip.compress(value, GZIP_LEVEL), [*headers, ("content_encoding", b"gzip")]


def notice(record: Record, reason: str) -> Record:
    """What stands in for a parked event on its topic: its envelope without the payload."""
    key, value, headers = record
    envelope = json.loads(value)
    envelope["payload"] = None
    envelope["parked"] = {"reason": reason, "size": len(value)}
    return key, json.dumps(envelope).encode(), [*headers, ("parked", reason.encode())]


def record_parked(tx: Tx, destination: str, parked: Parked) -> None:
    """Keep a parked event's row (once: a resent batch parks it again)."""
    tx.execute(
        "INSERT INTO pf_relay_parked (destination, position, aggregate_id, aggregate_version,"
        " type, size, reason) VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (destination, position) DO NOTHING",
        (
            destination,
            parked.position,
            parked.aggregate_id,
            parked.aggregate_version,
            parked.type,
            parked.size,
            parked.reason,
        ),
    )


def parked_positions(tx: Tx, destination: str) -> dict[int, str]:
    """Positions parked at `destination`, with their reasons."""
    rows = tx.query(
        "SELECT position, reason FROM pf_relay_parked WHERE destination = ?", (destination,)
    )
    return {int(position): str(reason) for position, reason in rows}


def parked_events(tx: Tx) -> dict[str, list[Parked]]:
    """Every parked event, by destination, oldest first."""
    rows = tx.query(
        "SELECT destination, position, aggregate_id, aggregate_version, type, size, reason"
        " FROM pf_relay_parked ORDER BY destination, position"
    )
    found: dict[str, list[Parked]] = {}
    for destination, *fields in rows:
        found.setdefault(str(destination), []).append(Parked(*fields))
    return found
