"""Session 22's attack on the plain group statement: its reply lost after COMMIT (the
connection dropped), the retry (`_commit_retrying`, again by PLAIN_STATEMENT: the group is
as independent as before) finds the units it committed refused for their stored versions,
and `_recognise_committed` answers them with the first attempt's notification ids; the
units refused the first time stay refused for their reasons, nothing is stored twice, the
ids stay consecutive. On libpq's pipeline and on psycopg's."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from infra.storage.group_commit import Unit
from tests.integration.streams import lose_first_reply, sent_statements

pytestmark = pytest.mark.postgres

VERSION = "An event of this version of the aggregate is already recorded; nothing was recorded."
READ = "An aggregate read by the command changed since it was read; nothing was recorded."


def ev(aggregate_id: uuid.UUID, version: int = 1, topic: str = "tests:Mine") -> StoredEvent:
    return StoredEvent(aggregate_id, version, topic, f"{aggregate_id}{version}".encode())


def outcome(unit: Unit) -> str | int:
    try:
        return len(unit.result())
    except IntegrityError as error:
        return str(error)


def test_s22_attack_a_plain_groups_reply_lost_after_commit(recorder: Any) -> None:
    a, x, y, b, e, f, g, h = (uuid.uuid4() for _ in range(8))
    recorder.insert_events([ev(a, topic="tests:Theirs"), ev(y, topic="tests:Theirs")])
    recorder.insert_events([ev(x, topic="tests:Theirs"), ev(x, 2, topic="tests:Theirs")])
    sent = sent_statements(recorder)
    lose_first_reply(recorder)
    units = [
        Unit([ev(b), ev(b, 2)]),
        Unit([ev(a)]),  # a's version 1 is theirs
        Unit([ev(e)], read_versions={x: 1}),  # stale
        Unit([ev(f)], read_versions={x: 2}),  # current
        Unit([ev(g), ev(y)], read_versions={x: 0}),  # both: the version
        Unit([ev(h), ev(h, 2), ev(h, 3)]),
    ]
    recorder._commit_group(units)

    assert sent == [recorder.plain_statement] * 2  # the first reply lost, then the retry
    assert [outcome(u) for u in units] == [2, VERSION, READ, 1, VERSION, 3]
    ids = [i for u in units for i in u.notification_ids]
    assert ids == list(range(ids[0], ids[0] + 6))
    for aggregate_id, versions in ((b, [1, 2]), (f, [1]), (h, [1, 2, 3]), (e, []), (g, [])):
        assert [s.originator_version for s in recorder.select_events(aggregate_id)] == versions
    assert [s.topic for s in recorder.select_events(a)] == ["tests:Theirs"]
    notified = {n.id: n.originator_id for n in recorder.select_notifications(ids[0], 10)}
    assert [notified[i] for i in ids] == [b, b, f, h, h, h]
