"""Issue 11 on real stores: loads in one round trip, prefetch, and the aggregate cache
against another process's writes (two fleets on one PostgreSQL schema)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import reduce
from typing import Any
from uuid import UUID

import psycopg
import pytest
from eventsourcing.postgres import PostgresRecorder
from structlog.testing import capture_logs

from domain import CustomerGroup, Device
from domain.consent import ConsentError
from domain.partner import PartnerTenant
from handlers import PartnerFleet
from handlers.access import Claims, Role, authenticate
from handlers.base import SNAPSHOT_INTERVAL, Working
from handlers.devices import PartnerChoice
from infra.bootstrap import build_fleet, storage_ready
from infra.settings import Settings
from infra.storage import pg_loads, pg_recorder
from tests.read_versions import READ_CHECKING_POSTGRES_TOPIC
from tests.scenarios import CUSTOMER, OPS, partner, servers

DEVICE = Device.id_for("S1")


@contextmanager
def statements(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The SQL statements sent to PostgreSQL within, each a round trip (no pipeline here):
    psycopg's cursor executions and the loads sent on libpq directly (`load_rows`, one
    round trip each: tests/integration/test_session20_direct_load.py)."""
    sent: list[str] = []
    real = psycopg.Cursor.execute
    real_load = pg_loads.load_rows

    def counted(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(str(query))
        return real(self, query, *args, **kwargs)

    def counted_load(conn: Any, statement: bytes, *args: Any, **kwargs: Any) -> Any:
        rows = real_load(conn, statement, *args, **kwargs)
        if rows is not None:  # None: left to psycopg's cursor (counted there)
            sent.append(statement.decode())
        return rows

    with monkeypatch.context() as patch:
        patch.setattr(psycopg.Cursor, "execute", counted)
        patch.setattr(pg_recorder, "load_rows", counted_load)
        yield sent


def on_postgres(fleet: PartnerFleet) -> bool:
    """Whether the fleet stores in PostgreSQL (its round trips are counted there)."""
    return isinstance(fleet.recorder, PostgresRecorder)


def caching_fleet_on(settings: Settings) -> PartnerFleet:
    """A fleet on the PostgreSQL schema whose recorder checks read versions (test double)."""
    storage = settings.storage
    with storage_ready(storage):
        env = {**storage.env, "PROCESS_RECORDER_TOPIC": READ_CHECKING_POSTGRES_TOPIC}
        return PartnerFleet(env=env, cpin_key=settings.cpin_secret())


def replayed(fleet: PartnerFleet, aggregate_id: UUID) -> Any:
    """The aggregate rebuilt from all its stored events, no snapshot."""
    events: list[Any] = list(fleet.events.get(aggregate_id))
    return reduce(lambda a, e: e.mutate(a), events, None)


def state_of(aggregate: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}


def outcomes(logs: Sequence[Mapping[str, Any]], command: str) -> list[tuple[str, int | None]]:
    """Each `command` log line of the command: its outcome and attempts."""
    return [
        (e["outcome"], e.get("attempts"))
        for e in logs
        if e["event"] == "command" and e.get("command") == command
    ]


def long_history(fleet: PartnerFleet) -> None:
    """S1 with more events than a snapshot interval: loads start from a snapshot."""
    partner(fleet, "LOC-1")
    fleet.register_devices(CUSTOMER, "C1", servers("S1", "S2"), PartnerChoice(location_id="LOC-1"))
    for _ in range(SNAPSHOT_INTERVAL // 2 + 2):
        fleet.grant_consent(CUSTOMER, "C1", ["S1"])
        fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])


def test_issue_11_a_load_reads_snapshot_and_later_events_in_one_round_trip(
    stored_fleet: PartnerFleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    long_history(stored_fleet)
    assert stored_fleet.snapshots is not None
    assert list(stored_fleet.snapshots.get(DEVICE))
    if on_postgres(stored_fleet):
        with statements(monkeypatch) as sent:
            loaded = stored_fleet.repository.get(DEVICE)
        assert len(sent) == 1
    else:
        loaded = stored_fleet.repository.get(DEVICE)
    assert state_of(loaded) == state_of(replayed(stored_fleet, DEVICE))
    assert loaded.version > SNAPSHOT_INTERVAL


def test_issue_11_prefetch_loads_several_aggregates_in_one_round_trip(
    stored_fleet: PartnerFleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    long_history(stored_fleet)
    ids = [
        DEVICE,
        Device.id_for("S2"),
        PartnerTenant.id_for("LOC-1"),
        CustomerGroup.id_for("LOC-1", "C1"),
        Device.id_for("NONE1"),
    ]
    w = Working(stored_fleet)
    if on_postgres(stored_fleet):
        with statements(monkeypatch) as sent:
            w.prefetch(*ids)
            found = [w.find(Device, DEVICE), w.find(Device, ids[1]), w.find(Device, ids[4])]
        assert len(sent) == 1
    else:
        w.prefetch(*ids)
        found = [w.find(Device, DEVICE), w.find(Device, ids[1]), w.find(Device, ids[4])]
    assert found[2] is None
    for aggregate_id, aggregate in zip(ids[:2], found[:2], strict=True):
        assert state_of(aggregate) == state_of(replayed(stored_fleet, aggregate_id))
    assert set(w) == set(ids[:4])


def test_issue_11_another_process_write_is_seen_through_the_conflict(
    postgres_settings: Settings,
) -> None:
    first, second = caching_fleet_on(postgres_settings), caching_fleet_on(postgres_settings)
    try:
        assert first.caches_aggregates
        assert second.caches_aggregates
        partner(first, "LOC-1")
        first.register_devices(CUSTOMER, "C1", servers("S1"), PartnerChoice(location_id="LOC-1"))
        first.grant_consent(CUSTOMER, "C1", ["S1"])  # first caches S1 with consent
        second.withdraw_consent(CUSTOMER, "C1", ["S1"])  # another process withdraws it
        # R-CON-2 on first's cached S1 (with consent) would keep the data; the save
        # conflicts on S1's version and the retry, on the store's S1, refuses
        with pytest.raises(ConsentError), capture_logs() as logs:
            first.collect_configuration(OPS, "S1", {"bios": "1.2"})
        assert outcomes(logs, "collect_configuration") == [("refused", None)]
        assert any(e["event"] == "command_conflict" for e in logs)
        # a refusal decided on the cached S1 ("already granted") is decided again on the
        # store's: the grant is accepted
        first.grant_consent(CUSTOMER, "C1", ["S1"])
        names = [type(e).__name__ for e in first.events.get(DEVICE)]
        assert names[-3:] == ["ConsentGranted", "ConsentWithdrawn", "ConsentGranted"]
        # the partner, read and cached by first, changes in second: first's next link
        # conflicts on read_versions and is retried with the fresh partner
        first.register_devices(CUSTOMER, "C1", servers("S2"))
        first.link_devices(CUSTOMER, "C1", ["S2"], PartnerChoice(location_id="LOC-1"))
        second.accredit_service_partner(OPS, "LOC-1", "CSDP-1")
        first.register_devices(CUSTOMER, "C1", servers("S3"))
        with capture_logs() as logs:
            first.link_devices(CUSTOMER, "C1", ["S3"], PartnerChoice(location_id="LOC-1"))
        assert outcomes(logs, "link_devices") == [("accepted", 2)]
        cached = first.aggregate_cache.get(PartnerTenant.id_for("LOC-1"))
        assert cached is not None
        assert cached.partner_type == "service_partner"
    finally:
        first.close()
        second.close()


def test_issue_11_authenticate_sees_another_process_user_at_once(
    postgres_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = build_fleet(postgres_settings), build_fleet(postgres_settings)
    try:
        partner(first, "LOC-1")
        authenticate(first, Claims("anna@LOC-1", Role.PARTNER_ADMIN, "LOC-1"))  # cached
        second.register_partner_user(OPS, "LOC-1", "carla@LOC-1")
        with statements(monkeypatch) as sent:
            actor = authenticate(first, Claims("carla@LOC-1", Role.PARTNER_USER, "LOC-1"))
        assert actor.role is Role.PARTNER_USER
        assert len(sent) == 1
    finally:
        first.close()
        second.close()
