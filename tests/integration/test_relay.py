"""The Kafka relay on a real Kafka-protocol broker: keys, order, envelopes, crashes, outages."""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path

import pytest

from domain import Device
from handlers import PartnerFleet
from infra.kafka.envelope import Envelope
from infra.kafka.relay import Relay, domain_topics
from infra.kafka.shards import Shard
from infra.storage.viewdb import SQLiteViewDB
from tests.actors import customer
from tests.conftest import FleetFactory
from tests.kafka import Broker, read_topics
from tests.scenarios import CUSTOMER, OPS, partner, servers


def prefix() -> str:
    """Topics of this test's own, so tests sharing a broker never read each other's."""
    return f"pf{uuid.uuid4().hex[:8]}"


def relay_for(
    fleet: PartnerFleet,
    broker: Broker,
    tmp_path: Path,
    name: str = "positions",
    topic_prefix: str = "partnerfleet",
    cls: type[Relay] = Relay,
) -> Relay:
    """A relay whose position lives in a SQLite file of this test's own."""
    positions = SQLiteViewDB(str(tmp_path / f"{name}.sqlite3"))
    return cls(fleet, positions, broker.bootstrap, batch_size=10, prefix=topic_prefix)


def some_history(fleet: PartnerFleet) -> None:
    """A partner, devices linked and consented: a few dozen events over several aggregates."""
    partner(fleet, "LOC-1")
    fleet.register_devices(CUSTOMER, "C1", servers("S1", "S2", "S3"))
    for serial in ("S1", "S2", "S3"):
        fleet.raise_alert(OPS, serial, f"A-{serial}", "warning", "fan")
    fleet.grant_consent(CUSTOMER, "C1", ["S1", "S2"])


def test_every_event_is_published_keyed_by_aggregate_in_order_with_its_envelope(
    stored_fleet: PartnerFleet, broker: Broker, tmp_path: Path
) -> None:
    """One record per event; key = aggregate id; per key, versions ascend; headers = envelope."""
    topics = prefix()
    some_history(stored_fleet)
    relay = relay_for(stored_fleet, broker, tmp_path, topic_prefix=topics)
    while relay.relay_once():
        pass
    stored = stored_fleet.recorder.select_notifications(1, 10_000)
    records = read_topics(broker.bootstrap, domain_topics(topics), len(stored))
    envelopes = [Envelope.model_validate_json(r.value) for r in records]
    assert sorted(e.position for e in envelopes) == [n.id for n in stored]
    versions: dict[uuid.UUID, list[int]] = defaultdict(list)
    for record, wrapped in zip(records, envelopes, strict=True):
        assert record.key == str(wrapped.aggregate_id).encode()
        assert record.topic == f"{topics}.{wrapped.aggregate_type.lower()}.v1".replace(
            "partnertenant", "partner-tenant"
        ).replace("customergroup", "customer-group").replace("keyclaim", "key-claim")
        assert dict(record.headers)["event_id"] == str(wrapped.event_id).encode()
        versions[wrapped.aggregate_id].append(wrapped.aggregate_version)
    assert all(v == sorted(v) for v in versions.values())
    granted = [e for e in envelopes if e.type == "Device.ConsentGranted"]
    assert {e.aggregate_id for e in granted} == {Device.id_for("S1"), Device.id_for("S2")}
    assert granted[0].schema_version == 2
    assert (granted[0].payload or {})["text_version"] == "2025-06"
    assert relay.lag() == 0


class CrashError(Exception):
    """The relay process dies after the broker acknowledged, before the position is saved."""


class CrashingRelay(Relay):
    """A relay that dies right after sending its first batch."""

    def _record(self, position: int) -> None:
        raise CrashError


def test_a_relay_killed_between_send_and_position_resends_and_never_skips(
    stored_fleet: PartnerFleet, broker: Broker, tmp_path: Path
) -> None:
    """At least once: after the crash a new relay resends; consumers dedupe by event id."""
    topics = prefix()
    some_history(stored_fleet)
    crashing = relay_for(stored_fleet, broker, tmp_path, topic_prefix=topics, cls=CrashingRelay)
    with pytest.raises(CrashError):
        crashing.relay_once()
    crashing.stop()
    assert crashing.position() == 0
    resumed = relay_for(stored_fleet, broker, tmp_path, topic_prefix=topics)
    while resumed.relay_once():
        pass
    stored = stored_fleet.recorder.select_notifications(1, 10_000)
    records = read_topics(broker.bootstrap, domain_topics(topics), len(stored) + 10)
    envelopes = [Envelope.model_validate_json(r.value) for r in records]
    assert len(stored) > 10
    assert len(envelopes) == len(stored) + 10  # the first batch of 10 went out twice
    assert {e.position for e in envelopes} == {n.id for n in stored}
    assert len({e.event_id for e in envelopes}) == len(stored)


def test_commands_go_on_while_the_broker_is_down_and_the_relay_catches_up(
    fleet_factory: FleetFactory, own_broker: Broker, tmp_path: Path
) -> None:
    """Broker stopped mid-stream: commands succeed, lag grows, everything arrives after.

    Kind 9: this broker keeps its topics in memory, so it comes back without them (and with
    the same cluster id): a new destination, which receives the whole history again."""
    if not own_broker.restartable:
        pytest.skip("an external broker (KAFKA_BOOTSTRAP_SERVERS) cannot be stopped here")
    fleet = fleet_factory()
    some_history(fleet)
    relay = relay_for(fleet, own_broker, tmp_path)
    thread = threading.Thread(target=relay.run, kwargs={"poll_seconds": 0.05})
    thread.start()
    try:
        _wait(lambda: relay.lag() == 0)
        own_broker.stop()
        fleet.register_devices(customer("C2", "it@c2", "x"), "C2", servers("T1", "T2"))
        _wait(lambda: (relay.lag() or 0) > 0)
        time.sleep(1.0)
        assert (relay.lag() or 0) > 0
        own_broker.start()
        _wait(lambda: relay.lag() == 0, timeout=90)
    finally:
        relay.stop()
        thread.join(timeout=30)
    records = read_topics(own_broker.bootstrap, domain_topics(), 1)
    types = [Envelope.model_validate_json(r.value).type for r in records]
    assert types.count("Device.Registered") == 5  # S1-S3 before the outage, T1-T2 during
    stored = fleet.recorder.select_notifications(1, 10_000)
    positions = {Envelope.model_validate_json(r.value).position for r in records}
    assert positions == {n.id for n in stored}


def _wait(condition: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_two_shards_publish_every_event_once_on_the_broker_each_key_in_order(
    stored_fleet: PartnerFleet, broker: Broker, tmp_path: Path
) -> None:
    """Shards 1/2 and 2/2 in parallel: the topics hold the store once, per key in order."""
    topics = prefix()
    some_history(stored_fleet)
    positions = SQLiteViewDB(str(tmp_path / "positions.sqlite3"))
    shards = [
        Relay(stored_fleet, positions, broker.bootstrap, batch_size=7, prefix=topics, shard=s)
        for s in (Shard(0, 2), Shard(1, 2))
    ]
    threads = [threading.Thread(target=shard.catch_up) for shard in shards]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    stored = stored_fleet.recorder.select_notifications(1, 10_000)
    records = read_topics(broker.bootstrap, domain_topics(topics), len(stored))
    envelopes = [Envelope.model_validate_json(r.value) for r in records]
    assert sorted(e.position for e in envelopes) == [n.id for n in stored]
    assert all(shard.published > 0 for shard in shards)
    assert sum(shard.published for shard in shards) == len(stored)
    by_key: dict[bytes, list[tuple[int, int]]] = defaultdict(list)
    for record, wrapped in zip(records, envelopes, strict=True):
        by_key[record.key].append((record.partition, wrapped.aggregate_version))
    for seen in by_key.values():
        assert len({partition for partition, _ in seen}) == 1  # one partition per aggregate
        assert [v for _, v in seen] == sorted(v for _, v in seen)
    assert [shard.lag() for shard in shards] == [0, 0]
    for shard in shards:
        shard.stop()
