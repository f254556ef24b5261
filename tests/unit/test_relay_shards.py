"""Relay shards and positions, against a recording stand-in for the Kafka producer.

The broker's side (keys, headers, acks, outages) is proved on Tansu in
tests/integration/test_relay.py; here: who publishes what, and where each shard resumes.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pytest
from kafka.errors import KafkaTimeoutError

from handlers import PartnerFleet
from infra.kafka.envelope import Envelope
from infra.kafka.relay import Relay
from infra.kafka.shards import Destination, Shard, parse_tracking_name, relay_positions, safe_start
from infra.storage.tracking import TRACKING_DDL, write_position
from infra.storage.viewdb import SQLiteViewDB
from tests.scenarios import CUSTOMER, OPS, in_memory_fleet, partner, servers

HERE = Destination("test-cluster", "partnerfleet")


@dataclass
class Sent:
    """One record handed to the producer."""

    topic: str
    key: bytes
    value: bytes


class Acked:
    """A send the broker acknowledged."""

    def get(self, timeout: float | None = None) -> None:
        return None


class Refused:
    """A send the broker never acknowledged."""

    def get(self, timeout: float | None = None) -> None:
        raise KafkaTimeoutError("no acknowledgement")


@dataclass
class RecordingProducer:
    """Keeps every record; refuses those sent while `down` is set."""

    sent: list[Sent] = field(default_factory=list)
    down: bool = False

    def send(self, topic: str, *, key: bytes, value: bytes, headers: Any) -> Acked | Refused:
        if self.down:
            return Refused()
        self.sent.append(Sent(topic, key, value))
        return Acked()

    def flush(self, timeout: float | None = None) -> None:
        return None

    def close(self, timeout: float | None = None) -> None:
        return None


def history(devices: int = 12) -> PartnerFleet:
    """A partner and `devices` devices, each linked, alerted and consented: ~5 events each."""
    fleet = in_memory_fleet()
    partner(fleet, "LOC-1")
    serials = [f"S{i}" for i in range(devices)]
    fleet.register_devices(CUSTOMER, "C1", servers(*serials))
    for serial in serials:
        fleet.raise_alert(OPS, serial, f"A-{serial}", "warning", "fan")
    fleet.grant_consent(CUSTOMER, "C1", serials)
    return fleet


def relay_of(
    fleet: PartnerFleet,
    positions: SQLiteViewDB,
    producer: RecordingProducer,
    shard: Shard | None = None,
    batch_size: int = 7,
) -> Relay:
    """A relay publishing to `producer`, its position in `positions`."""
    return Relay(
        fleet,
        positions,
        "unused:9092",
        batch_size=batch_size,
        producer_factory=lambda: producer,
        shard=shard or Shard(),
        destination=HERE,
    )


def head(fleet: PartnerFleet) -> int:
    return fleet.recorder.max_notification_id() or 0


def test_shards_together_publish_every_event_once_each_aggregate_in_one_shard_in_order() -> None:
    """Two shards: the union is the store, no event twice, an aggregate never split."""
    fleet, positions = history(), SQLiteViewDB(":memory:")
    producers = [RecordingProducer(), RecordingProducer()]
    for index, producer in enumerate(producers):
        assert relay_of(fleet, positions, producer, Shard(index, 2)).catch_up() == head(fleet)
    envelopes = [[Envelope.model_validate_json(s.value) for s in p.sent] for p in producers]
    everything = [e.position for part in envelopes for e in part]
    assert sorted(everything) == list(range(1, head(fleet) + 1))
    owners = {e.aggregate_id: i for i, part in enumerate(envelopes) for e in part}
    assert all(owners[e.aggregate_id] == i for i, part in enumerate(envelopes) for e in part)
    assert all(part for part in envelopes)  # both shards had work
    versions: dict[uuid.UUID, list[int]] = defaultdict(list)
    for part in envelopes:
        for e in part:
            versions[e.aggregate_id].append(e.aggregate_version)
    assert all(v == sorted(v) for v in versions.values())
    with positions.transaction() as tx:
        assert relay_positions(tx) == {
            f"relay@{HERE.id}:1/2": head(fleet),
            f"relay@{HERE.id}:2/2": head(fleet),
        }


def test_a_position_moves_only_past_acknowledged_batches_and_the_rest_is_resent() -> None:
    """The broker stops acknowledging mid-way: the position stays at the last whole batch."""
    fleet, positions = history(), SQLiteViewDB(":memory:")
    producer = RecordingProducer()
    relay = relay_of(fleet, positions, producer, batch_size=7)
    assert relay.relay_once() == 7
    producer.down = True
    with pytest.raises(KafkaTimeoutError):
        relay.catch_up()
    assert relay.position() == 7
    producer.down = False
    relay.catch_up()
    positions_sent = [Envelope.model_validate_json(s.value).position for s in producer.sent]
    assert positions_sent == list(range(1, head(fleet) + 1))
    assert relay.lag() == 0


def test_catch_up_records_positions_in_order_batch_by_batch() -> None:
    """Pipelined batches are still recorded oldest first, each at its own last event."""
    fleet, positions = history(), SQLiteViewDB(":memory:")
    relay = relay_of(fleet, positions, RecordingProducer(), batch_size=10)
    recorded: list[int] = []
    original = relay._record

    def record(position: int) -> None:
        recorded.append(position)
        original(position)

    relay._record = record  # type: ignore[method-assign]
    passed: list[int] = []
    relay.catch_up(passed.append)
    total = head(fleet)
    assert recorded == [min(end, total) for end in range(10, total + 10, 10)]
    assert sum(passed) == total
    assert relay.published == total


def test_a_new_shard_layout_starts_where_a_complete_layout_had_published_everything() -> None:
    """One relay reached P: two new shards start at P, not at 0 and not beyond."""
    fleet, positions = history(), SQLiteViewDB(":memory:")
    single = relay_of(fleet, positions, RecordingProducer(), batch_size=20)
    single.relay_once()
    reached = single.position()
    assert 0 < reached < head(fleet)
    halves = [relay_of(fleet, positions, RecordingProducer(), Shard(i, 2)) for i in range(2)]
    assert [half.position() for half in halves] == [reached, reached]


def test_an_incomplete_layout_is_not_a_safe_start() -> None:
    """Only shard 1 of 2 ever ran: its position says nothing of shard 2's aggregates."""
    positions = SQLiteViewDB(":memory:")
    with positions.transaction() as tx:
        tx.execute(TRACKING_DDL)
        assert safe_start(tx, HERE) == 0
        write_position(tx, HERE.tracking_name(), 40)
        write_position(tx, HERE.tracking_name(Shard(0, 2)), 90)
        assert safe_start(tx, HERE) == 40  # the single relay's layout is the only complete one
        write_position(tx, HERE.tracking_name(Shard(1, 2)), 70)
        assert safe_start(tx, HERE) == 70  # now 1/2 and 2/2 both published up to 70


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("3/2", "relay shard 3/2 does not exist"),
        ("0/2", "relay shard 0/2 does not exist"),
        ("1/65", "relay shard 1/65 does not exist"),
        ("two", "relay shard 'two' is not I/N"),
        ("1/", "relay shard '1/' is not I/N"),
    ],
)
def test_a_shard_that_does_not_exist_is_refused_with_the_reason(text: str, message: str) -> None:
    """`--shard` takes I/N with 1 <= I <= N <= 64."""
    with pytest.raises(ValueError, match=message):
        Shard.parse(text)


def test_shard_names_keep_the_single_relays_position() -> None:
    """A one-shard relay keeps the position an earlier unsharded relay recorded."""
    assert HERE.tracking_name(Shard()) == "relay@test-cluster/partnerfleet"
    assert Shard.parse("1/1") == Shard()
    assert HERE.tracking_name(Shard.parse("2/3")) == "relay@test-cluster/partnerfleet:2/3"


def test_a_destinations_topic_id_is_part_of_its_positions_and_parses_back() -> None:
    """Kind 9: topics made anew (same cluster id and prefix) are another destination."""
    again = Destination("test-cluster", "partnerfleet", "0f3c-9a")
    name = again.tracking_name(Shard.parse("2/3"))
    assert name == "relay@test-cluster/partnerfleet#0f3c-9a:2/3"
    assert parse_tracking_name(name) == (again.id, Shard.parse("2/3"))
    assert again.id != HERE.id
    assert Destination("c", "p", "a:b#c").id == "c/p#a_b_c"  # never breaks the name apart


def test_a_stopped_relay_stops_between_batches_with_what_it_sent_recorded() -> None:
    """stop() during a long catch-up: it returns after the current batch, positions exact."""
    fleet, positions = history(), SQLiteViewDB(":memory:")
    producer = RecordingProducer()
    relay = relay_of(fleet, positions, producer, batch_size=5)
    passed = relay.catch_up(lambda _: relay._stop.set())  # stop asked after the first batch
    assert 0 < passed < head(fleet)
    assert relay.position() == passed == len(producer.sent)
