"""RelayProducer.send_enveloped puts on the wire what KafkaProducer.send would (issue 11)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

import pytest
from kafka.errors import InvalidRecordError, KafkaError, MessageSizeTooLargeError

from infra.kafka.clients import RelayProducer, ensure_topics, producer_config
from infra.kafka.envelope import Record, stored_record
from infra.storage.event_rows import row_reader
from tests.kafka import Broker, read_topics
from tests.scenarios import SCENARIOS, in_memory_fleet

LINGERING = {"linger_ms": 60_000, "delivery_timeout_ms": 120_000}  # batches stay open


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


def assert_same_on_the_wire(broker: Broker, plain: str, lean: str, count: int) -> None:
    """Both topics hold `count` records, the same per key in the same order."""
    on_plain = read_topics(broker.bootstrap, [plain], count)
    on_lean = read_topics(broker.bootstrap, [lean], count)
    assert len(on_lean) == len(on_plain) == count
    assert by_key(on_lean) == by_key(on_plain)


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
    assert_same_on_the_wire(broker, plain, lean, len(records))


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


def appended(
    producer: RelayProducer, topic: str, records: list[Record]
) -> tuple[list[Any], list[Any]]:
    """The records through one RecordAppender: (futures of the records it sent itself,
    tickets), each record's item its index in `records`."""
    appender = producer.appender()
    assert appender is not None
    futures = [
        future
        for index, (key, value, headers) in enumerate(records)
        if (future := appender.append(topic, key, value, headers, index)) is not None
    ]
    return futures, appender.close()


def test_issue_11_the_appender_puts_the_same_records_on_the_wire_as_send(
    broker: Broker,
) -> None:
    """Whole batches written by RecordAppender: same partition per key, same value and
    headers in the same order as send's; each record is in one ticket or has a future."""
    plain, lean = (f"pf{uuid.uuid4().hex[:8]}.{name}" for name in ("plain", "batch"))
    ensure_topics(broker.bootstrap, [plain, lean])
    records = scenario_records()
    producer = RelayProducer(**producer_config(broker.bootstrap))
    try:
        producer.partitions_for(lean)
        sent = [producer.send(plain, key=k, value=v, headers=h) for k, v, h in records]
        futures, tickets = appended(producer, lean, records)
        producer.flush(timeout=30)
        assert all(future.get(timeout=0) for future in sent + futures)
        assert all(t.failures(5) == [] for t in tickets)
        items = [item for ticket in tickets for _, item in ticket.entries]
        assert len(items) + len(futures) == len(records)
        assert len(set(items)) == len(items)
    finally:
        producer.close(timeout=5)
    assert_same_on_the_wire(broker, plain, lean, len(records))


def test_issue_11_a_split_batch_of_appended_records_is_still_acknowledged_per_record(
    broker: Broker,
) -> None:
    """kafka-python splits a batch the broker found too large by its record futures; a batch
    RecordAppender wrote into gets one per record first, so its ticket follows the parts."""
    topic = f"pf{uuid.uuid4().hex[:8]}.split"
    ensure_topics(broker.bootstrap, [topic], partitions=1)
    records = scenario_records()[:40]
    producer = RelayProducer(**producer_config(broker.bootstrap) | LINGERING)
    try:
        producer.partitions_for(topic)
        futures, [ticket] = appended(producer, topic, records)
        accumulator = producer._accumulator
        with accumulator._tp_lock(ticket.batch.topic_partition):  # as the sender drains it
            batch = accumulator._batches[ticket.batch.topic_partition].popleft()
            batch.records.close()
        assert batch is ticket.batch
        assert batch.record_count == len(records)
        assert accumulator.split_and_reenqueue(batch) == 2  # as on MESSAGE_TOO_LARGE
        accumulator.deallocate(batch)
        producer.flush(timeout=30)
        assert ticket.failures(5) == []
        assert [future.get(timeout=0).offset for future in futures] == [0]
    finally:
        producer.close(timeout=5)
    on_wire = read_topics(broker.bootstrap, [topic], len(records))
    assert [(r.key, r.value, list(r.headers)) for r in on_wire] == [
        (k, v, list(h)) for k, v, h in records
    ]


def test_issue_11_a_ticket_reports_every_record_of_an_aborted_batch(broker: Broker) -> None:
    """A producer forced closed before the broker acknowledged (what `close` does when its
    sender hangs): every appended record's error comes back from its ticket (the relay raises
    it and records no position)."""
    topic = f"pf{uuid.uuid4().hex[:8]}.abort"
    ensure_topics(broker.bootstrap, [topic], partitions=1)
    records = scenario_records()[:10]
    producer = RelayProducer(**producer_config(broker.bootstrap) | LINGERING)
    producer.partitions_for(topic)
    futures, [ticket] = appended(producer, topic, records)
    producer._sender.force_close()  # aborts the open batch
    failures = ticket.failures(5)
    producer.close(timeout=1)
    assert [item for item, _ in failures] == list(range(1, len(records)))
    assert all(isinstance(error, KafkaError) for _, error in failures)
    with pytest.raises(KafkaError):
        futures[0].get(timeout=5)


def test_issue_11_a_ticket_reports_the_record_the_broker_refused_as_send_s_future_would(
    broker: Broker,
) -> None:
    """A produce response refusing one record of a batch (record_errors, as the sender reads
    it): the ticket gives that record the error its FutureRecordMetadata would raise, and
    the batch's other records the sender's error for them (the relay parks the one, resends
    the rest)."""
    topic = f"pf{uuid.uuid4().hex[:8]}.refuse"
    ensure_topics(broker.bootstrap, [topic], partitions=1)
    records = scenario_records()[:8]
    producer = RelayProducer(**producer_config(broker.bootstrap) | LINGERING)
    try:
        producer.partitions_for(topic)
        futures, [ticket] = appended(producer, topic, records)
        accumulator = producer._accumulator
        with accumulator._tp_lock(ticket.batch.topic_partition):  # answered, never sent
            batch = accumulator._batches[ticket.batch.topic_partition].popleft()
            batch.records.close()
        refusal = InvalidRecordError("bad record")
        errors = producer._sender._record_exceptions_fn(refusal, [(3, "bad record")], "bad")
        batch.complete_exceptionally(refusal, errors)
        failures = ticket.failures(5)
        assert [item for item, _ in failures] == list(range(1, len(records)))
        assert [type(e) for i, e in failures if i == 3] == [InvalidRecordError]
        assert all(type(e) is KafkaError for i, e in failures if i != 3)
        with pytest.raises(KafkaError):
            futures[0].get(timeout=0)  # the batch's first record, sent by send_enveloped
    finally:
        producer.close(timeout=1)
