"""Kafka in: the e2Open and alerts feeds on a real broker, with dead letters and redelivery."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest
from eventsourcing.persistence import Notification, OperationalError
from kafka import KafkaConsumer, KafkaProducer
from kafka.structs import TopicPartition

from domain import Device
from handlers import PartnerFleet
from handlers.access import Actor
from infra.kafka.feeds import FEEDS, Feed, FeedConsumer, consumer_config
from infra.kafka.relay import ensure_topics
from infra.loops import Follower, no_wait
from tests.kafka import Broker, read_topics
from tests.pg_faults import eventually
from tests.scenarios import CUSTOMER, partner, report, servers


def feed_of(name: str) -> Feed:
    """The feed with topics of this test's own."""
    tag = uuid.uuid4().hex[:8]
    feed = FEEDS[name]
    return replace(feed, topic=f"{feed.topic}.{tag}", dead_letters=f"{feed.dead_letters}.{tag}")


def publish(broker: Broker, topic: str, messages: list[bytes]) -> None:
    """Send raw messages to one partition of `topic`, in order."""
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    for message in messages:
        producer.send(topic, value=message, partition=0)
    producer.flush()
    producer.close()


def consumer_for(fleet: PartnerFleet, broker: Broker, feed: Feed, group: str) -> FeedConsumer:
    """A feed consumer in consumer group `group`."""
    consumer = KafkaConsumer(feed.topic, **consumer_config(broker.bootstrap, group))
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    return FeedConsumer(fleet, feed, consumer, producer)


def drain(feed_consumer: FeedConsumer, expected: int) -> int:
    """Poll until `expected` records were handled (group joins take a few seconds)."""
    handled = 0
    for _ in range(60):
        handled += feed_consumer.poll_once(timeout_ms=500)
        if handled >= expected:
            break
    return handled


def e2open_messages() -> list[bytes]:
    """Two good reports, a malformed one, one for an unknown partner and one not JSON."""
    return [
        json.dumps(report("PC1")).encode(),
        json.dumps(report("PC2")).encode(),
        json.dumps({"serial": "PC3"}).encode(),
        json.dumps(report("PC4", "NOPE")).encode(),
        b"{not json",
    ]


def test_r_hld_1_the_e2open_feed_lands_pcs_and_dead_letters_what_it_rejects(
    stored_fleet: PartnerFleet, broker: Broker
) -> None:
    """R-HLD-1: good reports land; malformed and unknown-partner ones go to the DLQ, with why."""
    partner(stored_fleet, "LOC-1")
    feed = feed_of("e2open")
    ensure_topics(broker.bootstrap, [feed.topic, feed.dead_letters], partitions=1)
    publish(broker, feed.topic, e2open_messages())
    consumer = consumer_for(stored_fleet, broker, feed, f"g-{uuid.uuid4().hex[:6]}")
    try:
        assert drain(consumer, 5) == 5
    finally:
        consumer.close()
    holding = stored_fleet.partner("LOC-1").holding_tenant_id
    assert stored_fleet.device("PC1").placement == holding
    assert stored_fleet.device("PC2").placement == holding
    dead = read_topics(broker.bootstrap, [feed.dead_letters], 3)
    reasons = [dict(r.headers)["reason"].decode() for r in dead]
    assert [r.value for r in dead] == e2open_messages()[2:]
    assert reasons[0].startswith("malformed report: model: Field required")
    assert reasons[1] == "unknown partner Location ID NOPE"
    assert reasons[2].startswith("not JSON")


def landed(fleet: PartnerFleet) -> list[Notification]:
    """The stored events of e2Open intake: reported devices and batch records."""
    return [
        n
        for n in fleet.recorder.select_notifications(1, 10_000)
        if n.topic.endswith(("Device.ReportedByE2Open", "E2OpenBatch.Received"))
    ]


class CrashError(Exception):
    """The consumer process dies after storing a batch, before committing its offsets."""


class DiesBeforeCommit(FeedConsumer):
    """A consumer that stores its first batch and dies before the offset commit."""

    def _commit(self, partition: TopicPartition, next_offset: int) -> None:
        raise CrashError


def test_a_batch_stored_but_not_committed_is_redelivered_and_lands_once(
    stored_fleet: PartnerFleet, broker: Broker
) -> None:
    """R-HLD-1: offsets are committed after the store; the redelivery adds no device."""
    partner(stored_fleet, "LOC-1")
    feed = feed_of("e2open")
    ensure_topics(broker.bootstrap, [feed.topic, feed.dead_letters], partitions=1)
    publish(broker, feed.topic, e2open_messages())
    group = f"g-{uuid.uuid4().hex[:6]}"
    first = consumer_for(stored_fleet, broker, feed, group)
    dying = DiesBeforeCommit(stored_fleet, feed, first.consumer, first.producer)
    try:
        with pytest.raises(CrashError):
            drain(dying, 5)
    finally:
        dying.close()
    assert stored_fleet.device("PC1").placement is not None
    second = consumer_for(stored_fleet, broker, feed, group)
    try:
        assert drain(second, 5) == 5
    finally:
        second.close()
    assert len(landed(stored_fleet)) == 3  # PC1, PC2, one batch record, however often consumed


def test_a_redelivered_e2open_batch_creates_no_duplicate_devices(
    stored_fleet: PartnerFleet, broker: Broker
) -> None:
    """R-HLD-1: the same reports consumed twice (a crash before commit) land once."""
    partner(stored_fleet, "LOC-1")
    feed = feed_of("e2open")
    ensure_topics(broker.bootstrap, [feed.topic, feed.dead_letters], partitions=1)
    publish(broker, feed.topic, e2open_messages()[:2])
    for _ in range(2):  # two groups: each consumes everything, as after a lost commit
        consumer = consumer_for(stored_fleet, broker, feed, f"g-{uuid.uuid4().hex[:6]}")
        try:
            assert drain(consumer, 2) == 2
        finally:
            consumer.close()
    landed = [
        n
        for n in stored_fleet.recorder.select_notifications(1, 10_000)
        if n.topic.endswith("Device.ReportedByE2Open")
    ]
    assert len(landed) == 2
    assert {n.originator_id for n in landed} == {Device.id_for("PC1"), Device.id_for("PC2")}


def test_r_alr_1_the_alerts_feed_raises_alerts_once_and_dead_letters_unknown_devices(
    stored_fleet: PartnerFleet, broker: Broker
) -> None:
    """Alerts are raised once, redelivered ones are duplicates, unknown devices dead-lettered."""
    stored_fleet.register_devices(CUSTOMER, "C1", servers("S1"))
    feed = feed_of("alerts")
    ensure_topics(broker.bootstrap, [feed.topic, feed.dead_letters], partitions=1)
    alert = {"serial": "S1", "alert_id": "A1", "severity": "critical", "message": "disk"}
    unknown = {**alert, "serial": "NOPE", "alert_id": "A2"}
    publish(broker, feed.topic, [json.dumps(m).encode() for m in (alert, alert, unknown)])
    consumer = consumer_for(stored_fleet, broker, feed, f"g-{uuid.uuid4().hex[:6]}")
    try:
        assert drain(consumer, 3) == 3
    finally:
        consumer.close()
    assert list(stored_fleet.device("S1").alerts) == ["A1"]
    dead = read_topics(broker.bootstrap, [feed.dead_letters], 1)
    assert [dict(r.headers)["reason"].decode() for r in dead] == [
        "No device with serial number 'NOPE'."
    ]


class StoreAwayOnce(FeedConsumer):
    """The edge of the world: the first batch's store fails as a lost database would."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        real = self._intake
        failed: list[str] = []

        def intake(
            actor: Actor, batch_id: str, messages: Sequence[object], *, fingerprint: str
        ) -> Any:
            if not failed:
                failed.append(batch_id)
                raise OperationalError("terminating connection due to administrator command")
            return real(actor, batch_id, messages, fingerprint=fingerprint)

        self._intake = intake


def test_kind6_a_batch_the_database_lost_is_fetched_again_by_the_same_consumer(
    stored_fleet: PartnerFleet, broker: Broker
) -> None:
    """R-HLD-1: the store fails on a batch: the running consumer loop backs off, fetches the
    same records again and lands them; nothing is skipped, and the loop goes on."""
    partner(stored_fleet, "LOC-1")
    feed = feed_of("e2open")
    ensure_topics(broker.bootstrap, [feed.topic, feed.dead_letters], partitions=1)
    publish(broker, feed.topic, e2open_messages())
    plain = consumer_for(stored_fleet, broker, feed, f"g-{uuid.uuid4().hex[:6]}")
    consumer = StoreAwayOnce(stored_fleet, feed, plain.consumer, plain.producer)
    loop = Follower("consume-e2open", lambda: consumer.poll_once(timeout_ms=200), no_wait)

    loop.start()
    try:
        assert eventually(lambda: len(landed(stored_fleet)) == 3, timeout=60)
        assert eventually(lambda: loop.status().state == "running")
    finally:
        loop.stop()
        consumer.close()

    assert stored_fleet.device("PC1").placement == stored_fleet.partner("LOC-1").holding_tenant_id
