"""Session 17: arrays sent in PostgreSQL's binary form (infra/storage/pg_arrays.py) arrive
as the values they were built from, in order, each element type, empty arrays too. (The
recorder sends its statements' parameters so: tests/integration/test_group_commit.py and
test_issue_11_attack.py run them.)"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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

ROUND_TRIP = (
    "SELECT %(int4)b::int[], %(int8)b::bigint[], %(text)b::text[], %(bytea)b::bytea[],"
    " %(uuid)b::uuid[]"
)


@pytest.fixture(scope="module")
def conn() -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as connection:
        use_packed_arrays(connection)
        use_packed_arrays(connection)  # once is enough; twice changes nothing
        yield connection


def round_trip(
    conn: psycopg.Connection[Any],
    int4: list[int],
    int8: list[int],
    text: list[str],
    bytea: list[bytes],
    uuids: list[uuid.UUID],
) -> tuple[Any, ...]:
    parameters = {
        "int4": packed_int4(int4),
        "int8": packed_int8(int8),
        "text": packed_text(text),
        "bytea": packed_bytea(bytea),
        "uuid": packed_uuid(uuids),
    }
    row = conn.execute(ROUND_TRIP, parameters, prepare=True).fetchone()
    assert row is not None
    return tuple(row)


def test_session_17_packed_arrays_arrive_as_built(conn: psycopg.Connection[Any]) -> None:
    ids = [uuid.uuid4(), uuid.UUID(int=0), uuid.UUID(int=2**128 - 1)]
    sent = (
        [0, -1, 2**31 - 1, -(2**31)],
        [0, -(2**63), 2**63 - 1, 7],
        ["a", "", "Zürich 東京 🚀", "x" * 5000],
        [b"", b"\x00\x01\xff", b"{}" * 3000],
        ids,
    )
    got = round_trip(conn, *sent)
    assert [bytes(b) for b in got[3]] == sent[3]
    assert (got[0], got[1], got[2], got[4]) == (sent[0], sent[1], sent[2], sent[4])


def test_session_17_empty_packed_arrays_arrive_empty(conn: psycopg.Connection[Any]) -> None:
    assert round_trip(conn, [], [], [], [], []) == ([], [], [], [], [])


def test_session_17_an_int4_out_of_range_is_refused_before_sending() -> None:
    import struct

    with pytest.raises(struct.error):
        packed_int4([2**31])


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.integers(-(2**31), 2**31 - 1), max_size=5),
    st.lists(st.integers(-(2**63), 2**63 - 1), max_size=5),
    st.lists(
        st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00")),
        max_size=5,
    ),
    st.lists(st.binary(max_size=40), max_size=5),
    st.lists(st.uuids(), max_size=5),
)
def test_session_17_any_packed_arrays_round_trip(
    conn: psycopg.Connection[Any],
    int4: list[int],
    int8: list[int],
    text: list[str],
    bytea: list[bytes],
    uuids: list[uuid.UUID],
) -> None:
    got = round_trip(conn, int4, int8, text, bytea, uuids)
    assert (got[0], got[1], got[2], got[4]) == (int4, int8, text, uuids)
    assert [bytes(b) for b in got[3]] == bytea
