"""The relay's hot path builds the same records as the plain definitions it replaces."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import date
from typing import Any

import pytest
from eventsourcing.persistence import Notification
from hypothesis import given
from hypothesis import strategies as st
from kafka.partitioner import DefaultPartitioner
from kafka.partitioner.default import murmur2 as kafka_murmur2
from kafka.record.default_records import DefaultRecordBatchBuilder
from pydantic import TypeAdapter

from domain import Device
from domain.base import FleetAggregate
from domain.service_level import ServiceLevel
from infra.kafka.clients import RECORD_OVERHEAD_BOUND
from infra.kafka.envelope import (
    ENVELOPE_FIELDS,
    EVENT_ID_NAMESPACE,
    Envelope,
    _record,
    aggregate_of,
    envelope_record,
    event_id,
    event_type,
    shape_of,
    stored_record,
)
from infra.kafka.partitioning import KeyPartitioner, murmur2
from infra.kafka.shards import shard_of
from tests.scenarios import CUSTOMER, OPS, SCENARIOS, Scenario, in_memory_fleet, servers
from tests.unit.test_upcasting import stored_v1_events


def expected_envelope(event: FleetAggregate.Event, position: int) -> Envelope:
    """The envelope as docs/events defines it, built field by field through the model;
    fields the event keeps internal (a cPIN's verifier) are never published."""
    cls = type(event)
    payload = {
        f.name: getattr(event, f.name)
        for f in dataclasses.fields(event)
        if f.name not in ENVELOPE_FIELDS and f.name not in cls.internal_fields
    }
    return Envelope(
        event_id=uuid.uuid5(
            EVENT_ID_NAMESPACE, f"{event.originator_id}:{event.originator_version}"
        ),
        type=event_type(cls),
        schema_version=getattr(cls, "class_version", 1),
        aggregate_type=aggregate_of(cls).__name__,
        aggregate_id=event.originator_id,
        aggregate_version=event.originator_version,
        position=position,
        time=event.timestamp,
        principal=event.principal,
        correlation_id=event.correlation_id,
        payload=TypeAdapter(dict[str, Any]).dump_python(payload, mode="json"),
    )


def stored_events(scenario: Scenario) -> list[tuple[Notification, FleetAggregate.Event]]:
    """The scenario's stored events, each beside its domain event."""
    fleet = in_memory_fleet()
    scenario(fleet)
    found = []
    for notification in fleet.recorder.select_notifications(1, 100_000):
        event = fleet.mapper.to_domain_event(notification)
        assert isinstance(event, FleetAggregate.Event)
        found.append((notification, event))
    assert found
    return found


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_each_record_holds_the_envelope_in_its_value_and_its_fields_as_headers(
    scenario: Scenario,
) -> None:
    """Value = the Envelope model's JSON; headers = every field but the payload, in order."""
    for notification, event in stored_events(scenario):
        key, value, headers = envelope_record(event, notification.id)
        wrapped = expected_envelope(event, notification.id)
        assert Envelope.model_validate_json(value) == wrapped
        assert key == str(event.originator_id).encode()
        fields = wrapped.model_dump(mode="json", exclude={"payload", "parked"})
        fields["time"] = event.timestamp.isoformat()
        assert headers == [(name, str(v).encode()) for name, v in fields.items()]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_records_read_straight_from_stored_state_equal_the_mapped_ones(
    scenario: Scenario,
) -> None:
    """The hot path from stored JSON gives the same bytes, or declines and the mapper reads it."""
    read_straight = 0
    for n, event in stored_events(scenario):
        record = stored_record(n.topic, str(n.originator_id), n.originator_version, n.state, n.id)
        if record is not None:
            assert record == envelope_record(event, n.id)
            read_straight += 1
    assert read_straight > 0


def test_only_the_mapper_reads_events_that_need_upcasting_or_custom_decoding() -> None:
    """A v1 ConsentGranted (upcast to v2) and a dated service level are declined."""
    fleet = in_memory_fleet()
    fleet.recorder.insert_events(stored_v1_events())
    fleet.register_devices(CUSTOMER, "C1", servers("S1"))
    fleet.add_service_level(
        OPS, "S1", ServiceLevel("care_pack", "Care Pack", date(2026, 1, 1), date(2027, 1, 1))
    )
    declined = {
        n.topic.rpartition(".")[2]
        for n in fleet.recorder.select_notifications(1, 1_000)
        if stored_record(n.topic, str(n.originator_id), n.originator_version, n.state, n.id) is None
    }
    assert {"ConsentGranted", "ServiceLevelAdded"} <= declined


@given(st.uuids(), st.integers(min_value=1, max_value=2**40))
def test_event_ids_are_the_uuid5_of_aggregate_id_and_version(
    aggregate_id: uuid.UUID, version: int
) -> None:
    """The quicker event_id equals the uuid5 the contract in docs/events/README.md names."""
    expected = uuid.uuid5(EVENT_ID_NAMESPACE, f"{aggregate_id}:{version}")
    assert event_id(str(aggregate_id), version) == str(expected)


@given(st.binary(max_size=80))
def test_murmur2_is_kafkas(data: bytes) -> None:
    """Same hash as Kafka's (Java's, via kafka-python) for every length and byte."""
    assert murmur2(data) == kafka_murmur2(data)


class Cluster:
    """The three calls a partitioner makes of kafka-python's ClusterMetadata."""

    def __init__(self, topic: str, partitions: int) -> None:
        self._partitions = {topic: set(range(partitions))}

    def topics(self) -> set[str]:
        return set(self._partitions)

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        found = self._partitions.get(topic)
        return None if found is None else set(found)

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return self._partitions.get(topic, set())


def cluster_with(topic: str, partitions: int) -> Cluster:
    """Client metadata that knows `topic` with `partitions` partitions."""
    return Cluster(topic, partitions)


@given(st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=30))
def test_key_partitioner_picks_the_default_partitioners_partition(keys: list[bytes]) -> None:
    """Every Kafka client agrees where a key lives, also when a key comes back (cached)."""
    cluster = cluster_with("t", 6)
    ours, default = KeyPartitioner(), DefaultPartitioner()
    for key in keys + keys:
        assert ours.partition("t", key, key, b"v", b"v", cluster) == default.partition(
            "t", key, key, b"v", b"v", cluster
        )


def test_key_partitioner_follows_a_grown_topic() -> None:
    """After partitions are added, keys are placed over the new count, as the default does."""
    ours, default = KeyPartitioner(), DefaultPartitioner()
    keys = [str(uuid.uuid4()).encode() for _ in range(50)]
    for partitions in (3, 12):
        cluster = cluster_with("t", partitions)
        chosen = [ours.partition("t", k, k, None, None, cluster) for k in keys]
        assert chosen == [default.partition("t", k, k, None, None, cluster) for k in keys]
        assert max(chosen) < partitions
    assert max(chosen) >= 3  # the bigger count was used


def test_key_partitioner_refuses_an_unknown_topic_as_the_default_does() -> None:
    """No metadata for the topic: the default's own error, not a wrong partition."""
    with pytest.raises(ValueError, match="not found"):
        KeyPartitioner().partition("nope", b"k", b"k", None, None, cluster_with("t", 2))


def test_shards_split_aggregates_evenly_and_stably() -> None:
    """Each aggregate has one shard; 3 shards get about a third of 3,000 ids each."""
    ids = [str(uuid.uuid5(EVENT_ID_NAMESPACE, str(i))) for i in range(3_000)]
    counts = [0, 0, 0]
    for aggregate_id in ids:
        assert shard_of(aggregate_id, 3) == shard_of(aggregate_id, 3)
        counts[shard_of(aggregate_id, 3)] += 1
    assert all(800 < c < 1_200 for c in counts)
    assert {shard_of(i, 1) for i in ids} == {0}


TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=300)


@given(
    principal=TEXT,
    correlation_id=TEXT,
    payload=st.dictionaries(TEXT, TEXT, max_size=5),
    version=st.integers(1, 2**31),
    position=st.integers(1, 2**62),
)
def test_issue_11_a_relay_record_is_never_larger_than_the_bound_its_fast_send_assumes(
    principal: str, correlation_id: str, payload: dict[str, str], version: int, position: int
) -> None:
    """RelayProducer.send_enveloped skips kafka-python's exact size check when twice the value
    plus the key plus RECORD_OVERHEAD_BOUND fits max_request_size: the headers repeat the
    envelope's fields, so this bound must hold for any principal, correlation id or payload."""
    shape = shape_of(Device.ConsentGranted)
    key, value, headers = _record(
        shape,
        str(uuid.uuid4()),
        version,
        position,
        "2026-11-30T03:00:00.123456+00:00",
        principal,
        correlation_id,
        payload,
    )
    exact = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers)
    assert exact <= 2 * len(value) + len(key) + RECORD_OVERHEAD_BOUND
