"""Whole relay batches into kafka-python's record batches, one acknowledgement per batch.

kafka-python's `send` (and `RelayProducer.send_enveloped`) append one record at a time: a
lock, generic type checks, a varint at a time, and a FutureRecordMetadata per record that the
sender completes and the relay waits on. For the relay's own records (bytes key and value,
(str, bytes) headers, keyed) `RecordAppender` writes each record's bytes (v2 record format,
the same bytes DefaultRecordBatchBuilder writes) straight into the partition's open
ProducerBatch, under the same lock, and hands back one `BatchTicket` per record batch it
wrote into: the batch's own produce future, with the batch index of each record. The sender,
the sequence numbers of the idempotent producer, retries and expiry are kafka-python's, as
for any batch; only a batch's first record (and a record that may be too large) goes through
`send_enveloped`, which opens the batch. A batch the broker finds too large is split by
kafka-python per record future: `materialize_futures` gives a batch one per record first.
Pinned to kafka-python 3.0.12 (tests/integration/test_relay_producer.py compares the wire).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from kafka.errors import KafkaTimeoutError
from kafka.producer.future import FutureRecordMetadata
from kafka.record.util import encode_varint
from kafka.structs import TopicPartition

Headers = list[tuple[str, bytes]]
SendEnveloped = Callable[[str, bytes, bytes, Headers], Any]  # RelayProducer.send_enveloped

_TABLE = 1 << 14  # varints of 0 .. 16,383 precomputed: lengths, deltas and offsets of a batch


def _slow_varint(value: int) -> bytes:
    out = bytearray()
    encode_varint(value, out.append)
    return bytes(out)


_VARINTS = [_slow_varint(n) for n in range(_TABLE)]


def varint(value: int) -> bytes:
    """Kafka's zigzag varint of `value` (any int), as kafka.record.util.encode_varint writes it."""
    return _VARINTS[value] if 0 <= value < _TABLE else _slow_varint(value)


def encode_record(
    offset_delta: int,
    timestamp_delta: int,
    key: bytes,
    value: bytes,
    headers: Headers,
    names: dict[str, bytes],
) -> bytes:
    """One record of a v2 record batch, its length varint first: the bytes
    DefaultRecordBatchBuilder.append writes for it. `names` caches each header name's
    encoded length and UTF-8 bytes (the relay's eleven names repeat on every record)."""
    parts = [
        b"\x00",  # attributes
        varint(timestamp_delta),
        varint(offset_delta),
        varint(len(key)),
        key,
        varint(len(value)),
        value,
        varint(len(headers)),
    ]
    for name, data in headers:
        prefix = names.get(name)
        if prefix is None:
            raw = name.encode()
            prefix = names[name] = varint(len(raw)) + raw
        parts += (prefix, varint(len(data)), data)
    body = b"".join(parts)
    return varint(len(body)) + body


class BatchTicket:
    """The records one RecordAppender wrote into one of the producer's record batches: their
    batch indexes and what the caller tracks them by (`items`)."""

    __slots__ = ("batch", "entries", "split")

    def __init__(self, batch: Any, split: Mapping[Any, list[Any]]) -> None:
        self.batch = batch  # kafka-python's ProducerBatch
        self.entries: list[tuple[int, Any]] = []  # (batch index, the caller's item)
        self.split = split  # RelayProducer.split_futures: split batch → its records' futures

    def failures(self, timeout: float) -> list[tuple[Any, Exception]]:
        """Wait until the broker answered for the batch (or for the batches it was split into);
        the items whose record it refused, with the error `FutureRecordMetadata.get` raises
        for it, in batch order. Raises KafkaTimeoutError after `timeout` seconds."""
        produced = self.batch.produce_future
        if not produced.wait(timeout):
            raise KafkaTimeoutError(f"Timeout after waiting for {timeout} secs.")
        if produced.is_done:  # completed, also when failed: its value maps index → error
            errors = produced.value[2]
            return [] if errors is None else [(item, errors(i)) for i, item in self.entries]
        futures = self.split[self.batch]  # split: each record's future, rebound to a part
        return [(item, e) for i, item in self.entries if (e := _failure(futures[i], timeout))]


def _failure(future: Any, timeout: float) -> Exception | None:
    try:
        future.get(timeout=timeout)
    except KafkaTimeoutError:
        raise
    except Exception as error:  # the record's own refusal, as send's future raises it
        return error
    return None


def materialize_futures(batch: Any) -> list[Any]:
    """Give a batch one FutureRecordMetadata per record, in batch order, as kafka-python's
    split (MESSAGE_TOO_LARGE) expects: the futures `send` made are kept, the records a
    RecordAppender wrote get one each. Returns the list (the batch's `_record_futures`)."""
    have = {future.args[0]: future for future in batch._record_futures}
    futures = [
        have.get(index) or FutureRecordMetadata(batch.produce_future, index, -1, None, -1, -1, -1)
        for index in range(batch.record_count)
    ]
    batch._record_futures = futures
    return futures


class RecordAppender:
    """Appends one relay batch's records to a RelayProducer; `close()` wakes the sender and
    returns the tickets. Not thread-safe: one appender per relay batch, in one thread."""

    def __init__(self, producer: Any, send_enveloped: SendEnveloped, fits: int) -> None:
        self._accumulator = producer._accumulator
        self._metadata = producer._metadata
        self._sender = producer._sender
        self._for_key = producer.config["partitioner"].for_key
        self._split = producer.split_futures
        self._send_enveloped, self._fits = send_enveloped, fits
        self._names: dict[str, bytes] = {}
        self._partitions: dict[str, Any] = {}
        self._tps: dict[tuple[str, int], TopicPartition] = {}
        self._tickets: dict[int, BatchTicket] = {}  # id(ProducerBatch) → its ticket
        self._wake = False

    def append(self, topic: str, key: bytes, value: bytes, headers: Headers, item: Any) -> Any:
        """Append one record; None when a ticket tracks it as `item`, else its own future (a
        batch's first record; through `send_enveloped` a record that may be too large or of a
        topic whose metadata is not known yet). Raises what `send` raises for the record."""
        partitions = self._partitions.get(topic)
        if partitions is None:
            partitions = self._partitions[topic] = self._metadata.partitions_for_topic(topic)
        if not partitions or 2 * len(value) + len(key) > self._fits:
            return self._opening(topic, key, value, headers)
        partition = self._for_key(topic, partitions, key)
        tp = self._tps.get((topic, partition))
        if tp is None:
            tp = self._tps[topic, partition] = TopicPartition(topic, partition)
        if self._into_open_batch(tp, key, value, headers, item):
            return None
        # a new batch, as send_enveloped opens it; the sender is woken once, by close()
        future = self._accumulator.append(tp, None, key, value, headers)[0]
        self._wake = True
        return future

    def _into_open_batch(
        self, tp: TopicPartition, key: bytes, value: bytes, headers: Headers, item: Any
    ) -> bool:
        accumulator = self._accumulator
        with accumulator._tp_lock(tp):
            dq = accumulator._batches[tp]
            if not dq or accumulator._closed:  # closed: send raises what it raises
                return False
            batch = dq[-1]
            records = batch.records
            if records._closed:  # drained by the sender meanwhile
                return False
            builder = records._builder
            index = records._next_offset
            now = time.time_ns() // 1_000_000
            encoded = encode_record(
                index, now - builder._first_timestamp, key, value, headers, self._names
            )
            buffer = builder._buffer
            if len(buffer) + len(encoded) > builder._batch_size:
                return False
            buffer += encoded
            builder._num_records += 1
            builder._last_offset = index
            builder._max_timestamp = max(builder._max_timestamp, now)
            records._next_offset = index + 1
            batch.last_append = time.monotonic()
            batch.max_record_size = max(batch.max_record_size, len(encoded))
        ticket = self._tickets.get(id(batch))
        if ticket is None:
            ticket = self._tickets[id(batch)] = BatchTicket(batch, self._split)
        ticket.entries.append((index, item))
        self._wake = True
        return True

    def _opening(self, topic: str, key: bytes, value: bytes, headers: Headers) -> Any:
        return self._send_enveloped(topic, key, value, headers)

    def close(self) -> list[BatchTicket]:
        """Wake the sender for what was appended; the tickets, in the order first written."""
        if self._wake:
            self._sender.wakeup()
        return list(self._tickets.values())
