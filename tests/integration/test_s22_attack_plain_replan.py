"""Session 22's attack on the plain group statement's generic plan: prepared on the
committer's connection while the events table is empty, its generic plan (forced by the
transaction's `plan_cache_mode`) joins the events table by sequential scans; once the
table has grown past `_replan_when_grown`'s mark, the connection is reopened and the plain
statement, prepared again, is planned on the grown table: by the primary key, for the
stored-version join and for the stale-read check alike (as the group statement's)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import psycopg
import pytest

from handlers import PartnerFleet
from infra.storage.group_commit import Unit
from infra.storage.pg_recorder import FleetProcessRecorder
from tests.conftest import POSTGRES_DSN
from tests.integration.streams import event, recorder_of

pytestmark = pytest.mark.postgres


def generic_plan(recorder: FleetProcessRecorder, statement: bytes) -> str:
    """The generic plan cached for `statement` on the committer's connection."""
    prepared = recorder._direct(statement)
    conn = recorder._commit_conn
    assert conn is not None
    assert prepared.name in recorder._prepared
    nulls = b", ".join(b"NULL" for _ in prepared.parameters)
    pgconn = conn.pgconn
    pgconn.exec_(b"SET plan_cache_mode = force_generic_plan")
    result = pgconn.exec_(b"EXPLAIN EXECUTE " + prepared.name + b"(" + nulls + b")")
    pgconn.exec_(b"RESET plan_cache_mode")
    return "\n".join(
        bytes(result.get_value(row, 0) or b"").decode() for row in range(result.ntuples)
    )


def plain_group(recorder: FleetProcessRecorder) -> None:
    stored = uuid.uuid4()
    recorder.insert_events([event(stored)])
    units = [Unit([event(uuid.uuid4())], read_versions={stored: 1}), Unit([event(uuid.uuid4())])]
    recorder._commit_group(units)
    assert all(len(unit.result()) == 1 for unit in units)


def test_s22_attack_the_plain_statement_is_planned_again_on_the_grown_table(
    fleets: Callable[[], PartnerFleet],
) -> None:
    recorder = recorder_of(fleets())
    plain_group(recorder)
    table = f'"{recorder.datastore.schema}"."{recorder.events_table_name}"'
    empty = generic_plan(recorder, recorder.plain_statement)
    assert f"Seq Scan on {recorder.events_table_name}" in empty

    assert recorder._replan_at is not None
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as admin:
        admin.execute(
            f"INSERT INTO {table} (originator_id, originator_version, topic, state)"
            " SELECT gen_random_uuid(), 1, 'tests:Filler', '' FROM generate_series(1, %s)",
            (recorder._replan_at,),
        )
    plain_group(recorder)  # past the mark: the connection is closed after it
    assert recorder.replans == 1
    plain_group(recorder)  # prepared again on another connection, the table grown
    grown = generic_plan(recorder, recorder.plain_statement)
    assert "Seq Scan" not in grown
    assert grown.count("_pkey") == 2, grown  # the version join and the read check
