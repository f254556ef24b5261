"""The committer's statements are planned again once the events table has grown
(infra/storage/pg_recorder.py, `_replan_when_grown`; session 19's found-not-fixed: the
group statement, planned once on an empty table, kept a sequential scan of the events
table until autovacuum's first ANALYZE, each group costing more as the table grew)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from handlers import PartnerFleet
from infra.storage import pg_recorder
from infra.storage.pg_recorder import FleetProcessRecorder
from tests.scenarios import partner

pytestmark = pytest.mark.postgres


def test_the_committers_connection_is_opened_again_as_the_table_grows(
    fleets: Callable[[], PartnerFleet], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pg_recorder, "REPLAN_ROWS", 30)
    monkeypatch.setattr(pg_recorder, "REPLAN_FACTOR", 2)
    fleet = fleets()
    recorder = fleet.recorder
    assert isinstance(recorder, FleetProcessRecorder)
    partner(fleet, "LOC-R0")
    first = recorder._commit_conn
    assert first is not None
    assert recorder.replans == 0
    for n in range(1, 30):
        partner(fleet, f"LOC-R{n}")

    # First commit at id ~1: opened again at 2 * 1 + 30, then at twice that plus 30.
    assert recorder.replans >= 2
    assert first.closed
    assert recorder._commit_conn is not first
    # Nothing was lost or doubled across the reopenings: every partner and user is
    # stored, and the notification ids run without a gap.
    for n in range(30):
        assert set(fleet.partner(f"LOC-R{n}").users) == {f"anna@LOC-R{n}", f"ben@LOC-R{n}"}
    ids = [n.id for n in recorder.select_notifications(start=1, limit=10_000)]
    assert ids == list(range(1, len(ids) + 1))
    assert recorder.replans <= len(ids).bit_length()  # geometrically spaced, not per save


def test_a_connection_opened_on_a_big_table_waits_for_its_own_growth(
    fleets: Callable[[], PartnerFleet], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pg_recorder, "REPLAN_ROWS", 30)
    monkeypatch.setattr(pg_recorder, "REPLAN_FACTOR", 2)
    writer = fleets()
    for n in range(10):
        partner(writer, f"LOC-W{n}")
    grown = fleets()  # another process, first committing at the table's size now
    recorder = grown.recorder
    assert isinstance(recorder, FleetProcessRecorder)
    top = max(n.id for n in recorder.select_notifications(start=1, limit=10_000))
    partner(grown, "LOC-G0")
    assert recorder._replan_at is not None
    assert recorder._replan_at > 2 * top  # measured from its own first commit
    assert recorder.replans == 0
