"""The relay on Tansu, at its limits: oversized events, new destinations, lost connections.

Issue 8, kinds 5, 6 and 9. The producer's max_request_size is set explicitly (brokers'
own limits differ), and the tests measure against it.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from handlers import PartnerFleet
from infra.bootstrap import build_fleet, build_view_db
from infra.kafka.parking import parked_events
from infra.kafka.relay import Relay, domain_topics
from infra.settings import Settings
from infra.storage.viewdb import SQLiteViewDB
from tests.kafka import Broker, read_topics
from tests.pg_faults import terminate_backends
from tests.scenarios import CUSTOMER, OPS, partner, servers


def prefix() -> str:
    """Topics of this test's own."""
    return f"pf{uuid.uuid4().hex[:8]}"


def big_delivery(fleet: PartnerFleet, reports: int = 5_000) -> int:
    """Events, then an e2Open delivery of malformed reports (one big event), then more."""
    partner(fleet, "LOC-1")
    malformed = [{"serial": f"??{i:05d}??", "care_plan": "gold"} for i in range(reports)]
    fleet.receive_e2open_batch(OPS, "b-big", malformed)
    big = fleet.recorder.max_notification_id() or 0
    fleet.register_devices(CUSTOMER, "C1", servers("S1", "S2", "S3"))
    return big


def envelope_of(record: Any) -> dict[str, Any]:
    """A record's envelope, uncompressed if it came gzip-compressed."""
    gzipped = dict(record.headers).get("content_encoding") == b"gzip"
    loaded: dict[str, Any] = json.loads(gzip.decompress(record.value) if gzipped else record.value)
    return loaded


def relay_to(
    fleet: PartnerFleet, broker: Broker, tmp_path: Path, topics: str, **options: Any
) -> Relay:
    """A relay whose position lives in a SQLite file of this test's own."""
    positions = SQLiteViewDB(str(tmp_path / "positions.sqlite3"))
    return Relay(fleet, positions, broker.bootstrap, batch_size=10, prefix=topics, **options)


def test_r_hld_1_a_delivery_of_5000_malformed_reports_is_published_once_and_what_follows_flows(
    stored_fleet: PartnerFleet, broker: Broker, tmp_path: Path
) -> None:
    """Kind 5: the event over the producer's 1,000,000 bytes goes out gzip-compressed, once."""
    topics = prefix()
    big = big_delivery(stored_fleet)
    relay = relay_to(stored_fleet, broker, tmp_path, topics)

    relay.catch_up()

    stored = stored_fleet.recorder.select_notifications(1, 10_000)
    records = read_topics(broker.bootstrap, domain_topics(topics), len(stored))
    [record] = [r for r in records if dict(r.headers)["position"] == str(big).encode()]
    assert len(gzip.decompress(record.value)) > 1_000_000
    assert len(envelope_of(record)["payload"]["rejected"]) == 5_000
    assert sorted(envelope_of(r)["position"] for r in records) == [n.id for n in stored]
    assert (relay.lag(), relay.parked, relay.published) == (0, 0, len(stored))


def test_an_event_over_the_limit_even_compressed_is_parked_and_listed_and_the_rest_flows(
    stored_fleet: PartnerFleet, broker: Broker, tmp_path: Path
) -> None:
    """Kind 5: KAFKA_MAX_MESSAGE_BYTES=20000: parked with its reason, a notice on the topic."""
    topics = prefix()
    big = big_delivery(stored_fleet)
    relay = relay_to(stored_fleet, broker, tmp_path, topics, max_message_bytes=20_000)

    relay.catch_up()

    stored = stored_fleet.recorder.select_notifications(1, 10_000)
    records = read_topics(broker.bootstrap, domain_topics(topics), len(stored))
    [notice] = [r for r in records if "parked" in dict(r.headers)]
    assert envelope_of(notice)["position"] == big
    assert envelope_of(notice)["payload"] is None
    assert sorted(envelope_of(r)["position"] for r in records) == [n.id for n in stored]
    with relay.positions.transaction() as tx:
        [parked] = [p for events in parked_events(tx).values() for p in events]
    assert (parked.position, parked.type) == (big, "E2OpenBatch.Received")
    assert "KAFKA_MAX_MESSAGE_BYTES" in parked.reason
    assert (relay.lag(), relay.parked) == (0, 1)


def test_a_new_topic_prefix_receives_the_whole_history_on_the_same_positions(
    stored_fleet: PartnerFleet, broker: Broker, tmp_path: Path
) -> None:
    """Kind 9: the destination is the cluster the broker reports plus the prefix."""
    old, new = prefix(), prefix()
    partner(stored_fleet, "LOC-1")
    relay_to(stored_fleet, broker, tmp_path, old).catch_up()
    before = stored_fleet.recorder.max_notification_id() or 0
    stored_fleet.register_devices(CUSTOMER, "C1", servers("S1"))

    moved = relay_to(stored_fleet, broker, tmp_path, new)
    moved.catch_up()
    resumed = relay_to(stored_fleet, broker, tmp_path, old)
    resumed.catch_up()

    stored = stored_fleet.recorder.select_notifications(1, 10_000)
    records = read_topics(broker.bootstrap, domain_topics(new), len(stored))
    assert sorted(envelope_of(r)["position"] for r in records) == [n.id for n in stored]
    assert moved.destination is not None
    assert moved.destination.prefix == new
    assert moved.destination.incarnation  # Tansu gives topic ids
    assert resumed.published == len([n for n in stored if n.id > before])  # only what is new


def test_a_second_broker_reporting_the_same_cluster_id_receives_the_whole_history(
    stored_fleet: PartnerFleet, broker: Broker, tmp_path: Path
) -> None:
    """Kind 9: two Tansu brokers both report `tansu_cluster` (as do two Kafka clusters given
    one CLUSTER_ID): a position belongs to the topics it was published to, not to a name."""
    topics = prefix()
    partner(stored_fleet, "LOC-1")
    relay_to(stored_fleet, broker, tmp_path, topics).catch_up()
    other = Broker().start()
    try:
        moved = relay_to(stored_fleet, other, tmp_path, topics)
        moved.catch_up()
        stored = stored_fleet.recorder.select_notifications(1, 10_000)
        records = read_topics(other.bootstrap, domain_topics(topics), len(stored))
    finally:
        other.stop()
    assert sorted(envelope_of(r)["position"] for r in records) == [n.id for n in stored]
    assert (moved.lag(), moved.published) == (0, len(stored))


def test_the_relay_survives_its_database_connections_being_terminated(
    postgres_settings: Settings, broker: Broker
) -> None:
    """Kind 6: pg_terminate_backend of every connection of the relay: it goes on by itself."""
    fleet = build_fleet(postgres_settings)
    partner(fleet, "LOC-1")
    topics = prefix()
    relay = Relay(fleet, build_view_db(postgres_settings), broker.bootstrap, prefix=topics)
    thread = threading.Thread(target=relay.run, kwargs={"poll_seconds": 0.05})
    thread.start()
    try:
        wait_for(lambda: caught_up(relay))
        assert terminate_backends(postgres_settings.storage.schema) > 0

        writer = build_fleet(postgres_settings)
        writer.register_devices(CUSTOMER, "C1", servers("S1", "S2"))

        wait_for(lambda: caught_up(relay), timeout=60)
        writer.close()
    finally:
        relay.stop()
        thread.join(timeout=30)
    assert not thread.is_alive()
    stored = fleet.recorder.select_notifications(1, 10_000)
    records = read_topics(broker.bootstrap, domain_topics(topics), len(stored))
    assert {envelope_of(r)["position"] for r in records} == {n.id for n in stored}
    fleet.close()


def caught_up(relay: Relay) -> bool:
    """Lag 0; False while the connection this question uses is one that was terminated."""
    try:
        return relay.lag() == 0
    except psycopg.OperationalError:
        return False


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll until `condition()`; fail when it takes longer than `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
