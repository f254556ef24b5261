"""The relay never stops on one event and never ends on an error (issue 8, kinds 5, 6 and 9).

Against a stand-in producer that refuses what a real one would (records over its
`max_request_size`, records the broker refuses for good); the same on Tansu is in
tests/integration/test_relay_limits.py.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent
from kafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

from handlers import PartnerFleet
from infra.kafka.envelope import Envelope
from infra.kafka.parking import parked_events
from infra.kafka.relay import Relay
from infra.kafka.shards import Destination, relay_positions
from infra.storage.tracking import write_position
from infra.storage.viewdb import SQLiteViewDB
from tests.scenarios import CUSTOMER, OPS, in_memory_fleet, partner, report, servers

HERE = Destination("test-cluster", "partnerfleet")
LIMIT = 20_000  # the stand-in's max_request_size


class Acked:
    """A send the broker acknowledged."""

    def get(self, timeout: float | None = None) -> None:
        return None


@dataclass
class Failed:
    """A send the broker answered with `error`."""

    error: Exception

    def get(self, timeout: float | None = None) -> None:
        raise self.error


@dataclass
class Producer:
    """Refuses records over LIMIT at send(), as KafkaProducer does; the broker refuses the
    records whose position is in `refuse` for good, and every record while `down`."""

    sent: list[tuple[str, bytes, dict[str, bytes]]] = field(default_factory=list)
    refuse: set[int] = field(default_factory=set)
    down: bool = False
    limit: int = LIMIT

    def send(self, topic: str, *, key: bytes, value: bytes, headers: Any) -> Acked | Failed:
        if len(value) > self.limit:
            raise MessageSizeTooLargeError(f"The message is {len(value)} bytes")
        if self.down:
            return Failed(KafkaTimeoutError("no acknowledgement"))
        found = dict(headers)
        if "parked" not in found and int(found["position"]) in self.refuse:
            return Failed(MessageSizeTooLargeError("MESSAGE_SIZE_TOO_LARGE"))
        self.sent.append((topic, value, found))
        return Acked()

    def flush(self, timeout: float | None = None) -> None:
        return None

    def close(self, timeout: float | None = None) -> None:
        return None

    def envelopes(self) -> list[dict[str, Any]]:
        """Each record's envelope, uncompressed where it was compressed."""
        return [
            json.loads(gzip.decompress(v) if h.get("content_encoding") == b"gzip" else v)
            for _, v, h in self.sent
        ]


def relay_of(
    fleet: PartnerFleet,
    producer: Producer,
    positions: SQLiteViewDB | None = None,
    destination: Destination = HERE,
) -> Relay:
    """A relay to `producer` at `destination`, batches of 5."""
    return Relay(
        fleet,
        positions or SQLiteViewDB(":memory:"),
        "unused:9092",
        batch_size=5,
        producer_factory=lambda: producer,
        destination=destination,
    )


def big_delivery(fleet: PartnerFleet, reports: int) -> int:
    """Events before and after an e2Open delivery of malformed reports; its event's position."""
    partner(fleet, "LOC-1")
    malformed = [{"serial": f"??{i:05d}??", "care_plan": "gold"} for i in range(reports)]
    fleet.receive_e2open_batch(OPS, "b-big", malformed)
    position = fleet.recorder.max_notification_id() or 0
    fleet.register_devices(CUSTOMER, "C1", servers("S1", "S2"))
    return position


def head(fleet: PartnerFleet) -> int:
    return fleet.recorder.max_notification_id() or 0


def test_r_hld_1_an_oversized_event_goes_out_compressed_once_and_the_events_after_it_flow() -> None:
    """Kind 5: 5,000 malformed reports make one event over the limit: it is sent gzip-ped."""
    fleet, producer = in_memory_fleet(), Producer(limit=200_000)
    big = big_delivery(fleet, 5_000)
    relay = relay_of(fleet, producer)

    relay.catch_up()

    envelopes = producer.envelopes()
    assert [e["position"] for e in envelopes] == list(range(1, head(fleet) + 1))
    [received] = [e for e in envelopes if e["position"] == big]
    assert len(received["payload"]["rejected"]) == 5_000
    assert [h.get("content_encoding") for _, _, h in producer.sent].count(b"gzip") == 1
    assert (relay.lag(), relay.parked) == (0, 0)


def test_r_hld_1_an_event_too_large_even_compressed_is_parked_with_a_notice_and_a_reason() -> None:
    """Kind 5: parked, counted, kept with its reason; a notice in its place; the rest flows."""
    fleet, positions = in_memory_fleet(), SQLiteViewDB(":memory:")
    producer = Producer(limit=20_000)  # the delivery of 5,000 reports gzips to more
    big = big_delivery(fleet, 5_000)
    relay = relay_of(fleet, producer, positions)

    relay.catch_up()

    envelopes = producer.envelopes()
    assert [e["position"] for e in envelopes] == list(range(1, head(fleet) + 1))
    [stand_in] = [e for e in envelopes if e["position"] == big]
    assert stand_in["payload"] is None
    assert "over the producer's limit (KAFKA_MAX_MESSAGE_BYTES)" in stand_in["parked"]["reason"]
    assert stand_in["parked"]["size"] > LIMIT
    with positions.transaction() as tx:
        [parked] = parked_events(tx)[HERE.id]
    assert (parked.position, parked.type) == (big, "E2OpenBatch.Received")
    assert (relay.lag(), relay.parked) == (0, 1)


def test_a_record_the_broker_refuses_for_good_is_parked_and_a_resend_sends_its_notice() -> None:
    """Kind 5: a permanent per-record error parks that record; a resend never retries it."""
    fleet, positions = in_memory_fleet(), SQLiteViewDB(":memory:")
    partner(fleet, "LOC-1")
    fleet.register_devices(CUSTOMER, "C1", servers("S1", "S2"))
    producer = Producer(refuse={3})
    relay = relay_of(fleet, producer, positions)

    relay.catch_up()
    with positions.transaction() as tx:
        write_position(tx, HERE.tracking_name(), 0)  # as if it crashed before recording
    again = relay_of(fleet, producer, positions)
    again.catch_up()

    notices = [h["position"] for _, _, h in producer.sent if "parked" in h]
    assert notices == [b"3", b"3"]
    assert [e["position"] for e in producer.envelopes()].count(3) == 2
    assert (relay.parked, again.parked, again.lag()) == (1, 0, 0)


def test_a_stored_event_the_relay_cannot_encode_is_parked_and_the_rest_flows() -> None:
    """Kind 5: unreadable state or an unknown event topic: parked with the reason, no record."""
    fleet, producer, positions = in_memory_fleet(), Producer(), SQLiteViewDB(":memory:")
    partner(fleet, "LOC-1")
    fleet.recorder.insert_events(
        [
            StoredEvent(uuid.uuid4(), 1, "domain.device:Device.Registered", b"{not json"),
            StoredEvent(uuid.uuid4(), 1, "domain.gone:Gone.Happened", b"{}"),
        ]
    )
    fleet.register_devices(CUSTOMER, "C1", servers("S1"))
    relay = relay_of(fleet, producer, positions)

    relay.catch_up()

    with positions.transaction() as tx:
        parked = parked_events(tx)[HERE.id]
    assert [p.type for p in parked] == ["Device.Registered", "domain.gone:Gone.Happened"]
    assert all("the relay cannot encode it" in p.reason for p in parked)
    sent = {e["position"] for e in producer.envelopes()}
    assert sent == set(range(1, head(fleet) + 1)) - {p.position for p in parked}
    assert relay.lag() == 0


def test_a_transient_broker_error_is_retried_and_parks_nothing() -> None:
    """Kind 5: no acknowledgement is not a reason to park: the batch is sent again."""
    fleet, producer = in_memory_fleet(), Producer(down=True)
    partner(fleet, "LOC-1")
    relay = relay_of(fleet, producer)

    with pytest.raises(KafkaTimeoutError):
        relay.catch_up()
    producer.down = False
    relay.catch_up()

    assert [e["position"] for e in producer.envelopes()] == list(range(1, head(fleet) + 1))
    assert (relay.parked, relay.lag()) == (0, 0)


def test_a_new_destination_receives_the_whole_history_and_the_old_one_resumes() -> None:
    """Kind 9: a new topic prefix or a new cluster starts at the first event; positions apart."""
    fleet, positions = in_memory_fleet(), SQLiteViewDB(":memory:")
    partner(fleet, "LOC-1")
    relay_of(fleet, Producer(), positions).catch_up()
    fleet.register_devices(CUSTOMER, "C1", servers("S1"))
    elsewhere = [Destination("test-cluster", "acme"), Destination("new-cluster", "partnerfleet")]

    firsts = []
    for destination in [HERE, *elsewhere]:
        producer = Producer()
        relay_of(fleet, producer, positions, destination).catch_up()
        firsts.append(producer.envelopes()[0]["position"])

    assert firsts[1:] == [1, 1]
    assert firsts[0] > 1  # the first destination resumed where it stood
    with positions.transaction() as tx:
        assert set(relay_positions(tx).values()) == {head(fleet)}
        assert len(relay_positions(tx)) == 3
        assert list(relay_positions(tx, HERE)) == ["relay@test-cluster/partnerfleet"]


def test_positions_of_one_destination_never_match_another_by_a_wildcard() -> None:
    """`_` in a cluster id or prefix is literal: `a_b` is not `aXb`; old names are not read."""
    positions = SQLiteViewDB(":memory:")
    one, other = Destination("a_b", "p_q"), Destination("aXb", "pXq")
    relay_of(in_memory_fleet(), Producer(), positions, other).position()
    with positions.transaction() as tx:
        write_position(tx, "relay:kafka", 99)  # a position recorded before destinations

        assert relay_positions(tx, one) == {}
        assert relay_positions(tx) == {"relay@aXb/pXq": 0}
    assert Destination("cluster id:with/odd*chars", "p").id == "cluster_id_with_odd_chars/p"


class FlakyRelay(Relay):
    """Its reads fail `failures` times (the database went away), then work."""

    failures = 2

    def _send_after(self, position: int) -> Any:
        if self.failures:
            self.failures -= 1
            raise sqlite3.OperationalError("database is locked")
        return super()._send_after(position)


def test_the_relay_loop_outlives_a_database_error_and_says_why_while_it_lasts() -> None:
    """Kind 6: run() backs off and tries again; it never ends on an error."""
    fleet, producer = in_memory_fleet(), Producer()
    partner(fleet, "LOC-1")
    relay = FlakyRelay(
        fleet,
        SQLiteViewDB(":memory:"),
        "unused:9092",
        producer_factory=lambda: producer,
        destination=HERE,
    )
    errors: list[str] = []
    thread = threading.Thread(target=relay.run, kwargs={"poll_seconds": 0.01})

    thread.start()
    deadline = time.monotonic() + 30
    while relay.lag() != 0 and time.monotonic() < deadline:
        errors.append(relay.last_error or "")
        time.sleep(0.05)
    relay.stop()
    thread.join(timeout=10)

    assert relay.lag() == 0
    assert "OperationalError: database is locked" in errors
    assert relay.last_error is None
    assert not thread.is_alive()


def test_notices_and_compressed_records_fit_the_envelope_contract() -> None:
    """The published envelope schema holds a notice: payload null, parked reason and size."""
    fleet, producer = in_memory_fleet(), Producer(limit=20_000)
    big_delivery(fleet, 5_000)
    fleet.receive_e2open_batch(OPS, "b-ok", [report("PC1")])
    relay_of(fleet, producer).catch_up()

    for envelope in producer.envelopes():
        wrapped = Envelope.model_validate(envelope)
        assert (wrapped.payload is None) == (wrapped.parked is not None)
