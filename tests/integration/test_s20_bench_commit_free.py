"""The bound's probe of bench.commands (session 20): `commit_free` packs each group as the
real commit does but stores nothing, and gives the real commit back when it ends."""

from __future__ import annotations

import psycopg
import pytest

from bench.commands import Batch, client_calls, commit_free, operator, seed
from bench.common import PG_CONNINFO, fresh_schema, open_fleet, postgres_env
from handlers import PartnerFleet
from infra.storage import pg_recorder


def _stored(schema: str) -> int:
    with psycopg.connect(PG_CONNINFO) as conn:
        row = conn.execute(f'SELECT count(*) FROM "{schema}".partnerfleet_events').fetchone()
    assert row is not None
    return int(row[0])


def test_commands_in_commit_free_store_nothing_and_the_real_commit_comes_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batch = Batch("t", 2, 2)
    with fresh_schema() as schema, open_fleet(postgres_env(schema)) as fleet:
        seed(fleet, [batch])
        before = _stored(schema)
        calls = [call for client in batch.clients for _, call in client_calls(fleet, client)]
        packed: list[int] = []
        real_pack = pg_recorder._packed_parameters

        def counting(units):  # type: ignore[no-untyped-def]
            packed.append(len(units))
            return real_pack(units)

        monkeypatch.setattr(pg_recorder, "_packed_parameters", counting)
        with commit_free(fleet):
            for call in calls[:5]:  # one client's round: link, grant, withdraw, star, transfer
                call()
            position = fleet.last_position()
        assert packed == [1] * 5  # each group packed as for the real commit
        assert position >= 10**12  # made-up notification ids
        assert _stored(schema) == before  # nothing stored
        monkeypatch.undo()
        fleet.register_partner(operator(), "PLCMD0002", "Another Reseller")  # stored again
        assert _stored(schema) > before


def test_commit_free_refuses_a_recorder_without_the_group_commit() -> None:
    fleet = PartnerFleet(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    with pytest.raises(TypeError, match="group commit"), commit_free(fleet):
        pass
