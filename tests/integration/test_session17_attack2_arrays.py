"""Session 17, attack 2: packed arrays (infra/storage/pg_arrays.py) with edge values
round-trip exactly through PostgreSQL, or are refused whole; never stored altered
(docs/decisions.md, "Issue 11, attack on the command path changes")."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from infra.storage.pg_arrays import (
    packed_bytea,
    packed_int4,
    packed_int8,
    packed_text,
    packed_uuid,
    use_packed_arrays,
)
from tests.conftest import POSTGRES_DSN

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def conn() -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as connection:
        use_packed_arrays(connection)
        yield connection


def one(conn: psycopg.Connection[Any], sql: str, value: object) -> Any:
    row = conn.execute(sql, {"v": value}).fetchone()
    assert row is not None
    return row[0]


def test_session17_a_text_with_a_nul_byte_is_refused_never_cut(
    conn: psycopg.Connection[Any],
) -> None:
    """PostgreSQL's text holds no NUL: the array is refused whole, not stored shortened."""
    with pytest.raises(psycopg.DataError):
        one(conn, "SELECT %(v)b::text[]", packed_text(["ok", "a\x00b"]))


def test_session17_a_lone_surrogate_is_refused_before_sending() -> None:
    with pytest.raises(UnicodeEncodeError):
        packed_text(["\ud800"])


def test_session17_edge_texts_arrive_exactly(conn: psycopg.Connection[Any]) -> None:
    texts = [
        "\U0001d518\U0001d52b \U0001f680\U0001f3f3\ufe0f\u200d\U0001f308",
        "e\u0301",
        "\u00e9",
        "\uffff\U0010ffff",
        "\t\r\n\\\"'{},",
        "NULL",
    ]
    assert one(conn, "SELECT %(v)b::text[]", packed_text(texts)) == texts
    assert one(conn, "SELECT array_length(%(v)b::text[], 1)", packed_text(texts)) == len(texts)


def test_session17_huge_and_many_values_arrive_exactly(conn: psycopg.Connection[Any]) -> None:
    """A 16 MiB bytea, 5,000-element arrays of every type, int extremes."""
    huge = bytes(range(256)) * (16 * 4096)
    many = [bytes([i % 256]) * (i % 7) for i in range(5000)]
    got = one(conn, "SELECT %(v)b::bytea[]", packed_bytea([huge, *many]))
    assert bytes(got[0]) == huge
    assert [bytes(b) for b in got[1:]] == many
    ints4 = [(-1) ** i * (2**31 - 1 - i) for i in range(5000)] + [-(2**31)]
    assert one(conn, "SELECT %(v)b::int[]", packed_int4(ints4)) == ints4
    ints8 = [(-1) ** i * (2**63 - 1 - i) for i in range(5000)] + [-(2**63)]
    assert one(conn, "SELECT %(v)b::bigint[]", packed_int8(ints8)) == ints8
    ids = [uuid.uuid4() for _ in range(5000)]
    assert one(conn, "SELECT %(v)b::uuid[]", packed_uuid(ids)) == ids
    texts = [str(i) * (i % 5) for i in range(5000)]
    assert one(conn, "SELECT %(v)b::text[]", packed_text(texts)) == texts


def test_session17_buffers_other_than_bytes_arrive_as_their_bytes(
    conn: psycopg.Connection[Any],
) -> None:
    """As documented, "bytes or any buffer": a bytearray and memoryviews (of bytes, of a
    wider format)."""
    import array

    wide = memoryview(array.array("i", [1, 2, 3]))
    values: list[bytearray | memoryview] = [bytearray(b"ab\x00"), memoryview(b"xyz"), wide]
    got = one(conn, "SELECT %(v)b::bytea[]", packed_bytea(values))
    assert [bytes(b) for b in got] == [b"ab\x00", b"xyz", wide.tobytes()]
