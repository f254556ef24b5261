"""Session 22's attack on the plain group statement: random independent groups, each sent
once by PLAIN_STATEMENT and once (the same shape, fresh ids, the same stored state) by
GROUP_STATEMENT. Every unit gets the same outcome from both (accepted, or refused with the
same reason), the accepted units' notification ids are laid out alike (consecutive, in the
group's order: no gap), nothing of a refused unit is stored, and the stored rows are the
same. The groups hold what the claim must survive: one aggregate written by several units
at other versions, a unit refused both for a stored version and a stale read (several
such, so the result has enough rows for PostgreSQL's quicksort, not its insertion sort),
reads of one aggregate by several units, units with reads and no events, and units of
several events. On libpq's pipeline (packed arrays) and on psycopg's (lists)."""

from __future__ import annotations

import random
import uuid
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from infra.storage import pg_recorder
from infra.storage.group_commit import Unit
from infra.storage.pg_recorder import FleetProcessRecorder, independent
from tests.integration.streams import sent_statements

pytestmark = pytest.mark.postgres

# A group's shape, by aggregate names: the stored versions, then per unit its events
# (name, version) and its reads (name: version).
Shape = tuple[dict[str, int], list[tuple[list[tuple[str, int]], dict[str, int]]]]


def random_shape(rng: random.Random) -> Shape:
    """An independent group: no (name, version) written twice, no name both read and
    written, no policy position."""
    names = [f"a{n}" for n in range(10)]
    stored = {name: rng.randint(1, 3) for name in rng.sample(names, 5)}
    written_names = set(rng.sample(names, 6))
    read_names = [n for n in names if n not in written_names]
    taken: set[tuple[str, int]] = set()
    units: list[tuple[list[tuple[str, int]], dict[str, int]]] = []
    for _ in range(rng.randint(2, 9)):
        events: list[tuple[str, int]] = []
        for _ in range(rng.randint(0, 3)):
            key = (rng.choice(sorted(written_names)), rng.randint(1, 5))
            if key not in taken:
                taken.add(key)
                events.append(key)
        reads = {name: rng.randint(0, 4) for name in rng.sample(read_names, rng.randint(0, 2))}
        if not events and not reads:
            events.append((f"n{len(units)}", 1))
        units.append((events, reads))
    return stored, units


def materialise(recorder: FleetProcessRecorder, shape: Shape) -> tuple[list[Unit], dict[str, UUID]]:
    """The shape's stored events recorded under fresh ids, and its units."""
    stored, units = shape
    ids: dict[str, UUID] = {}

    def id_of(name: str) -> UUID:
        return ids.setdefault(name, uuid.uuid4())

    for name, top in stored.items():
        recorder.insert_events(
            [StoredEvent(id_of(name), v, "tests:Stored", b"s") for v in range(1, top + 1)]
        )
    made = [
        Unit(
            [StoredEvent(id_of(n), v, "tests:Event", f"{n}{v}".encode()) for n, v in events],
            read_versions={id_of(n): v for n, v in reads.items()},
        )
        for events, reads in units
    ]
    return made, ids


def outcome(unit: Unit) -> str | int:
    try:
        return len(unit.result())
    except IntegrityError as error:
        return str(error)


def relative(units: list[Unit]) -> list[list[int]]:
    ids = [i for unit in units for i in unit.notification_ids]
    first = min(ids, default=0)
    return [[i - first for i in unit.notification_ids] for unit in units]


def stored_rows(recorder: FleetProcessRecorder, ids: dict[str, UUID]) -> dict[str, list[Any]]:
    return {
        name: [(e.originator_version, e.topic, e.state) for e in recorder.select_events(i)]
        for name, i in ids.items()
    }


def test_s22_attack_random_independent_groups_get_the_group_statements_outcomes(
    recorder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = sent_statements(recorder)
    both_reasons = 0
    for seed in range(40):
        shape = random_shape(random.Random(seed))
        plain, plain_ids = materialise(recorder, shape)
        assert independent(plain)
        del sent[:]
        recorder._commit_group(plain)
        assert sent == [recorder.plain_statement], seed

        with monkeypatch.context() as patched:
            patched.setattr(pg_recorder, "independent", lambda units: False)
            grouped, grouped_ids = materialise(recorder, shape)
            del sent[:]
            recorder._commit_group(grouped)
            assert sent == [recorder.group_statement], seed

        assert [outcome(u) for u in plain] == [outcome(u) for u in grouped], seed
        assert relative(plain) == relative(grouped), seed
        ids = sorted(i for unit in plain for i in unit.notification_ids)
        assert ids == list(range(ids[0], ids[0] + len(ids))) if ids else True, seed
        assert stored_rows(recorder, plain_ids) == stored_rows(recorder, grouped_ids), seed
        stored, units = shape
        for (events, reads), unit in zip(units, plain, strict=True):
            version = any(stored.get(n, 0) >= v for n, v in events)
            stale = any(stored.get(n, 0) > v for n, v in reads.items())
            both_reasons += version and stale
            if version:
                assert "version of the aggregate is already recorded" in str(unit.error), seed
            elif stale:
                assert "read by the command changed" in str(unit.error), seed
            else:
                assert unit.error is None, seed
    assert both_reasons >= 5  # the case the claim's DESC is for, several times over
