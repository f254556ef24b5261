"""`independent(units)`: whether a group may go by the plain statement (issue 11, session
22). Only a group whose own conflicts cannot arise: any policy position, a version written
twice or an aggregate read that a unit writes sends it by the group statement."""

from __future__ import annotations

import uuid
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent, Tracking

from infra.storage.group_commit import Unit
from infra.storage.pg_recorder import independent

A, B, C = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def ev(aggregate_id: UUID, version: int = 1) -> StoredEvent:
    return StoredEvent(aggregate_id, version, "tests:Event", b"{}")


@pytest.mark.parametrize(
    ("units", "expected"),
    [
        ([Unit([ev(A)]), Unit([ev(B), ev(B, 2)], read_versions={C: 3})], True),
        ([Unit([ev(A)]), Unit([ev(A, 2)])], True),  # one aggregate, other versions
        ([Unit([ev(A)], read_versions={C: 1}), Unit([ev(B)], read_versions={C: 1})], True),
        ([Unit([ev(A)]), Unit([ev(B)], tracking=Tracking("p", 1))], False),
        ([Unit([ev(A)]), Unit([ev(A)])], False),  # a version written twice
        ([Unit([ev(A), ev(A)]), Unit([ev(B)])], False),  # twice within one unit
        ([Unit([ev(A, 2)]), Unit([ev(B)], read_versions={A: 1})], False),  # read, written
        ([Unit([ev(A, 2)], read_versions={A: 1}), Unit([ev(B)])], False),  # by itself
    ],
)
def test_s22_independent(units: list[Unit], expected: bool) -> None:
    assert independent(units) is expected
