"""The group commit's plain statement (issue 11, session 22): a group of independent
units (no policy position, no aggregate met twice) is committed by PLAIN_STATEMENT, the
stored checks and the insert only; any other group by GROUP_STATEMENT. Each unit gets the
outcome GROUP_STATEMENT gives it: the same refusals with the same reasons, the same
notification ids in the group's order."""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import IntegrityError, Tracking

from infra.storage import pg_recorder
from infra.storage.group_commit import Unit
from infra.storage.pg_recorder import FleetProcessRecorder
from tests.integration.streams import event, sent_statements

pytestmark = pytest.mark.postgres

VERSION = "An event of this version of the aggregate is already recorded; nothing was recorded."
READ = "An aggregate read by the command changed since it was read; nothing was recorded."


def outcome(unit: Unit) -> str | int:
    """A refused unit's message, or an accepted unit's count of notification ids."""
    try:
        return len(unit.result())
    except IntegrityError as error:
        return str(error)


def mixed_group(recorder: FleetProcessRecorder) -> tuple[list[Unit], dict[str, UUID]]:
    """A group of independent units holding each refusal kind the plain statement finds:
    a stored version, a stale read, both at once (the version is the reason), and
    accepted neighbours, one of them with a read that is current."""
    ids = {name: uuid.uuid4() for name in ("a", "x", "y", "r", "b", "e", "f", "g", "h")}
    a, x = ids["a"], ids["x"]
    recorder.insert_events([event(a), event(ids["y"]), event(ids["r"])])
    recorder.insert_events([event(x), event(x, 2)])
    units = [
        Unit([event(ids["b"]), event(ids["b"], 2)]),
        Unit([event(a)]),  # stored version
        Unit([event(ids["e"])], read_versions={x: 1}),  # stale read
        Unit([event(ids["f"])], read_versions={x: 2, ids["r"]: 1}),  # current reads
        Unit([event(ids["g"]), event(ids["y"])], read_versions={x: 0}),  # both: the version
        Unit([event(ids["h"]), event(ids["h"], 2), event(ids["h"], 3)]),
    ]
    return units, ids


def test_s22_an_independent_group_is_committed_by_the_plain_statement(recorder: Any) -> None:
    units, ids = mixed_group(recorder)
    sent = sent_statements(recorder)
    recorder._commit_group(units)

    assert sent == [recorder.plain_statement]
    assert [outcome(unit) for unit in units] == [2, VERSION, READ, 1, VERSION, 3]
    committed = [i for unit in units if unit.error is None for i in unit.result()]
    assert committed == sorted(committed)
    assert committed == list(range(committed[0], committed[0] + 6))  # no gap: one insert
    stored = {n.originator_id for n in recorder.select_notifications(1, 100)}
    assert {ids["b"], ids["f"], ids["h"]} <= stored
    assert not {ids["e"], ids["g"]} & stored
    assert [e.originator_version for e in recorder.select_events(ids["a"])] == [1]


def test_s22_the_plain_statement_gives_the_group_statements_outcomes(
    recorder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same group (fresh ids) through each statement: the same outcome per unit, and
    notification ids alike (consecutive, in the group's order)."""
    plain, _ = mixed_group(recorder)
    recorder._commit_group(plain)
    monkeypatch.setattr(pg_recorder, "independent", lambda units: False)
    sent = sent_statements(recorder)
    grouped, _ = mixed_group(recorder)
    recorder._commit_group(grouped)

    assert sent[-1] == recorder.group_statement
    assert [outcome(u) for u in plain] == [outcome(u) for u in grouped]

    def relative(units: list[Unit]) -> list[list[int]]:
        ids = [u.notification_ids for u in units]
        first = min(i for unit_ids in ids for i in unit_ids)
        return [[i - first for i in unit_ids] for unit_ids in ids]

    assert relative(plain) == relative(grouped)


def test_s22_a_group_whose_units_meet_is_checked_within_the_group(recorder: Any) -> None:
    """A read of an aggregate another unit of the group writes, and one version written by
    two units: the group statement refuses the later unit (the plain one has no checks
    within the group: the read would pass, the version fail the whole insert)."""
    c, d, n = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    recorder.insert_events([event(c)])
    units = [
        Unit([event(c, 2)]),
        Unit([event(uuid.uuid4())], read_versions={c: 1}),  # c is written by the first
        Unit([event(d)]),
        Unit([event(d)]),  # d's version 1 written by the third
        Unit([event(n)]),
    ]
    sent = sent_statements(recorder)
    recorder._commit_group(units)

    assert sent == [recorder.group_statement]
    assert [outcome(unit) for unit in units] == [1, READ, 1, VERSION, 1]


def test_s22_units_with_and_without_tracking_go_by_the_group_statement(recorder: Any) -> None:
    """A policy position anywhere in the group: the group statement, which records it
    (or refuses the unit whose position is not beyond the recorded one)."""
    recorder.insert_events([event(uuid.uuid4())], tracking=Tracking("s22", 10))
    units = [
        Unit([event(uuid.uuid4())]),
        Unit([event(uuid.uuid4())], tracking=Tracking("s22", 5)),
        Unit([event(uuid.uuid4())], tracking=Tracking("s22", 12)),
        Unit([event(uuid.uuid4())], read_versions={uuid.uuid4(): 0}),
    ]
    sent = sent_statements(recorder)
    recorder._commit_group(units)

    assert sent == [recorder.group_statement]
    assert [outcome(units[i]) for i in (0, 2, 3)] == [1, 1, 1]
    assert "Tracking s22 5 is not beyond the recorded position" in str(units[1].error)
    assert recorder.max_tracking_id("s22") == 12


def test_s22_a_lone_unit_keeps_its_own_statements(recorder: Any) -> None:
    """One unit alone: never the plain statement (its stale read refused all the same)."""
    a = uuid.uuid4()
    recorder.insert_events([event(a), event(a, 2)])
    sent = sent_statements(recorder)
    stale, current = Unit([event(uuid.uuid4())], read_versions={a: 1}), Unit([event(a, 3)])
    recorder._commit_group([stale])
    recorder._commit_group([current])

    assert sent == [recorder.reads_statement, recorder.alone_statement]
    assert outcome(stale) == READ
    assert outcome(current) == 1
