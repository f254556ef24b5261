"""A load of one aggregate has a statement of its own (issue 11, session 19): one id as a
scalar parameter, whose generic plan PostgreSQL keeps, where the array statement was
planned afresh on every load. It reads what the array statement reads: a device past its
snapshot (the snapshot and the events after it), one without a snapshot, an unknown id."""

from __future__ import annotations

from collections.abc import Callable
from functools import reduce
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg.rows import tuple_row

from handlers import PartnerFleet
from handlers.stored_loads import Latest, _pg_statement, select_latest
from tests.conftest import POSTGRES_DSN
from tests.integration.streams import recorder_of
from tests.scenarios import loads_history

pytestmark = pytest.mark.postgres


def as_compared(found: dict[UUID, Latest]) -> dict[UUID, Any]:
    return {
        key: (
            None if latest.snapshot is None else latest.snapshot.originator_version,
            [(e.originator_version, e.topic, e.state) for e in latest.events],
        )
        for key, latest in found.items()
    }


def test_session19_one_id_loads_read_what_the_array_statement_reads(
    fleets: Callable[[], PartnerFleet],
) -> None:
    fleet = fleets()
    recorder = recorder_of(fleet)
    snapshots = fleet.snapshots.recorder if fleet.snapshots else None
    ids = loads_history(fleet)
    together = as_compared(select_latest(recorder, snapshots, ids))
    assert together[ids[0]][0] is not None  # S1's snapshot is read
    assert ids[2] not in together
    for aggregate_id in ids:
        alone = as_compared(select_latest(recorder, snapshots, [aggregate_id]))
        expected = {k: v for k, v in together.items() if k == aggregate_id}
        assert alone == expected
    for aggregate_id in ids[:2]:
        loaded = fleet.repository.get(aggregate_id)
        events: list[Any] = list(fleet.events.get(aggregate_id))
        assert vars(loaded) == vars(reduce(lambda a, e: e.mutate(a), events, None))


def test_session19_one_id_loads_without_the_direct_path_read_the_same(
    fleets: Callable[[], PartnerFleet],
) -> None:
    """A recorder that cannot read on libpq (ids not UUIDs) loads through psycopg's cursor:
    the one id goes as a scalar there too."""
    fleet = fleets()
    recorder = recorder_of(fleet)
    snapshots = fleet.snapshots.recorder if fleet.snapshots else None
    ids = loads_history(fleet)
    direct = as_compared(select_latest(recorder, snapshots, ids[:1]))
    recorder.packs_arrays = False  # latest_rows answers None: psycopg's cursor reads
    try:
        assert recorder.latest_rows(b"", ids[:1]) is None
        assert as_compared(select_latest(recorder, snapshots, ids[:1])) == direct
    finally:
        recorder.packs_arrays = True
    assert direct[ids[0]][1]  # events after the snapshot


def test_session19_the_one_id_statement_keeps_its_generic_plan(
    fleets: Callable[[], PartnerFleet],
) -> None:
    """After PostgreSQL's five custom plans, the one-id statement runs on its generic plan
    (pg_prepared_statements counts them), so a load is no longer planned every time."""
    fleet = fleets()
    recorder = recorder_of(fleet)
    snapshots = fleet.snapshots.recorder if fleet.snapshots else None
    ids = loads_history(fleet)
    statement = _pg_statement(recorder, snapshots, one=True)
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:  # schema-qualified
        for _ in range(10):
            with conn.cursor(row_factory=tuple_row, binary=True) as cursor:
                rows = cursor.execute(statement, (ids[0],), prepare=True).fetchall()
            assert rows[0][0] is True  # the snapshot first
        generic, custom = conn.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
        ).fetchone() or (0, 0)
    assert generic >= 4, (generic, custom)
