"""Session 22's attack on the plain group statement: a column's type changed (ALTER TABLE
... TYPE: notification_id int8 -> int4, the statement's result type) after the plain
statement was prepared, on libpq's pipeline (the committer's connection, `_send_directly`)
and on psycopg's (a pooled connection, `replan_after_type_changes`). The next plain group,
with a refused unit among accepted ones, commits once prepared again: the same outcomes,
consecutive ids, nothing written twice and nothing of the refused unit."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError

from infra.storage.group_commit import Unit
from tests.conftest import POSTGRES_DSN
from tests.integration.streams import event, sent_statements

pytestmark = pytest.mark.postgres


def test_s22_attack_a_plain_group_after_its_result_type_changed(recorder: Any) -> None:
    stored, a, b, c = (uuid.uuid4() for _ in range(4))
    recorder.insert_events([event(stored), event(stored, 2)])
    sent = sent_statements(recorder)
    # prepared on this pipeline's connections (a pool's: every one of them)
    for _ in range(recorder.datastore.pool.max_size + 1):
        recorder._commit_group([Unit([event(uuid.uuid4())]), Unit([event(uuid.uuid4())])])
    table = f'"{recorder.datastore.schema}"."{recorder.events_table_name}"'
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as admin:
        admin.execute(f"ALTER TABLE {table} ALTER COLUMN notification_id TYPE integer")
    del sent[:]

    units = [
        Unit([event(a), event(a, 2)]),
        Unit([event(b)], read_versions={stored: 1}),  # stale
        Unit([event(c)], read_versions={stored: 2}),
    ]
    recorder._commit_group(units)

    assert set(sent) == {recorder.plain_statement}
    ids = [i for unit in units for i in unit.notification_ids]
    assert [len(units[0].result()), len(units[2].result())] == [2, 1]
    with pytest.raises(IntegrityError):
        units[1].result()
    assert ids == list(range(ids[0], ids[0] + 3))
    for aggregate_id, versions in ((a, [1, 2]), (b, []), (c, [1])):
        assert [e.originator_version for e in recorder.select_events(aggregate_id)] == versions
