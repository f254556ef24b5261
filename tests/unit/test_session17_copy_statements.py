"""Session 17 attack: the COPY statements of an events table belong to its recorder.

infra/storage/pg_copy.py kept them in a module dict keyed by `id(recorder)`. An id is an
address: once a recorder is freed, the next object there (a recorder of another schema,
another store) got the freed one's statements and would COPY its rows into the other
schema's table. Now the statements live on the recorder itself.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from psycopg import sql

from infra.storage import pg_copy
from infra.storage.pg_copy import _statements


class Recorder:
    """What `_statements` reads of a PostgresProcessRecorder."""

    def __init__(self, schema: str) -> None:
        self.datastore = SimpleNamespace(schema=schema, originator_id_type="uuid")
        self.events_table_name = "stored_events"


def test_a_recorder_at_a_freed_recorders_address_gets_its_own_schemas_statements(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two schemas' recorders at one address (the first freed, the second made where it
    was, as CPython does; `id` made to say so): each COPY names its own recorder's schema."""
    monkeypatch.setattr(pg_copy, "id", lambda _: 140_000_000, raising=False)
    first = _copy_parts(_statements(Recorder("tenant_a")).copy)  # type: ignore[arg-type]
    second = _copy_parts(_statements(Recorder("tenant_b")).copy)  # type: ignore[arg-type]
    assert sql.Identifier("tenant_a") in first
    assert sql.Identifier("tenant_b") in second
    assert sql.Identifier("tenant_a") not in second


def _copy_parts(statement: sql.Composable) -> list[sql.Composable]:
    """The parts of a composed statement, flattened."""
    if isinstance(statement, sql.Composed):
        return [p for part in statement for p in _copy_parts(part)]
    return [statement]
