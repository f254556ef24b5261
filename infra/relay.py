"""The Kafka relay: follows the event store and publishes every domain event, at least once.

It reads a batch of notifications after its recorded position, sends one envelope per
event (topic per aggregate type, key = aggregate id), waits until the broker has
acknowledged every one (`acks=all`, idempotent producer), and only then records the new
position. A crash between sending and recording means a resend, never a gap. While the
broker is away, commands go on; the relay retries with growing pauses and logs its lag.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

import structlog
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from domain.base import FleetAggregate
from handlers import PartnerFleet
from infra.envelope import AGGREGATES, aggregate_of, envelope_record, topic_for
from infra.partitioning import KeyPartitioner
from infra.view_runner import TRACKING_DDL, read_position, start_tracking, write_position
from infra.viewdb import ViewDB

log = structlog.get_logger("partnerfleet.relay")

RELAY_NAME = "relay:kafka"
MAX_BACK_OFF_SECONDS = 30.0


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


def domain_topics(prefix: str = "partnerfleet") -> list[str]:
    """The topic of every aggregate type."""
    return [topic_for(aggregate, prefix) for aggregate in AGGREGATES]


class Relay:
    """Publishes the event store to Kafka; its position lives beside the read models."""

    def __init__(
        self,
        fleet: PartnerFleet,
        positions: ViewDB,
        bootstrap: str,
        *,
        batch_size: int = 5_000,
        prefix: str = "partnerfleet",
        producer_factory: Callable[[], KafkaProducer] | None = None,
    ) -> None:
        self.fleet, self.positions, self.bootstrap = fleet, positions, bootstrap
        self.batch_size, self.prefix = batch_size, prefix
        self._make_producer = producer_factory or (
            lambda: KafkaProducer(**producer_config(bootstrap))
        )
        self._producer: KafkaProducer | None = None
        self._topics: dict[type[Any], str] = {}
        self._stop = threading.Event()
        with positions.transaction() as tx:
            tx.execute(TRACKING_DDL)
            start_tracking(tx, RELAY_NAME)

    def position(self) -> int:
        """The last notification id the broker acknowledged."""
        with self.positions.transaction() as tx:
            return read_position(tx, RELAY_NAME)

    def lag(self) -> int:
        """Events stored but not yet acknowledged by the broker."""
        return (self.fleet.recorder.max_notification_id() or 0) - self.position()

    def relay_once(self) -> int:
        """Publish one batch; returns how many events the broker acknowledged."""
        start = self.position()
        notifications = self.fleet.recorder.select_notifications(
            start=start + 1, limit=self.batch_size
        )
        if not notifications:
            return 0
        producer = self._producer or self._connect()
        futures = [
            self._send(producer, n.id, self.fleet.mapper.to_domain_event(n)) for n in notifications
        ]
        producer.flush(timeout=30)
        for future in futures:
            future.get(timeout=0)  # raises if the broker refused or did not answer
        self._record(notifications[-1].id)
        return len(notifications)

    def _record(self, position: int) -> None:
        with self.positions.transaction() as tx:
            write_position(tx, RELAY_NAME, position)

    def _connect(self) -> KafkaProducer:
        ensure_topics(self.bootstrap, domain_topics(self.prefix))
        self._producer = self._make_producer()
        return self._producer

    def _send(self, producer: KafkaProducer, position: int, event: Any) -> Any:
        assert isinstance(event, FleetAggregate.Event)
        key, value, headers = envelope_record(event, position)
        topic = self._topics.get(type(event))
        if topic is None:
            topic = self._topics[type(event)] = topic_for(aggregate_of(type(event)), self.prefix)
        return producer.send(topic, key=key, value=value, headers=headers)

    def run(self, poll_seconds: float = 0.2) -> None:
        """Relay until `stop()`: back off while the broker is unreachable, log the lag."""
        pause = poll_seconds
        while not self._stop.is_set():
            try:
                sent = self.relay_once()
                pause = poll_seconds
            except KafkaError as error:
                self._drop_producer()
                pause = min(max(pause * 2, 0.5), MAX_BACK_OFF_SECONDS)
                log.warning(
                    "relay_broker_unavailable",
                    error=repr(error),
                    lag=self.lag(),
                    retry_in_seconds=pause,
                )
                sent = 0
            if not sent:
                self._stop.wait(pause)

    def stop(self) -> None:
        """Ask `run()` to return and close the producer."""
        self._stop.set()
        self._drop_producer()

    def _drop_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            producer.close(timeout=1)
