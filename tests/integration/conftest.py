"""Fixtures of the integration tier (beside tests/conftest.py's)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from handlers import PartnerFleet
from infra.bootstrap import build_fleet, build_view_db, storage_ready
from infra.settings import Settings
from infra.storage.pg_copy import CopyStream
from infra.storage.pg_recorder import FleetProcessRecorder
from infra.storage.viewdb import ViewDB
from tests.integration.streams import record_streams, recorder_of


@pytest.fixture
def pg_db(postgres_settings: Settings) -> Iterator[ViewDB]:
    """A view database in a PostgreSQL schema of this test's own."""
    with storage_ready(postgres_settings.storage):
        view_db = build_view_db(postgres_settings)
    yield view_db
    view_db.close()


@pytest.fixture
def streams(monkeypatch: pytest.MonkeyPatch) -> list[CopyStream]:
    """Every CopyStream opened during the test (tests/integration/streams.py)."""
    return record_streams(monkeypatch)


@pytest.fixture
def fleets(postgres_settings: Settings) -> Iterator[Callable[[], PartnerFleet]]:
    """Fleets on one PostgreSQL schema: each is a process of its own (own recorder, pool),
    all closed at the test's end."""
    opened: list[PartnerFleet] = []

    def open_fleet() -> PartnerFleet:
        opened.append(build_fleet(postgres_settings))
        return opened[-1]

    yield open_fleet
    for fleet in opened:
        fleet.close()


@pytest.fixture(params=["direct", "psycopg"])
def recorder(
    request: pytest.FixtureRequest, fleets: Callable[[], PartnerFleet]
) -> FleetProcessRecorder:
    """A fleet's recorder on libpq's pipeline (packed arrays, "direct"), or on psycopg's
    (lists): the tests taking it run on both."""
    found = recorder_of(fleets())
    found.packs_arrays = request.param == "direct"
    return found
