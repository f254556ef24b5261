"""Issue 11, session 21: the view reader on PostgreSQL reads its rows in binary (no hex
bytea to unescape) and gives exactly what the library's `select_notifications` gives."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent

from handlers import PartnerFleet
from infra.follow.view_reads import PostgresTopicRows, topic_reader
from infra.storage.viewdb import CopyingTx, ViewDB

# States as bytes: odd, not all JSON, not all UTF-8 (the reader passes them as stored).
STATES = [
    b"{}",
    b'{"a":"\\\\x41 \\\\ \\u00e9","b":[1,2.5,null,true]}',
    '{"name":"Grüße 東京 \U0001f600"}'.encode(),
    b"\x00\x01\x02\xff\xfe\\x00\\\\",
    bytes(range(256)),
    b"x" * 100_000,
    b"",
]
TOPICS = ["tests.s21:Odd", "tests.s21:Other"]


def stored(fleet: PartnerFleet) -> list[tuple[Any, ...]]:
    events = [
        StoredEvent(uuid.UUID(int=k * 7919 + 1), 1, TOPICS[k % 2], state)
        for k, state in enumerate(STATES)
    ]
    fleet.recorder.insert_events(events)
    head = fleet.recorder.max_notification_id() or 0
    return [
        (n.id, n.originator_id, n.originator_version, n.topic, n.state)
        for n in fleet.recorder.select_notifications(start=1, limit=1_000, stop=head, topics=TOPICS)
    ]


def test_issue_11_topic_rows_are_read_in_binary_and_equal_the_librarys(
    fleets: Callable[[], PartnerFleet], monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = fleets()
    expected = stored(fleet)
    read = topic_reader(fleet.recorder)
    assert isinstance(read, PostgresTopicRows)
    asked: list[Any] = []
    execute = psycopg.Cursor.execute

    def spy(self: psycopg.Cursor[Any], *args: Any, **kwargs: Any) -> Any:
        if "topic = ANY" in str(args[0]):  # not the pool's own checks
            asked.append(kwargs.get("binary"))
        return execute(self, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", spy)
    head = fleet.recorder.max_notification_id() or 0
    rows = read(0, head, 1_000, TOPICS)
    assert asked == [True]
    assert rows == expected
    assert [tuple(map(type, row)) for row in rows] == [tuple(map(type, r)) for r in expected]
    assert all(type(row[4]) is bytes for row in rows)
    # limits and ranges as before
    assert (
        read(expected[1][0], head, 2, TOPICS[:1]) == [r for r in expected if r[3] == TOPICS[0]][1:3]
    )


def test_issue_11_copy_takes_any_iterable_of_rows_and_counts_them(pg_db: ViewDB) -> None:
    with pg_db.transaction() as tx:
        tx.execute("CREATE TABLE pf_s21_copy (k TEXT PRIMARY KEY, n BIGINT)")
        assert isinstance(tx, CopyingTx)
        assert tx.copy("pf_s21_copy", (row for row in [("a", 1), ("b", None)])) == 2
        assert tx.copy("pf_s21_copy", [("c\t\\\n", 3)]) == 1
        assert tx.copy("pf_s21_copy", iter([])) == 0
        rows = tx.query("SELECT k, n FROM pf_s21_copy ORDER BY k")
    assert rows == [("a", 1), ("b", None), ("c\t\\\n", 3)]
