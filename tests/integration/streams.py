"""What the PostgreSQL save-path tests share: the fleet's recorder, whether the events
table's lock is free, a record of the CopyStreams a test opened, and a batch paused
mid-stream while another save waits (issue 11)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from eventsourcing.persistence import OperationalError, StoredEvent
from psycopg import sql

from handlers import PartnerFleet
from handlers.landing import Landing
from infra.storage.pg_copy import CopyStream
from infra.storage.pg_recorder import FleetProcessRecorder
from tests.conftest import POSTGRES_DSN


def event(aggregate_id: UUID, version: int = 1) -> StoredEvent:
    """A stored event of no domain meaning, for the save path's own tests."""
    return StoredEvent(aggregate_id, version, "tests:Event", b"{}")


def recorder_of(fleet: PartnerFleet) -> FleetProcessRecorder:
    """The fleet's PostgreSQL recorder (the test fails on another)."""
    recorder = fleet.recorder
    assert isinstance(recorder, FleetProcessRecorder)
    return recorder


def lock_is_free(fleet: PartnerFleet) -> bool:
    """Whether the events table's EXCLUSIVE lock is granted within 2 s (no stream or save
    left holding it)."""
    recorder = recorder_of(fleet)
    table = sql.Identifier(recorder.datastore.schema, recorder.events_table_name)
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute("SET lock_timeout = '2s'")
        try:
            with conn.transaction():
                conn.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(table))
        except psycopg.errors.LockNotAvailable:
            return False
    return True


def record_streams(monkeypatch: pytest.MonkeyPatch) -> list[CopyStream]:
    """Every CopyStream opened from now on, in order (for the `streams` fixture)."""
    opened: list[CopyStream] = []
    init = CopyStream.__init__

    def spied(self: CopyStream, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        opened.append(self)

    monkeypatch.setattr(CopyStream, "__init__", spied)
    return opened


def pause_at(monkeypatch: pytest.MonkeyPatch, call: int) -> tuple[threading.Event, threading.Event]:
    """Landing.plain_row waits at its `call`-th call (a batch's stream open, the table lock
    held) until released; (started, release)."""
    started, release = threading.Event(), threading.Event()
    made = Landing.plain_row
    calls = [0]

    def pausing(self: Landing, *args: Any, **kwargs: Any) -> StoredEvent:
        calls[0] += 1
        if calls[0] == call:
            started.set()
            release.wait(20)
        return made(self, *args, **kwargs)

    monkeypatch.setattr(Landing, "plain_row", pausing)
    return started, release


@dataclass
class Overlap:
    """What `save_while_paused` saw: the batch's result or error, the small save's ids,
    and whether that save was still waiting while the batch was paused."""

    done: list[Any] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    saved: list[Any] = field(default_factory=list)
    waited: bool = False


def save_while_paused(
    fleet: PartnerFleet,
    land: Callable[[], Any],
    started: threading.Event,
    release: threading.Event,
) -> Overlap:
    """Run `land` (a batch, paused by `pause_at`) on a thread; once it is paused, make a
    one-event save on another; then release the batch and wait for both."""
    seen = Overlap()

    def landing() -> None:
        try:
            seen.done.append(land())
        except BaseException as error:
            seen.errors.append(error)

    batch = threading.Thread(target=landing)
    batch.start()
    assert started.wait(20)
    small = threading.Thread(
        target=lambda: seen.saved.append(
            fleet.recorder.insert_events([StoredEvent(uuid4(), 1, "test:Row", b"{}")])
        )
    )
    small.start()
    small.join(0.5)
    seen.waited = small.is_alive()
    release.set()
    batch.join(60)
    small.join(60)
    return seen


def lose_first_reply(recorder: FleetProcessRecorder) -> None:
    """The first save's transaction commits, then its reply is lost (the connection
    ended after COMMIT was sent: the commit's outcome unknown to the client)."""
    real = recorder._send
    lose = [True]

    def reply_lost(statement: bytes, parameters: dict[str, Any]) -> list[tuple[Any, ...]]:
        rows = real(statement, parameters)
        if lose[0]:
            lose[0] = False
            raise OperationalError("server closed the connection unexpectedly")
        return rows

    recorder._send = reply_lost  # type: ignore[method-assign]


def sent_statements(recorder: FleetProcessRecorder) -> list[bytes]:
    """The statements the recorder sends from now on, in order (its `_send` spied)."""
    sent: list[bytes] = []
    send = recorder._send

    def spied(statement: bytes, parameters: dict[str, Any]) -> list[tuple[Any, ...]]:
        sent.append(statement)
        return send(statement, parameters)

    recorder._send = spied  # type: ignore[method-assign]
    return sent
