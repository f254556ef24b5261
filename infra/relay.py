"""The Kafka relay: follows the event store and publishes every domain event, at least once.

It reads a batch of notifications after its recorded position, sends one envelope per
event (topic per aggregate type, key = aggregate id), and records the batch's last position
only once the broker has acknowledged every record of it (`acks=all`, idempotent producer).
A crash between sending and recording means a resend, never a gap. While the broker is away,
commands go on; the relay retries with growing pauses and logs its lag.

A relay may be one shard of several (`infra/shards.py`): it then publishes the events of the
aggregates its shard owns, from its own position.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from domain.base import FleetAggregate
from handlers import PartnerFleet
from infra.envelope import (
    AGGREGATES,
    Record,
    envelope_record,
    shape_of_topic,
    stored_record,
    topic_for,
)
from infra.event_rows import EventRow, row_reader
from infra.partitioning import KeyPartitioner
from infra.shards import SINGLE, Shard, safe_start
from infra.view_runner import TRACKING_DDL, read_position, write_position
from infra.viewdb import ViewDB

log = structlog.get_logger("partnerfleet.relay")

MAX_BACK_OFF_SECONDS = 30.0
ACK_TIMEOUT_SECONDS = 35.0  # a little over the producer's delivery_timeout_ms


def producer_config(bootstrap: str) -> dict[str, Any]:
    """An idempotent producer that waits for all in-sync replicas."""
    return {
        "bootstrap_servers": bootstrap,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 100,  # the relay flushes each batch itself; waiting fills batches
        "batch_size": 256 * 1024,
        "compression_type": None,
        "max_block_ms": 5_000,
        "request_timeout_ms": 10_000,
        "delivery_timeout_ms": 30_000,
        "max_in_flight_requests_per_connection": 5,
        "partitioner": KeyPartitioner(),  # the default's partitions, with less work per record
    }


def ensure_topics(bootstrap: str, topics: list[str], partitions: int = 6) -> None:
    """Create the topics that do not exist yet."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        for topic in topics:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics([NewTopic(topic, partitions, replication_factor=1)])
    finally:
        admin.close()


def connect_producer(bootstrap: str, prefix: str) -> KafkaProducer:
    """The relay's producer, once the topics of every aggregate type exist."""
    ensure_topics(bootstrap, domain_topics(prefix))
    return KafkaProducer(**producer_config(bootstrap))


def domain_topics(prefix: str = "partnerfleet") -> list[str]:
    """The topic of every aggregate type."""
    return [topic_for(aggregate, prefix) for aggregate in AGGREGATES]


@dataclass
class InFlight:
    """A batch sent but not yet known to be acknowledged."""

    last: int  # notification id of the batch's last stored event
    passed: int  # stored events the batch covers, other shards' included
    futures: list[Any]


class Relay:
    """Publishes the event store (or one shard of it) to Kafka; positions live in pf_tracking."""

    def __init__(
        self,
        fleet: PartnerFleet,
        positions: ViewDB,
        bootstrap: str,
        *,
        batch_size: int = 5_000,
        prefix: str = "partnerfleet",
        producer_factory: Callable[[], KafkaProducer] | None = None,  # creates the topics too
        shard: Shard = SINGLE,
        max_in_flight: int = 2,
    ) -> None:
        self.fleet, self.positions, self.bootstrap = fleet, positions, bootstrap
        self.batch_size, self.prefix, self.shard = batch_size, prefix, shard
        self.max_in_flight = max_in_flight
        self._make_producer = producer_factory or (lambda: connect_producer(bootstrap, prefix))
        self._producer: KafkaProducer | None = None
        self._topics: dict[str, str] = {}  # stored event topic → Kafka topic
        mapper = fleet.mapper
        self._plain_json = mapper.cipher is None and mapper.compressor is None
        self._read = row_reader(fleet.recorder)
        self._stop = threading.Event()
        self.published = 0  # records the broker acknowledged, since this relay was made
        with positions.ddl() as tx:
            tx.execute(TRACKING_DDL)
            if not tx.query("SELECT 1 FROM pf_tracking WHERE view = ?", (shard.tracking_name,)):
                write_position(tx, shard.tracking_name, safe_start(tx))

    def position(self) -> int:
        """The last notification id up to which the broker acknowledged this shard's events."""
        with self.positions.transaction() as tx:
            return read_position(tx, self.shard.tracking_name)

    def lag(self) -> int:
        """Stored events this shard has not yet moved past."""
        return (self.fleet.recorder.max_notification_id() or 0) - self.position()

    def relay_once(self) -> int:
        """Publish one batch and wait for the broker; returns the stored events moved past."""
        batch = self._send_after(self.position())
        if batch is None:
            return 0
        self._require_producer().flush(timeout=ACK_TIMEOUT_SECONDS)
        self._settle(batch)
        return batch.passed

    def catch_up(self, progress: Callable[[int], None] | None = None) -> int:
        """Publish until nothing new is stored; returns the stored events moved past.

        Up to `max_in_flight` batches are sent ahead of the oldest unacknowledged one, so
        reading and encoding go on while the broker acknowledges. Positions are still
        recorded in order, each only after its whole batch was acknowledged; `progress` is
        told the stored events each recorded batch moved past.
        """
        in_flight: deque[InFlight] = deque()
        after, passed = self.position(), 0
        while not self._stop.is_set() and (batch := self._send_after(after)):
            in_flight.append(batch)
            after, passed = batch.last, passed + batch.passed
            while len(in_flight) > self.max_in_flight:
                self._settle(in_flight.popleft(), progress)
        if in_flight:
            self._require_producer().flush(timeout=ACK_TIMEOUT_SECONDS)
            while in_flight:
                self._settle(in_flight.popleft(), progress)
        return passed

    def _send_after(self, position: int) -> InFlight | None:
        rows = self._read(position, self.batch_size)
        if not rows:
            return None
        owns, send = self.shard.owns, self._require_producer().send
        futures = []
        for row in rows:
            if owns(row.aggregate_id):
                key, value, headers = self._record_of(row)
                futures.append(send(self._topic(row.topic), key=key, value=value, headers=headers))
        return InFlight(rows[-1].position, len(rows), futures)

    def _record_of(self, row: EventRow) -> Record:
        if self._plain_json:
            record = stored_record(
                row.topic, row.aggregate_id, row.version, row.state, row.position
            )
            if record is not None:
                return record
        event = self.fleet.mapper.to_domain_event(row.stored_event())
        assert isinstance(event, FleetAggregate.Event)
        return envelope_record(event, row.position)

    def _topic(self, stored_topic: str) -> str:
        """The Kafka topic of a stored event's aggregate type."""
        topic = self._topics.get(stored_topic)
        if topic is None:
            aggregate = shape_of_topic(stored_topic).aggregate
            topic = self._topics[stored_topic] = topic_for(aggregate, self.prefix)
        return topic

    def _settle(self, batch: InFlight, progress: Callable[[int], None] | None = None) -> None:
        for future in batch.futures:
            future.get(timeout=ACK_TIMEOUT_SECONDS)  # raises if the broker refused or was silent
        self._record(batch.last)
        self.published += len(batch.futures)
        if progress is not None:
            progress(batch.passed)

    def _record(self, position: int) -> None:
        with self.positions.transaction() as tx:
            write_position(tx, self.shard.tracking_name, position)

    def _require_producer(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = self._make_producer()
        return self._producer

    def run(self, poll_seconds: float = 0.2) -> None:
        """Relay until `stop()`: back off while the broker is unreachable, log the lag."""
        pause = poll_seconds
        while not self._stop.is_set():
            try:
                passed = self.catch_up()
                pause = poll_seconds
            except KafkaError as error:
                self._drop_producer()
                pause = min(max(pause * 2, 0.5), MAX_BACK_OFF_SECONDS)
                log.warning(
                    "relay_broker_unavailable",
                    error=repr(error),
                    shard=self.shard.tracking_name,
                    lag=self.lag(),
                    retry_in_seconds=pause,
                )
                passed = 0
            if not passed:
                self._stop.wait(pause)

    def stop(self) -> None:
        """Ask `run()` to return and close the producer."""
        self._stop.set()
        self._drop_producer()

    def _drop_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            producer.close(timeout=1)
