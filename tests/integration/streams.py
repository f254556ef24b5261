"""What the PostgreSQL save-path tests share: the fleet's recorder, whether the events
table's lock is free, and a record of the CopyStreams a test opened (issue 11)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import sql

from handlers import PartnerFleet
from infra.storage.pg_copy import CopyStream
from infra.storage.pg_recorder import FleetProcessRecorder
from tests.conftest import POSTGRES_DSN


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
