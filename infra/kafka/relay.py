"""The Kafka relay: follows the event store and publishes every domain event, at least once.

It reads a batch of notifications after its recorded position, sends one envelope per
event (topic per aggregate type, key = aggregate id), and records the batch's last position
only once the broker has acknowledged every record of it (`acks=all`, idempotent producer).
A crash between sending and recording means a resend, never a gap. While the broker or the
database is away, commands go on; the relay retries with growing pauses and logs its lag.

Positions belong to a destination, the Kafka cluster and the topic prefix, and to a shard
of the aggregates (`infra/kafka/shards.py`); a new destination receives the whole history. An
event that cannot be published as it is (too large, refused for good, unreadable) is
compressed or parked with its reason (`infra/kafka/parking.py`): the events behind it flow on.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import psycopg
import structlog
from domain.base import FleetAggregate
from handlers import PartnerFleet
from kafka import KafkaProducer
from kafka.errors import KafkaError, MessageSizeTooLargeError

from infra.kafka.batches import BatchTicket
from infra.kafka.clients import (
    MAX_MESSAGE_BYTES,
    connect_producer,
    domain_topics,
    ensure_topics,
    find_destination,
    producer_config,
)
from infra.kafka.envelope import Record, envelope_record, shape_of_topic, stored_record, topic_for
from infra.kafka.parking import PARKED_DDL, PERMANENT_RECORD_ERRORS, ParkingLot, Send, send_notice
from infra.kafka.shards import SINGLE, Destination, Shard, safe_start
from infra.loops import BackOff, describe
from infra.storage.event_rows import EventRow, PostgresRows, row_reader
from infra.storage.start_ddl import creates_tables, start_ddl
from infra.storage.tracking import TRACKING_DDL, read_position, write_position
from infra.storage.viewdb import ViewDB

__all__ = ["Relay", "connect_producer", "domain_topics", "ensure_topics", "producer_config"]

log = structlog.get_logger("partnerfleet.relay")

MAX_BACK_OFF_SECONDS = 30.0
ACK_TIMEOUT_SECONDS = 35.0  # a little over the producer's delivery_timeout_ms


@dataclass
class InFlight:
    """A batch sent but not yet known to be acknowledged."""

    last: int  # notification id of the batch's last stored event
    passed: int  # stored events the batch covers, other shards' included
    futures: list[Any]
    rows: list[EventRow]  # the stored event of each future
    tickets: list[BatchTicket]  # the rest: per record batch, its records' stored events


class Relay:
    """Publishes the event store (or one shard of it) to Kafka; positions live in pf_tracking,
    one per destination and shard; parked events in pf_relay_parked."""

    def __init__(
        self,
        fleet: PartnerFleet,
        positions: ViewDB,
        bootstrap: str,
        *,
        batch_size: int = 5_000,
        prefix: str = "partnerfleet",
        producer_factory: Callable[[], KafkaProducer] | None = None,  # creates the topics too
        shard: Shard = SINGLE,
        max_in_flight: int = 2,
        destination: Destination | None = None,  # None: found on the broker when connecting
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        self.fleet, self.positions, self.bootstrap = fleet, positions, bootstrap
        self.batch_size, self.prefix, self.shard = batch_size, prefix, shard
        self.max_in_flight, self.destination = max_in_flight, destination
        self._given = destination  # None: found on the broker, again after each broker error
        self._recheck = False  # the broker was away: it may have come back as new topics
        self._make_producer = producer_factory or (
            lambda: connect_producer(bootstrap, prefix, max_message_bytes)
        )
        self._producer: KafkaProducer | None = None
        self._topics: dict[str, str] = {}  # stored event topic → Kafka topic
        mapper = fleet.mapper
        self._plain_json = mapper.cipher is None and mapper.compressor is None
        self._read = row_reader(fleet.recorder)
        self._reads_ahead = isinstance(self._read, PostgresRows)  # a pool: any thread may read
        self._reader: ThreadPoolExecutor | None = None  # reads the next batch ahead
        self._ahead: tuple[int, Future[Sequence[EventRow]]] | None = None  # (after, rows)
        self._stop = threading.Event()
        self._tracking: str | None = None  # this shard's row at its destination, once known
        self._lot = ParkingLot(positions)  # events parked at this destination
        self.published = 0  # records the broker acknowledged, since this relay was made
        self.last_error: str | None = None  # why the last pass failed; None once one succeeds
        with start_ddl(positions, creates_tables(fleet.env)) as tx:
            tx.execute(TRACKING_DDL)
            tx.execute(PARKED_DDL)

    def tracking_name(self) -> str:
        """This shard's row of pf_tracking at its destination (found on the broker if not
        given: raises KafkaError while the broker cannot be reached). Found again after a
        broker error: a broker that came back without its topics is a new destination."""
        if self._tracking is None or self._recheck:
            destination = self._given or find_destination(self.bootstrap, self.prefix)
            name = destination.tracking_name(self.shard)
            with self.positions.ddl() as tx:
                if not tx.query("SELECT 1 FROM pf_tracking WHERE view = ?", (name,)):
                    write_position(tx, name, safe_start(tx, destination))
                self._lot.open(tx, destination.id)
            self.destination, self._tracking, self._recheck = destination, name, False
        return self._tracking

    def position(self) -> int:
        """The last notification id up to which the broker acknowledged this shard's events
        (at the destination last found, while the broker is away)."""
        name = self._tracking or self.tracking_name()
        with self.positions.transaction() as tx:
            return read_position(tx, name)

    def lag(self) -> int | None:
        """Stored events this shard has not yet moved past; None until the destination is
        known (a relay that has not reached its broker yet cannot say where it stands)."""
        if self._tracking is None and self.destination is None:
            return None
        return (self.fleet.recorder.max_notification_id() or 0) - self.position()

    def relay_once(self) -> int:
        """Publish one batch and wait for the broker; returns the stored events moved past."""
        self.tracking_name()
        batch = self._send_after(self.position())
        if batch is None:
            return 0
        self._require_producer().flush(timeout=ACK_TIMEOUT_SECONDS)
        self._settle(batch)
        return batch.passed

    def catch_up(self, progress: Callable[[int], None] | None = None) -> int:
        """Publish until nothing new is stored; returns the stored events moved past.

        Up to `max_in_flight` batches are sent ahead of the oldest unacknowledged one, so
        reading and encoding go on while the broker acknowledges. Positions are still
        recorded in order, each only after its whole batch was acknowledged; `progress` is
        told the stored events each recorded batch moved past.
        """
        in_flight: deque[InFlight] = deque()
        self.tracking_name()
        after, passed = self.position(), 0
        while not self._stop.is_set() and (batch := self._send_after(after)):
            in_flight.append(batch)
            after, passed = batch.last, passed + batch.passed
            while len(in_flight) > self.max_in_flight:
                self._settle(in_flight.popleft(), progress)
        if in_flight:
            self._require_producer().flush(timeout=ACK_TIMEOUT_SECONDS)
            while in_flight:
                self._settle(in_flight.popleft(), progress)
        return passed

    def _rows_after(self, position: int) -> Sequence[EventRow]:
        """The next batch's rows, read ahead (on PostgreSQL) while the last batch was encoded
        if that one was full; then the batch after it is read ahead in turn. A read ahead
        returns a prefix of what a later read would (notification ids commit in order), so
        it is never stale, only perhaps shorter; its errors are raised here, as the read's."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[0] == position:
            rows = ahead[1].result()
        else:
            rows = self._read(position, self.batch_size)
        if self._reads_ahead and len(rows) == self.batch_size and not self._stop.is_set():
            if self._reader is None:
                self._reader = ThreadPoolExecutor(1, thread_name_prefix="relay-read")
            after = rows[-1].position
            self._ahead = (after, self._reader.submit(self._read, after, self.batch_size))
        return rows

    def _send_after(self, position: int) -> InFlight | None:
        rows = self._rows_after(position)
        if not rows:
            return None
        producer = self._require_producer()
        send = producer.send
        appender = producer.appender() if hasattr(producer, "appender") else None
        if appender is not None:
            append = appender.append
        else:  # a plain KafkaProducer: a future per record
            send_enveloped = getattr(producer, "send_enveloped", None) or self._plain_send(send)

            def append(topic: str, key: bytes, value: bytes, headers: Any, row: Any) -> Any:
                return send_enveloped(topic, key, value, headers)

        owns, topic_of, record_of = self.shard.owns, self._topic, self._record_of
        careful = bool(self._lot.reasons)
        futures, sent = [], []
        try:
            for row in rows:
                if not owns(row.aggregate_id):
                    continue
                if careful:
                    future = self._send(send, row)
                else:
                    try:  # the hot path: most events go out as they are
                        key, value, headers = record_of(row)
                        future = append(topic_of(row.topic), key, value, headers, row)
                        if future is None:  # a ticket of the appender tracks it
                            continue
                    except Exception:  # too large, unreadable, or the broker away: case by case
                        future = self._send(send, row)
                if future is not None:
                    futures.append(future)
                    sent.append(row)
        finally:
            tickets = appender.close() if appender is not None else []
        return InFlight(rows[-1].position, len(rows), futures, sent, tickets)

    @staticmethod
    def _plain_send(send: Send) -> Callable[[str, bytes, bytes, list[tuple[str, bytes]]], Any]:
        """RelayProducer.send_enveloped's signature over a plain KafkaProducer's send."""

        def send_enveloped(
            topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]
        ) -> Any:
            return send(topic, key=key, value=value, headers=headers)

        return send_enveloped

    def _send(self, send: Send, row: EventRow) -> Any:
        """Send one stored event; None when it was parked with nothing to send in its place."""
        try:
            topic = self._topic(row.topic)
            record = self._record_of(row)
        except Exception as error:  # whatever the stored event holds, go on
            self._lot.park(row, None, f"the relay cannot encode it: {error!r}")
            return None
        reasons = self._lot.reasons
        if reasons and row.position in reasons:  # resent after the broker refused it
            return send_notice(send, topic, record, reasons[row.position])
        try:
            return send(topic, key=record[0], value=record[1], headers=record[2])
        except MessageSizeTooLargeError:
            return self._lot.send_oversized(send, row, topic, record)

    def _record_of(self, row: EventRow) -> Record:
        if self._plain_json:
            record = stored_record(
                row.topic, row.aggregate_id, row.version, row.state, row.position
            )
            if record is not None:
                return record
        event = self.fleet.mapper.to_domain_event(row.stored_event())
        assert isinstance(event, FleetAggregate.Event)
        return envelope_record(event, row.position)

    def _topic(self, stored_topic: str) -> str:
        """The Kafka topic of a stored event's aggregate type."""
        topic = self._topics.get(stored_topic)
        if topic is None:
            aggregate = shape_of_topic(stored_topic).aggregate
            topic = self._topics[stored_topic] = topic_for(aggregate, self.prefix)
        return topic

    def _settle(self, batch: InFlight, progress: Callable[[int], None] | None = None) -> None:
        refused, appended = 0, 0
        for ticket in batch.tickets:
            appended += len(ticket.entries)
            for row, error in ticket.failures(ACK_TIMEOUT_SECONDS):
                if not isinstance(error, PERMANENT_RECORD_ERRORS):
                    raise error  # as future.get raises it: this batch is sent again
                self._refused(row, error)
                refused += 1
        for row, future in zip(batch.rows, batch.futures, strict=True):
            try:
                future.get(timeout=ACK_TIMEOUT_SECONDS)  # raises if refused, or silent
            except PERMANENT_RECORD_ERRORS as error:  # this record, never; the rest, go on
                self._refused(row, error)
                refused += 1
        self._record(batch.last)
        self.published += len(batch.futures) + appended - refused
        if progress is not None:
            progress(batch.passed)

    def _refused(self, row: EventRow, error: Exception) -> None:
        record = self._record_of(row)
        reason = f"the broker refused it: {error!r}"
        self._lot.park(row, record, reason)
        stand_in = send_notice(
            self._require_producer().send, self._topic(row.topic), record, reason
        )
        if stand_in is not None:
            stand_in.get(timeout=ACK_TIMEOUT_SECONDS)

    def _record(self, position: int) -> None:
        with self.positions.transaction() as tx:
            write_position(tx, self.tracking_name(), position)

    def _require_producer(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = self._make_producer()
        return self._producer

    def run(self, poll_seconds: float = 0.2) -> None:
        """Relay until `stop()`. Never ends on an error: while the broker or the database is
        unreachable it backs off (up to 30 s), logs why and its lag, and tries again."""
        back_off = BackOff(first=0.5, limit=MAX_BACK_OFF_SECONDS)
        try:
            while not self._stop.is_set():
                try:
                    passed, pause = self.catch_up(), poll_seconds
                    self.last_error = None
                    back_off.reset()
                except Exception as error:  # a follower must outlive any outage
                    passed, pause = 0, back_off.next()
                    self._failed(error, pause)
                if not passed:
                    self._stop.wait(pause)
        finally:
            # A batch under way when stop() came may have made a producer or a reader after
            # stop() closed them (session 16 attack): close those too.
            self._drop_producer()
            self._drop_reader()

    def _failed(self, error: Exception, pause: float) -> None:
        self.last_error = describe(error)
        if isinstance(error, KafkaError):
            self._drop_producer()
            self._recheck = self._given is None
            event = "relay_broker_unavailable"
        elif isinstance(error, psycopg.Error | sqlite3.Error):
            event = "relay_store_unavailable"
        else:
            event = "relay_failed"
        log.warning(
            event,
            error=repr(error),
            shard=self.shard.label or "all",
            destination=self.destination.id if self.destination else None,
            lag=self._lag_if_known(),
            retry_in_seconds=pause,
            exc_info=event == "relay_failed",
        )

    def _lag_if_known(self) -> int | None:
        with contextlib.suppress(Exception):  # the store may be what is away
            return self.lag()
        return None

    @property
    def parked(self) -> int:
        """Events this relay parked since it was made (a metric: relay-lag shows them all)."""
        return self._lot.count

    def stop(self) -> None:
        """Ask `run()` to return and close the producer (and the reader thread)."""
        self._stop.set()
        self._drop_producer()
        self._drop_reader()

    def _drop_reader(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.shutdown(wait=False, cancel_futures=True)

    def _drop_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            producer.close(timeout=1)
