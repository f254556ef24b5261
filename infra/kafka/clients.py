"""Kafka clients and topics: the producer's configuration, topic creation, the destination.

Shared by the relay (infra/kafka/relay.py) and the feed consumers' dead-letter producer.
"""

from __future__ import annotations

import contextlib
import weakref
from typing import Any

from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError
from kafka.structs import TopicPartition

from infra.kafka.batches import RecordAppender, materialize_futures
from infra.kafka.envelope import AGGREGATES, topic_for
from infra.kafka.partitioning import KeyPartitioner
from infra.kafka.shards import Destination

MAX_MESSAGE_BYTES = 1_000_000  # below Kafka's default message.max.bytes (1,048,588)


def producer_config(bootstrap: str, max_message_bytes: int = MAX_MESSAGE_BYTES) -> dict[str, Any]:
    """An idempotent producer that waits for all in-sync replicas.

    `max_request_size` is set, not left to the client's default: a record above it is refused
    by `send()` at once, before the broker could refuse it (brokers' limits differ).
    """
    return {
        "bootstrap_servers": bootstrap,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 100,  # the relay flushes each batch itself; waiting fills batches
        "batch_size": 256 * 1024,
        "compression_type": None,
        "max_request_size": max_message_bytes,
        "max_block_ms": 5_000,
        "request_timeout_ms": 10_000,
        "delivery_timeout_ms": 30_000,
        "max_in_flight_requests_per_connection": 5,
        "partitioner": KeyPartitioner(),  # the default's partitions, with less work per record
    }


# A relay record's headers are its envelope's fields, so their values add up to at most the
# value's length; this covers the header names (about 100 bytes), the length varints of 11
# headers and the record and batch overheads (82 bytes) with room to spare.
RECORD_OVERHEAD_BOUND = 1_024


class RelayProducer(KafkaProducer):  # type: ignore[misc]  # kafka-python is untyped
    """The relay's producer: KafkaProducer with `send_enveloped`, a leaner `send` for the
    envelopes the relay built itself (issue 11).

    kafka-python's `send` checks the types of every header, runs the serializers, formats
    a debug line and measures each record's exact size before appending it; for the relay's
    own records (bytes key and value, 11 (str, bytes) headers, no explicit partition) that
    was about a quarter of the relay's time (docs/decisions.md, "The relay's producer
    path"). `send_enveloped` appends to the same accumulator, under
    the same partitioner, with the same wakeups; it falls back to `send` whenever it cannot
    prove the record fits `max_request_size` cheaply, while the topic's metadata is not
    known yet, and for a transactional producer, so every error `send` raises is still
    raised the same way. Pinned to kafka-python 3.0.12: it uses the producer's accumulator,
    metadata and sender (tests/integration/test_relay_producer.py compares what both paths
    put on the wire).
    """

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        self._fits = int(self.config["max_request_size"]) - RECORD_OVERHEAD_BOUND
        self._partitioner = self.config["partitioner"]
        self._for_key = getattr(self._partitioner, "for_key", None)  # KeyPartitioner's
        self._plain = not self.config.get("transactional_id")
        # batches kafka-python split (MESSAGE_TOO_LARGE) → each record's future (BatchTicket)
        self.split_futures: weakref.WeakKeyDictionary[Any, list[Any]] = weakref.WeakKeyDictionary()
        accumulator = self._accumulator
        split = accumulator.split_and_reenqueue

        def split_and_reenqueue(batch: Any, now: Any = None) -> Any:
            self.split_futures[batch] = materialize_futures(batch)  # before they are rebound
            return split(batch, now=now)

        accumulator.split_and_reenqueue = split_and_reenqueue

    def appender(self) -> RecordAppender | None:
        """A RecordAppender for one relay batch (infra/kafka/batches.py), or None when each
        record must go through `send_enveloped` (a transactional or closed producer, a
        partitioner without `for_key`, a broker older than the v2 record format)."""
        v2 = self._accumulator.config["message_version"] >= 2  # the format batches.py writes
        if not self._plain or self._closed or self._for_key is None or not v2:
            return None
        return RecordAppender(self, self.send_enveloped, self._fits)

    def send_enveloped(
        self, topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]
    ) -> Any:
        """`send(topic, key=key, value=value, headers=headers)` for a relay envelope:
        the same FutureRecordMetadata, partition and errors, with less work per record."""
        metadata = self._metadata
        partitions = metadata.partitions_for_topic(topic)
        if (
            not partitions
            or self._closed
            or 2 * len(value) + len(key) > self._fits
            or not self._plain
        ):
            return self.send(topic, key=key, value=value, headers=headers)
        if self._for_key is not None:
            partition = self._for_key(topic, partitions, key)
        else:
            partition = self._partitioner.partition(topic, key, key, value, value, metadata)
        future, full, created, _ = self._accumulator.append(
            TopicPartition(topic, partition), None, key, value, headers
        )
        if full or created:
            self._sender.wakeup()
        return future


def ensure_topics(bootstrap: str, topics: list[str], partitions: int = 6) -> None:
    """Create the topics that do not exist yet."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        for topic in topics:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics([NewTopic(topic, partitions, replication_factor=1)])
    finally:
        admin.close()


NO_TOPIC_ID = "00000000-0000-0000-0000-000000000000"  # what brokers without topic ids send


def find_destination(bootstrap: str, prefix: str) -> Destination:
    """The destination behind `bootstrap`: the cluster id its brokers report, `prefix`, and
    the topic id of the prefix's first topic (made here if it does not exist yet).

    The cluster id, not the bootstrap text: another address of the same cluster is the same
    destination. The topic id, because cluster ids repeat (every Tansu broker is
    `tansu_cluster`; a wiped cluster can keep its id): topics made anew, which hold none of
    the history, are a new destination. A broker that reports no cluster id is named by its
    sorted bootstrap addresses. Raises KafkaError while the brokers cannot be reached.
    """
    anchor = domain_topics(prefix)[0]
    ensure_topics(bootstrap, [anchor])
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        cluster = admin.describe_cluster().get("cluster_id")
        [described] = admin.describe_topics([anchor])
    finally:
        admin.close()
    topic_id = str(described.get("topic_id") or "")
    return Destination(
        cluster or "bootstrap-" + ",".join(sorted(bootstrap.split(","))),
        prefix,
        "" if topic_id in ("", NO_TOPIC_ID) else topic_id,
    )


def connect_producer(
    bootstrap: str, prefix: str, max_message_bytes: int = MAX_MESSAGE_BYTES
) -> KafkaProducer:
    """The relay's producer, once the topics of every aggregate type exist."""
    ensure_topics(bootstrap, domain_topics(prefix))
    return RelayProducer(**producer_config(bootstrap, max_message_bytes))


def domain_topics(prefix: str = "partnerfleet") -> list[str]:
    """The topic of every aggregate type."""
    return [topic_for(aggregate, prefix) for aggregate in AGGREGATES]
