"""Kafka in: the e2Open reports feed and the device-alerts feed, consumed in batches.

Each poll's records of one partition become one intake command (one transaction), with
a batch id made of topic, partition, offsets and a short fingerprint of the records' bytes,
so a redelivered poll is recognised and new content at old offsets (a recreated topic
starts again at 0) is not mistaken for it. Each record is read within the feed bounds
(domain/feed_bounds.py): one that is too large, too deep or not JSON is rejected with its
reason and never stops the records behind it. Malformed and rejected messages are
recorded with their reason (in the batch's event) and copied to the feed's dead-letter
topic. Offsets are committed only after the batch is stored and the dead letters
acknowledged: nothing accepted is ever lost.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import structlog
from domain.feed_bounds import POLL_RECORDS, read_message
from domain.idempotency import PREFIX, bytes_fingerprint
from domain.intake import Rejection
from handlers import PartnerFleet
from handlers.access import Actor, Role, service_actor
from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError, MessageSizeTooLargeError
from kafka.structs import OffsetAndMetadata, TopicPartition

from infra.kafka.envelope import Record
from infra.kafka.parking import Send, compressed

log = structlog.get_logger("partnerfleet.consumers")


class Outcome(Protocol):
    """What an intake command reports back."""

    rejected: list[Rejection]
    refused: bool


class Intake(Protocol):
    """An intake command: a batch of read messages with the fingerprint of their bytes."""

    def __call__(
        self, actor: Actor, batch_id: str, messages: Sequence[object], /, *, fingerprint: str
    ) -> Outcome:
        """Take the batch; see receive_e2open_batch."""
        ...


# Hex digits of the fingerprint in a batch id: enough to tell a recreated topic's new
# records from a redelivery; the full fingerprint is compared as well.
BATCH_ID_DIGITS = 16


@dataclass(frozen=True)
class Feed:
    """An inbound topic, its dead-letter topic and the command that takes its messages."""

    name: str
    topic: str
    dead_letters: str
    intake: Callable[[PartnerFleet], Intake]


DEFAULT_PREFIX = "partnerfleet"  # Settings.kafka_topic_prefix's default
FEEDS = {  # under the default prefix; `feed_for` puts a feed under another
    "e2open": Feed(
        "e2open",
        f"{DEFAULT_PREFIX}.e2open.reports.v1",
        f"{DEFAULT_PREFIX}.e2open.reports.dlq.v1",
        lambda f: f.receive_e2open_batch,
    ),
    "alerts": Feed(
        "alerts",
        f"{DEFAULT_PREFIX}.device-alerts.v1",
        f"{DEFAULT_PREFIX}.device-alerts.dlq.v1",
        lambda f: f.receive_alert_batch,
    ),
}


def feed_for(name: str, prefix: str = DEFAULT_PREFIX) -> Feed:
    """The feed `name` with its topic and dead-letter topic under KAFKA_TOPIC_PREFIX `prefix`
    (`acme.e2open.reports.v1`), as the relay's topics are. KeyError for an unknown feed."""
    feed = FEEDS[name]
    return replace(
        feed,
        topic=prefix + feed.topic.removeprefix(DEFAULT_PREFIX),
        dead_letters=prefix + feed.dead_letters.removeprefix(DEFAULT_PREFIX),
    )


def consumer_group(name: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The consumer group of a feed under `prefix` (`partnerfleet-e2open` by default): two
    deployments with their own prefixes on one cluster never share a group."""
    return f"{prefix}-{name}"


def consumer_config(bootstrap: str, group: str) -> dict[str, Any]:
    """A consumer group member that commits offsets itself, after the batch is stored."""
    return {
        "bootstrap_servers": bootstrap,
        "group_id": group,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": 6_000,
        "heartbeat_interval_ms": 1_000,
        "max_poll_records": POLL_RECORDS,
    }


def batch_id_of(partition: TopicPartition, records: Sequence[Any], fingerprint: str) -> str:
    """`topic/partition/first-last#fingerprint-prefix`: offsets alone repeat on a new topic."""
    digits = fingerprint.removeprefix(PREFIX)[:BATCH_ID_DIGITS]
    first, last = records[0].offset, records[-1].offset
    return f"{partition.topic}/{partition.partition}/{first}-{last}#{digits}"


class FeedConsumer:
    """Consumes one feed: poll, one command per partition batch, dead letters, commit."""

    def __init__(
        self, fleet: PartnerFleet, feed: Feed, consumer: KafkaConsumer, producer: KafkaProducer
    ) -> None:
        self.fleet, self.feed, self.consumer, self.producer = fleet, feed, consumer, producer
        self._intake = feed.intake(fleet)

    def poll_once(self, timeout_ms: int = 1_000) -> int:
        """Take one poll's records through the intake; returns how many were handled.

        If a batch cannot be stored or committed (the database or the broker went away),
        the partitions not yet done are rewound to their first polled offset before the
        error is raised, so the next poll fetches them again instead of skipping them.
        """
        polled = self.consumer.poll(timeout_ms=timeout_ms)
        pending = dict(polled)
        try:
            for partition, records in polled.items():
                self._handle(partition, records)
                del pending[partition]
        except Exception:
            self._rewind(pending)
            raise
        return sum(len(records) for records in polled.values())

    def _rewind(self, pending: dict[TopicPartition, list[Any]]) -> None:
        for partition, records in pending.items():
            # A partition taken away by a rebalance restarts from its committed offset anyway.
            with contextlib.suppress(AssertionError, KafkaError):
                self.consumer.seek(partition, records[0].offset)

    def _handle(self, partition: TopicPartition, records: list[Any]) -> None:
        fingerprint = bytes_fingerprint(r.value for r in records)
        batch_id = batch_id_of(partition, records, fingerprint)
        # The feed's service account, under the batch id as correlation id.
        actor = service_actor(f"feed:{self.feed.name}", Role.FEED, correlation_id=batch_id)
        messages = [read_message(r.value) for r in records]
        outcome = self._intake(actor, batch_id, messages, fingerprint=fingerprint)
        futures = [self._dead_letter(records[r.index], r, batch_id) for r in outcome.rejected]
        self.producer.flush(timeout=30)
        for future in futures:
            future.get(timeout=0)
        self._commit(partition, records[-1].offset + 1)
        log.info(
            "feed_batch",
            feed=self.feed.name,
            batch_id=batch_id,
            records=len(records),
            rejected=len(outcome.rejected),
            refused=outcome.refused,
        )

    def _commit(self, partition: TopicPartition, next_offset: int) -> None:
        self.consumer.commit({partition: OffsetAndMetadata(next_offset, "", -1)})

    def _dead_letter(self, record: Any, rejection: Rejection, batch_id: str) -> Any:
        headers = [
            ("reason", rejection.reason.encode()),
            ("batch_id", batch_id.encode()),
            ("source_topic", record.topic.encode()),
            ("source_partition", str(record.partition).encode()),
            ("source_offset", str(record.offset).encode()),
        ]
        return send_dead_letter(
            self.producer.send, self.feed.dead_letters, (record.key, record.value, headers)
        )

    def close(self) -> None:
        """Leave the group and close the clients."""
        self.consumer.close()
        self.producer.close(timeout=5)


def send_dead_letter(send: Send, topic: str, record: Record) -> Any:
    """Copy a rejected message to its dead-letter topic; gzip-compressed when our headers
    push it over the producer's limit, and without its value (header `value_omitted` with
    its size) when even that is too large: the rejection itself is recorded in the store.
    """
    key, value, headers = record
    with contextlib.suppress(MessageSizeTooLargeError):
        return send(topic, key=key, value=value, headers=headers)
    with contextlib.suppress(MessageSizeTooLargeError):
        smaller = compressed(record)
        return send(topic, key=smaller[0], value=smaller[1], headers=smaller[2])
    size = str(len(value or b"")).encode()
    return send(topic, key=key, value=None, headers=[*headers, ("value_omitted", size)])
