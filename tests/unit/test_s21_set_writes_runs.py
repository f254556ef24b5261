"""Issue 11, session 21: the set writes' runs without a sort where each table has one
statement, segments without a call per write, a batch's own events picked in C; each
equal to the way it was done before (kept here as the reference)."""

from __future__ import annotations

import random
from itertools import groupby
from typing import Any

import pytest

from domain import Cause, CustomerGroup
from infra.follow import set_writes
from infra.follow.set_writes import Pending, SetWrites, _runs, _segments, _shape, copy_rows
from infra.follow.view_runner import _ours

STATEMENTS = [
    "INSERT INTO pf_c_members VALUES (?, ?, ?)",
    "INSERT INTO pf_c_groups VALUES (?, ?, 0)",
    "INSERT INTO pf_c_admins VALUES (?, ?)",
    "UPDATE pf_c_groups SET deleted = ? WHERE group_id = ?",
    "DELETE FROM pf_c_favourites WHERE group_id = ?",
    "INSERT INTO pf_c_favourites VALUES (?, ?)",
]
BARRIERS = [
    "CREATE TABLE IF NOT EXISTS pf_x (a TEXT)",
    "INSERT INTO pf_c_admins SELECT group_id, 'x' FROM pf_c_groups",
]


def reference_segments(pending: Pending) -> list[Pending]:
    out: list[Pending] = []
    segment: Pending = []
    for item in pending:
        if _shape(item[0])[1]:
            out += [segment, [item]]
            segment = []
        else:
            segment.append(item)
    return [*out, segment]


def reference_runs(segment: Pending) -> list[tuple[str, list[tuple[Any, ...]]]]:
    ordered = sorted(segment, key=lambda item: _shape(item[0])[0])
    return [(s, [p for _, p in group]) for s, group in groupby(ordered, key=lambda i: i[0])]


def random_pending(rng: random.Random, statements: list[str], barriers: int) -> Pending:
    pending: Pending = [(rng.choice(statements), (k, rng.random())) for k in range(300)]
    for _ in range(barriers):
        pending.insert(rng.randrange(len(pending) + 1), (rng.choice(BARRIERS), (-1,)))
    return pending


@pytest.mark.parametrize("seed", range(40))
def test_runs_and_segments_equal_the_sorting_way(seed: int) -> None:
    rng = random.Random(seed)
    one_a_table = [STATEMENTS[k] for k in (0, 1, 2, 5)]
    for statements in (one_a_table, STATEMENTS, rng.sample(STATEMENTS, 3), STATEMENTS[:1]):
        for barriers in (0, 1, 3):
            pending = random_pending(rng, statements, barriers)
            segments = list(_segments(pending))
            expected = reference_segments(pending)
            assert [s for s in segments if s] == [s for s in expected if s]
            for segment in segments:
                assert _runs(segment) == reference_runs(segment)


def test_a_table_with_two_statements_keeps_their_order() -> None:
    update, insert = STATEMENTS[3], STATEMENTS[1]
    segment: Pending = [(insert, ("g1", "p")), (update, (1, "g1")), (insert, ("g2", "p"))]
    assert _runs(segment) == [
        (insert, [("g1", "p")]),
        (update, [(1, "g1")]),
        (insert, [("g2", "p")]),
    ]
    assert _runs([]) == []
    assert list(_segments([])) == [[]]


def test_copy_rows_checks_every_row_and_column_as_before() -> None:
    statement = "INSERT INTO t VALUES (?, ?, 'x')"
    assert copy_rows(statement, [("a", 1), ("b", None)]) == ("t", [("a", 1, "x"), ("b", None, "x")])
    assert copy_rows(statement, [("a", 1), ("b",)]) is None  # a row of another length
    assert copy_rows(statement, [("a", 1), ("b", 2, 3)]) is None
    assert copy_rows(statement, [("a", 1), ("b", True)]) is None  # a bool
    assert copy_rows(statement, [("a", 1), (b"b", 2)]) is None  # bytes
    assert copy_rows(statement, []) == ("t", [])


class Recorder:
    """A CopyingTx recording what it is sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []

    def execute(self, statement: str, params: Any = ()) -> None:
        self.sent.append(("execute", (statement, params)))

    def executemany(self, statement: str, rows: Any) -> None:
        self.sent.append(("executemany", (statement, list(rows))))

    def copy(self, table: str, rows: Any) -> int:
        rows = list(rows)
        self.sent.append(("copy", (table, rows)))
        return len(rows)


def test_set_writes_flush_sends_what_the_sorting_way_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(7)
    pending = random_pending(rng, STATEMENTS, 2)
    rows: Pending = [
        (s, (f"k{k}", f"v{k}", "r")[: s.count("?")]) for k, (s, _) in enumerate(pending)
    ]
    fast, slow = Recorder(), Recorder()
    writes = SetWrites(fast)  # type: ignore[arg-type]
    for statement, params in rows:
        writes.execute(statement, params)
    writes.flush()
    monkeypatch.setattr(set_writes, "_runs", reference_runs)
    monkeypatch.setattr(set_writes, "_segments", reference_segments)
    writes = SetWrites(slow)  # type: ignore[arg-type]
    for statement, params in rows:
        writes.execute(statement, params)
    writes.flush()
    assert fast.sent == slow.sent
    assert any(kind == "copy" for kind, _ in fast.sent)


def test_a_batch_keeps_its_own_events_in_order() -> None:
    why = Cause("it@c1.example", "s21-ours")
    group = CustomerGroup.create(why, "LOC-1", "C-1", "Customer", ["a@x.example"])
    group.add_device(why, "SN1", "reseller")
    mine = group.collect_events()
    events = [(3, mine[0]), (5, object()), (8, mine[1]), (9, "text")]
    assert _ours(events) == ([3, 8], [mine[0], mine[1]])
    assert _ours([]) == ([], [])
