"""A load's statement sent on libpq directly, on a pooled connection (issue 11, session 20):
`infra.storage.pg_loads.load_rows` reads what psycopg's cursor reads for the same statement
(a device past its snapshot, one without a snapshot, an unknown id; one id or an array of
them), prepares its statement again when psycopg (or anyone) deallocated it, steps aside
on a connection that is not idle in autocommit mode, and a load on a lost connection is
retried on a fresh one as before."""

from __future__ import annotations

from collections.abc import Callable
from functools import reduce
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg.rows import tuple_row

from handlers import PartnerFleet
from handlers.stored_loads import _pg_statement, select_latest
from infra.storage import pg_recorder
from infra.storage.pg_conn import STORE
from infra.storage.pg_loads import dollar_one, load_rows
from tests.integration.streams import recorder_of
from tests.pg_faults import terminate_backends
from tests.scenarios import loads_history

pytestmark = pytest.mark.postgres


def seeded_store(fleet: PartnerFleet) -> tuple[Any, Any, list[UUID]]:
    """The fleet's recorder on `loads_history`, its snapshots' recorder and the ids."""
    recorder = recorder_of(fleet)
    snapshots = fleet.snapshots.recorder if fleet.snapshots else None
    return recorder, snapshots, loads_history(fleet)


def by_cursor(conn: psycopg.Connection[Any], statement: bytes, parameter: Any) -> list[Any]:
    with conn.cursor(row_factory=tuple_row, binary=True) as cursor:
        return cursor.execute(statement, (parameter,)).fetchall()


def ours_prepared(conn: psycopg.Connection[Any]) -> set[str]:
    with conn.cursor(row_factory=tuple_row) as cursor:
        rows = cursor.execute(
            "SELECT name FROM pg_prepared_statements WHERE name LIKE 'partnerfleet_load%'"
        ).fetchall()
    return {row[0] for row in rows}


def test_session20_direct_load_rows_are_psycopgs_rows(
    fleets: Callable[[], PartnerFleet],
) -> None:
    fleet = fleets()
    recorder, snapshots, ids = seeded_store(fleet)
    one = _pg_statement(recorder, snapshots, one=True)
    many = _pg_statement(recorder, snapshots)
    with recorder.datastore.get_connection() as conn:
        for aggregate_id in ids:
            direct = load_rows(conn, one, [aggregate_id], one=True)
            assert direct == by_cursor(conn, one, aggregate_id)
            assert [type(v) for v in (direct or [(True, ids[0], 1, "", b"")])[0]] == [
                bool,
                UUID,
                int,
                str,
                bytes,
            ]
        direct = load_rows(conn, many, ids, one=False)
        assert direct is not None
        assert sorted(direct, key=repr) == sorted(by_cursor(conn, many, ids), key=repr)
        assert any(row[0] for row in direct)  # S1's snapshot
        assert {row[1] for row in direct} == set(ids[:2])
        assert len(ours_prepared(conn)) == 2
    for aggregate_id in ids[:2]:  # the repository, on this path, loads a replay's state
        loaded = fleet.repository.get(aggregate_id)
        events: list[Any] = list(fleet.events.get(aggregate_id))
        assert vars(loaded) == vars(reduce(lambda a, e: e.mutate(a), events, None))


def test_session20_a_deallocated_load_statement_is_prepared_again(
    fleets: Callable[[], PartnerFleet],
) -> None:
    """psycopg's DEALLOCATE ALL after a rollback (its own prepared statements and ours
    go), or anyone's DEALLOCATE by name: the next load prepares it again and reads the
    same rows, once."""
    recorder, snapshots, ids = seeded_store(fleets())
    one = _pg_statement(recorder, snapshots, one=True)
    with recorder.datastore.get_connection() as conn:
        expected = load_rows(conn, one, ids[:1], one=True)
        assert expected
        names = ours_prepared(conn)
        assert len(names) == 1
        # psycopg prepares a statement of its own in a transaction, then rolls it back.
        with conn.transaction(force_rollback=True):
            conn.execute("SELECT 1", prepare=True)
        assert ours_prepared(conn) == set()
        assert load_rows(conn, one, ids[:1], one=True) == expected
        assert ours_prepared(conn) == names
        conn.execute(f"DEALLOCATE {next(iter(names))}")
        assert load_rows(conn, one, ids[:1], one=True) == expected
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert list(select_latest(recorder, snapshots, ids[:1])) == ids[:1]


def test_session20_a_connection_in_a_transaction_is_left_to_psycopg(
    fleets: Callable[[], PartnerFleet],
) -> None:
    recorder, snapshots, ids = seeded_store(fleets())
    one = _pg_statement(recorder, snapshots, one=True)
    with recorder.datastore.get_connection() as conn:
        with conn.transaction():
            assert load_rows(conn, one, ids[:1], one=True) is None
        assert load_rows(conn, one, [str(ids[0])], one=True) is None  # type: ignore[list-item]
        conn.autocommit = False
        try:
            assert load_rows(conn, one, ids[:1], one=True) is None
        finally:
            conn.autocommit = True


def test_session20_a_load_on_lost_connections_is_retried_on_fresh_ones(
    fleets: Callable[[], PartnerFleet], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server ends every connection of the store's pool between loads: the direct
    read fails with psycopg's OperationalError (eventsourcing's, past `latest_rows`), the
    load is retried (as the stock recorder's reads are) and reads the same."""
    failed: list[BaseException] = []

    def noted(*args: Any, **kwargs: Any) -> Any:
        try:
            return load_rows(*args, **kwargs)
        except BaseException as error:
            failed.append(error)
            raise

    monkeypatch.setattr(pg_recorder, "load_rows", noted)
    recorder, snapshots, ids = seeded_store(fleets())
    expected = select_latest(recorder, snapshots, ids)
    assert terminate_backends(recorder.datastore.schema, STORE) >= 1
    again = select_latest(recorder, snapshots, ids)
    assert failed
    assert all(isinstance(error, psycopg.OperationalError) for error in failed)
    assert again.keys() == expected.keys()
    for key, latest in expected.items():
        assert again[key] == latest


def test_session20_statements_go_with_one_placeholder_only() -> None:
    statement = b"SELECT %s::uuid WHERE 'a' LIKE '%%'"
    assert dollar_one(statement) == b"SELECT $1::uuid WHERE 'a' LIKE '%'"
    for wrong in (b"SELECT 1", b"SELECT %s, %s", b"SELECT %(a)s", b"SELECT 5 % 2, %s"):
        with pytest.raises(ValueError, match="placeholder"):
            dollar_one(wrong)
