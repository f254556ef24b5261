"""Fakes at the edge of the world for the feed consumers: a partition's records, a DLQ.

Only the broker is faked; the FeedConsumer, the intake commands and the store are real.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kafka.structs import OffsetAndMetadata, TopicPartition

from infra.kafka.feeds import FEEDS, FeedConsumer
from tests.scenarios import in_memory_fleet


@dataclass(frozen=True)
class Record:
    """A consumed record: what FeedConsumer reads of kafka-python's ConsumerRecord."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass
class Sent:
    """A record sent to a dead-letter topic, and its acknowledgement."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]

    def get(self, timeout: float = 0) -> Sent:
        """The acknowledgement: always given."""
        return self


@dataclass
class FakeTopic:
    """One partition of a topic: records handed out once per poll, and the commits."""

    name: str
    records: list[Record] = field(default_factory=list)
    committed: int = 0
    polled: int = 0

    def append(self, *values: bytes | None) -> None:
        """Produce these values at the next offsets."""
        start = len(self.records)
        self.records += [
            Record(self.name, 0, start + i, b"k", value) for i, value in enumerate(values)
        ]

    def recreate(self) -> None:
        """Delete and create the topic again: offsets start at 0, the group's position too."""
        self.records, self.committed, self.polled = [], 0, 0

    def poll(self, timeout_ms: int = 0) -> dict[TopicPartition, list[Record]]:
        """The records after the last poll (the consumer's fetch position)."""
        batch, self.polled = self.records[self.polled :], len(self.records)
        return {TopicPartition(self.name, 0): batch} if batch else {}

    def seek(self, partition: TopicPartition, offset: int) -> None:
        """Poll again from `offset` (a batch that could not be stored is fetched again)."""
        self.polled = offset

    def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        """Remember the committed offset of the one partition."""
        [(_, position)] = offsets.items()
        self.committed = position.offset

    def close(self) -> None:
        """Nothing to close."""


@dataclass
class FakeProducer:
    """Keeps what is sent, per topic."""

    sent: list[Sent] = field(default_factory=list)

    def send(self, topic: str, **record: Any) -> Sent:
        """Keep the record; it is acknowledged at once."""
        self.sent.append(Sent(topic, record["key"], record["value"], record["headers"]))
        return self.sent[-1]

    def flush(self, timeout: float = 0) -> None:
        """Everything is sent already."""

    def close(self, timeout: float = 0) -> None:
        """Nothing to close."""

    def reasons(self) -> list[str]:
        """The reason header of every dead letter, in order."""
        return [dict(s.headers)["reason"].decode() for s in self.sent]


def feed_consumer(feed: str, topic: FakeTopic, producer: FakeProducer) -> FeedConsumer:
    """A real FeedConsumer of `feed` on a fresh in-memory fleet, fed by the fakes."""
    return FeedConsumer(in_memory_fleet(), FEEDS[feed], topic, producer)
