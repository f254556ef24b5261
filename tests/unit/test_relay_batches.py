"""The relay's record encoder writes the bytes kafka-python's batch builder writes (issue 11)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from kafka.record.default_records import DefaultRecordBatchBuilder
from kafka.record.memory_records import MemoryRecords
from kafka.record.util import encode_varint

from infra.kafka.batches import encode_record, varint

HEADER_NAMES = st.sampled_from(["event_id", "type", "position", "x", "ünïcode", "n" * 200])
HEADERS = st.lists(st.tuples(HEADER_NAMES, st.binary(max_size=300)), max_size=12)
# lengths around the varint's 1/2/3-byte steps (64, 8,192) and past the precomputed table
SIZES = st.sampled_from([0, 1, 63, 64, 65, 8_191, 8_192, 8_193, 16_383, 16_384, 70_000])


def builder_bytes(offset: int, delta: int, key: bytes, value: bytes, headers: list) -> bytes:  # type: ignore[type-arg]
    """What DefaultRecordBatchBuilder.append writes for the record after `offset` (>= 1)
    earlier ones; the first record of a batch sets its base timestamp (RecordAppender never
    writes a first record)."""
    builder = DefaultRecordBatchBuilder(2, 0, False, -1, -1, -1, batch_size=1 << 24)
    first = 1_700_000_000_000
    for index in range(offset):  # earlier records, so the offset delta is `offset`
        builder.append(index, first, b"k", b"v", [])
    before = len(builder._buffer)
    builder.append(offset, first + delta, key, value, headers)
    return bytes(builder._buffer[before:])


@given(st.integers(min_value=-(2**40), max_value=2**40))
def test_issue_11_varint_is_kafka_pythons_zigzag_varint(value: int) -> None:
    expected = bytearray()
    encode_varint(value, expected.append)
    assert varint(value) == bytes(expected)


@given(
    st.integers(min_value=1, max_value=40),
    st.integers(min_value=-5_000, max_value=10**7),
    st.binary(min_size=1, max_size=60),
    SIZES,
    HEADERS,
)
def test_issue_11_encode_record_writes_the_builders_bytes(
    offset: int, delta: int, key: bytes, size: int, headers: list[tuple[str, bytes]]
) -> None:
    value = bytes(range(256)) * (size // 256) + b"v" * (size % 256)
    names: dict[str, bytes] = {}
    ours = encode_record(offset, delta, key, value, headers, names)
    assert ours == builder_bytes(offset, delta, key, value, headers)
    assert encode_record(offset, delta, key, value, headers, names) == ours  # names cached


def test_issue_11_a_batch_of_encoded_records_reads_back_as_written() -> None:
    """Records written into a builder's buffer as RecordAppender does decode with their
    keys, values, headers and offsets (checksum included)."""
    builder = DefaultRecordBatchBuilder(2, 0, False, 7, 0, 0, batch_size=1 << 20)
    first = 1_700_000_000_000
    builder.append(0, first, b"key-0", b"value-0", [("h", b"0")])
    names: dict[str, bytes] = {}
    for index in range(1, 50):
        builder._buffer += encode_record(
            index,
            index,
            f"key-{index}".encode(),
            b"value-%d" % index,
            [("h", b"%d" % index)],
            names,
        )
        builder._num_records += 1
        builder._last_offset = index
        builder._max_timestamp = first + index
    [batch] = list(MemoryRecords(bytes(builder.build())))
    assert batch.validate_crc()
    decoded = [(r.offset, r.key, r.value, r.headers, r.timestamp) for r in batch]
    assert decoded == [
        (i, f"key-{i}".encode(), b"value-%d" % i, [("h", b"%d" % i)], first + i) for i in range(50)
    ]
