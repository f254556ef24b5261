"""RelayProducer.send_enveloped puts on the wire what KafkaProducer.send would (issue 11)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

import pytest
from kafka.errors import MessageSizeTooLargeError

from infra.kafka.clients import RelayProducer, ensure_topics, producer_config
from infra.kafka.envelope import Record, stored_record
from infra.storage.event_rows import row_reader
from tests.kafka import Broker, read_topics
from tests.scenarios import SCENARIOS, in_memory_fleet


def scenario_records() -> list[Record]:
    """The relay's record of every stored event of every scenario."""
    records: list[Record] = []
    for scenario in SCENARIOS:
        fleet = in_memory_fleet()
        scenario(fleet)
        for row in row_reader(fleet.recorder)(0, 100_000):
            record = stored_record(
                row.topic, row.aggregate_id, row.version, row.state, row.position
            )
            if record is not None:
                records.append(record)
    assert len(records) > 100
    return records


def by_key(records: list[Any]) -> dict[bytes, list[tuple[int, bytes, list[Any]]]]:
    """Per key, in offset order: (partition, value, headers)."""
    found: dict[bytes, list[tuple[int, bytes, list[Any]]]] = defaultdict(list)
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        found[r.key].append((r.partition, r.value, list(r.headers)))
    return found


def test_issue_11_send_enveloped_puts_the_same_records_on_the_wire_as_send(
    broker: Broker,
) -> None:
    """Same partition per key, same value and headers in the same order, every record acked."""
    plain, lean = (f"pf{uuid.uuid4().hex[:8]}.{name}" for name in ("plain", "lean"))
    ensure_topics(broker.bootstrap, [plain, lean])
    records = scenario_records()
    producer = RelayProducer(**producer_config(broker.bootstrap))
    try:
        sent = []
        for key, value, headers in records:
            sent.append(producer.send(plain, key=key, value=value, headers=headers))
            sent.append(producer.send_enveloped(lean, key, value, headers))
        producer.flush(timeout=30)
        assert all(future.get(timeout=0) for future in sent)
    finally:
        producer.close(timeout=5)
    on_plain = read_topics(broker.bootstrap, [plain], len(records))
    on_lean = read_topics(broker.bootstrap, [lean], len(records))
    assert len(on_lean) == len(on_plain) == len(records)
    assert by_key(on_lean) == by_key(on_plain)


def test_issue_11_send_enveloped_refuses_a_record_above_max_request_size_as_send_does(
    broker: Broker,
) -> None:
    """The relay's oversized path (parking.py) depends on this error at send time."""
    topic = f"pf{uuid.uuid4().hex[:8]}.big"
    ensure_topics(broker.bootstrap, [topic])
    producer = RelayProducer(**producer_config(broker.bootstrap, max_message_bytes=10_000))
    key, value, headers = scenario_records()[0]
    try:
        producer.partitions_for(topic)
        with pytest.raises(MessageSizeTooLargeError):
            producer.send(topic, key=key, value=value + b" " * 10_000, headers=headers)
        with pytest.raises(MessageSizeTooLargeError):
            producer.send_enveloped(topic, key, value + b" " * 10_000, headers)
        # just under the limit: the fast path declines, send measures it exactly and sends
        fits = producer.send_enveloped(topic, key, value + b" " * 4_000, headers)
        producer.flush(timeout=30)
        assert fits.get(timeout=0).topic == topic
    finally:
        producer.close(timeout=5)
