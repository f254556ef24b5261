"""Issue 8, kinds 3 and 5 on PostgreSQL/SQLite and the Tansu broker.

Kind 3: a batch id used again with other content is refused and kept, and new records at
the old offsets of a recreated topic are no redelivery. Kind 5: one bad feed message is
dead-lettered with its reason and never stops the messages behind it.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.structs import TopicPartition

from domain.idempotency import PREFIX, bytes_fingerprint
from handlers import PartnerFleet
from infra.bootstrap import build_fleet, build_view_runner
from infra.kafka.feeds import Feed, batch_id_of
from infra.kafka.relay import ensure_topics
from infra.settings import Settings
from projections.holding import rejected_reports, unassigned_devices
from tests.integration.test_feeds import consumer_for, drain, feed_of, publish
from tests.kafka import Broker, read_topics
from tests.scenarios import CUSTOMER, OPS, partner, report, servers
from tests.scopes import OPERATIONS, partner_at

BRACKETS = b"[" * 100_000 + b"]" * 100_000
REUSED = "batch id {} was already received with different content"


def alert(alert_id: str) -> bytes:
    """A valid alerts-feed message for server S1."""
    fields = {"serial": "S1", "alert_id": alert_id, "severity": "critical", "message": "disk"}
    return json.dumps(fields).encode()


def reports(*serials: str) -> list[bytes]:
    """e2Open reports of LOC-1, as the feed sends them."""
    return [json.dumps(report(serial)).encode() for serial in serials]


def consume(
    fleet: PartnerFleet, broker: Broker, feed: Feed, expected: int, group: str = ""
) -> None:
    """Consume exactly `expected` records, in consumer group `group` (else one of their own)."""
    consumer = consumer_for(fleet, broker, feed, group or f"g-{uuid.uuid4().hex[:6]}")
    try:
        assert drain(consumer, expected) == expected
    finally:
        consumer.close()


def recreate(broker: Broker, topic: str) -> None:
    """Delete the topic and create it again (one partition): its offsets start at 0."""
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10_000)
    try:
        admin.delete_topics([topic])
        for _ in range(50):  # deletion is asynchronous on some brokers
            if topic not in admin.list_topics():
                break
            time.sleep(0.1)
        admin.create_topics([NewTopic(topic, 1, replication_factor=1)])
    finally:
        admin.close()


def test_issue_8_kind_5_a_bracket_bomb_between_two_alerts_is_dead_lettered_and_both_raised(
    stored_fleet: PartnerFleet, broker: Broker
) -> None:
    """Given input: 100,000 `[` and 100,000 `]` between two valid alerts (R-ALR-1)."""
    stored_fleet.register_devices(CUSTOMER, "C1", servers("S1"))
    feed = feed_of("alerts")
    ensure_topics(broker.bootstrap, [feed.topic, feed.dead_letters], partitions=1)
    publish(broker, feed.topic, [alert("A1"), BRACKETS, alert("A2")])
    group = f"g-{uuid.uuid4().hex[:6]}"

    consume(stored_fleet, broker, feed, 3, group)

    assert set(stored_fleet.device("S1").alerts) == {"A1", "A2"}
    [dead] = read_topics(broker.bootstrap, [feed.dead_letters], 1)
    assert dead.value == BRACKETS
    assert b"exceeds the limit of 65,536 bytes" in dict(dead.headers)["reason"]
    # The offset moved on: after a restart the group reads only what came after.
    publish(broker, feed.topic, [alert("A3")])
    consume(stored_fleet, broker, feed, 1, group)
    assert set(stored_fleet.device("S1").alerts) == {"A1", "A2", "A3"}


def test_r_hld_1_reports_with_nul_deep_or_not_json_are_dead_lettered_and_the_rest_land(
    stored_fleet: PartnerFleet, broker: Broker
) -> None:
    partner(stored_fleet, "LOC-1")
    feed = feed_of("e2open")
    ensure_topics(broker.bootstrap, [feed.topic, feed.dead_letters], partitions=1)
    bad = [
        json.dumps(report("PC2", end_customer="ACME\x00 Corp")).encode(),
        b"[" * 20 + b"]" * 20,
        b"\xff\xfe",
        b"1" * 5_000,
    ]
    publish(broker, feed.topic, reports("PC1") + bad + reports("PC3"))

    consume(stored_fleet, broker, feed, 6)

    holding = stored_fleet.partner("LOC-1").holding_tenant_id
    assert [stored_fleet.device(s).placement for s in ("PC1", "PC3")] == [holding] * 2
    dead = read_topics(broker.bootstrap, [feed.dead_letters], 4)
    assert [r.value for r in dead] == bad
    reasons = [dict(r.headers)["reason"].decode() for r in dead]
    assert reasons[0].startswith("end_customer: a NUL character (U+0000) at position 4")
    assert reasons[1] == "nested deeper than 16 levels"
    assert reasons[2].startswith("not UTF-8")
    assert reasons[3] == "a number is out of range (beyond 64 bits)"


def test_r_hld_1_new_reports_at_the_old_offsets_of_a_recreated_topic_land(
    stored_fleet: PartnerFleet, broker: Broker
) -> None:
    """Kind 3: offsets 0-1 again after the topic was recreated are new content, not a redelivery."""
    partner(stored_fleet, "LOC-1")
    feed = feed_of("e2open")
    ensure_topics(broker.bootstrap, [feed.topic, feed.dead_letters], partitions=1)
    publish(broker, feed.topic, reports("PC1", "PC2"))
    consume(stored_fleet, broker, feed, 2)
    recreate(broker, feed.topic)
    publish(broker, feed.topic, reports("PC3", "PC4"))

    consume(stored_fleet, broker, feed, 2)

    holding = stored_fleet.partner("LOC-1").holding_tenant_id
    landed = [stored_fleet.device(s).placement for s in ("PC1", "PC2", "PC3", "PC4")]
    assert landed == [holding] * 4


def test_r_hld_1_a_derived_batch_id_met_with_other_records_is_dead_lettered_with_the_reason(
    stored_fleet: PartnerFleet, broker: Broker
) -> None:
    """Kind 3: should two polls ever share a batch id, the second is refused, never swallowed."""
    partner(stored_fleet, "LOC-1")
    feed = feed_of("e2open")
    ensure_topics(broker.bootstrap, [feed.topic, feed.dead_letters], partitions=1)
    sent = reports("PC1", "PC2")
    fingerprint = bytes_fingerprint(sent)
    records = [SimpleNamespace(offset=offset) for offset in (0, 1)]
    batch_id = batch_id_of(TopicPartition(feed.topic, 0), records, fingerprint)
    colliding = fingerprint[: len(PREFIX) + 16] + "0" * 48  # the same prefix, other content
    stored_fleet.receive_e2open_batch(OPS, batch_id, [report("PC9")], fingerprint=colliding)
    publish(broker, feed.topic, sent)

    consume(stored_fleet, broker, feed, 2)

    dead = read_topics(broker.bootstrap, [feed.dead_letters], 2)
    assert [r.value for r in dead] == sent
    assert {dict(r.headers)["reason"].decode() for r in dead} == {REUSED.format(batch_id)}


def test_r_hld_1_a_refused_delivery_is_in_the_holding_view_on_each_backend(
    stored_settings: Settings, tmp_path: Path
) -> None:
    """Kind 3, given input: b1 with PC1, then b1 with PC1 and PC2 (R-HLD-1)."""
    settings = stored_settings.model_copy(update={"views_sqlite_path": tmp_path / "views.db"})
    fleet = build_fleet(settings)
    runner = build_view_runner(settings, fleet)
    try:
        partner(fleet, "LOC-1")
        fleet.receive_e2open_batch(OPS, "b1", [report("PC1")])
        fleet.receive_e2open_batch(OPS, "b1", [report("PC1"), report("PC2")])
        runner.catch_up()
        with runner.db.transaction() as tx:
            listed = rejected_reports(tx, OPERATIONS, batch_id="b1").rows
            devices = [d.serial for d in unassigned_devices(tx, partner_at(fleet, "LOC-1")).rows]
    finally:
        runner.db.close()
        fleet.close()
    assert [(r.index, r.serial, r.reason) for r in listed] == [
        (0, "PC1", REUSED.format("b1")),
        (1, "PC2", REUSED.format("b1")),
    ]
    assert devices == ["PC1"]
