"""Issue 11: a rebuild batch's stored inserts run beside its handlers (InsertGate)."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from infra.follow.set_writes import SetWrites
from infra.follow.stored_inserts import StoredInserts
from infra.storage.viewdb import CopyingTx


class Recording:
    """A CopyingTx that records each call in order."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def execute(self, statement: str, params: Any = ()) -> None:
        self.calls.append(f"execute {statement}")

    def executemany(self, statement: str, rows: Iterable[Any]) -> None:
        self.calls.append(f"executemany {statement} {len(list(rows))}")

    def query(self, statement: str, params: Any = ()) -> list[tuple[Any, ...]]:
        self.calls.append(f"query {statement}")
        return [(3,)] if statement.startswith("WITH e AS") else []

    def stream(self, statement: str, params: Any = ()) -> Iterator[tuple[Any, ...]]:
        self.calls.append(f"stream {statement}")
        return iter(())

    def copy(self, table: str, rows: Iterable[Sequence[Any]]) -> int:
        self.calls.append(f"copy {table}")
        return len(list(rows))

    def flush(self) -> None:
        self.calls.append("flush")


class SlowInserts(StoredInserts):
    """Stored inserts that wait for a signal, then record themselves (or fail)."""

    def __init__(self, release: threading.Event, fail: bool = False) -> None:
        super().__init__('"s"."events"', {"t.A": "INSERT INTO a SELECT {id}"})
        self.release, self.fail = release, fail

    def insert(self, tx: Any, after: int, upto: int) -> int:
        assert self.release.wait(5)
        if self.fail:
            raise RuntimeError("duplicate key")
        return super().insert(tx, after, upto)


@pytest.mark.parametrize(
    "call",
    [
        lambda g: g.execute("UPDATE t SET v = 1"),
        lambda g: g.executemany("INSERT INTO t VALUES (?)", [(1,)]),
        lambda g: g.query("SELECT 1"),
        lambda g: list(g.stream("SELECT 1")),
        lambda g: g.copy("t", [(1,)]),
        lambda g: g.flush(),
    ],
)
def test_issue_11_every_statement_through_the_gate_comes_after_the_inserts(call: Any) -> None:
    tx, release = Recording(), threading.Event()
    assert isinstance(tx, CopyingTx)
    with ThreadPoolExecutor(1) as thread:
        gate = SlowInserts(release).beside(tx, 0, 10, thread)
        assert isinstance(gate, CopyingTx)
        threading.Timer(0.05, release.set).start()
        call(gate)
        assert tx.calls[0].startswith("query WITH e AS")
        assert len(tx.calls) == 2
        assert gate.inserted() == 3


def test_issue_11_handlers_buffer_beside_the_inserts_and_send_after_them() -> None:
    """Writes buffered in SetWrites above the gate reach the Tx only after the inserts,
    while the inserts are still held back (the handlers ran beside them)."""
    tx, release = Recording(), threading.Event()
    with ThreadPoolExecutor(1) as thread:
        gate = SlowInserts(release).beside(tx, 0, 10, thread)
        writes = SetWrites(gate)
        writes.execute("INSERT INTO m VALUES (?, ?)", ("g", "d"))
        assert tx.calls == []  # the handlers went on while the inserts wait
        release.set()
        writes.flush()
        assert [c.split()[0] for c in tx.calls] == ["query", "executemany"]


def test_issue_11_an_insert_error_is_raised_at_the_batchs_first_statement() -> None:
    tx, release = Recording(), threading.Event()
    release.set()
    with ThreadPoolExecutor(1) as thread:
        gate = SlowInserts(release, fail=True).beside(tx, 0, 10, thread)
        with pytest.raises(RuntimeError, match="duplicate key"):
            gate.flush()
        with pytest.raises(RuntimeError, match="duplicate key"):
            gate.inserted()
        gate.settle()  # waits, never raises
        assert tx.calls == []


def test_issue_11_settle_waits_for_inserts_still_running() -> None:
    tx, release = Recording(), threading.Event()
    with ThreadPoolExecutor(1) as thread:
        gate = SlowInserts(release).beside(tx, 0, 10, thread)
        threading.Timer(0.05, release.set).start()
        gate.settle()
        assert tx.calls
        assert tx.calls[0].startswith("query WITH e AS")
