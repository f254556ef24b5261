"""Issue 11 (session 18): a batch stores the same rows through the old steps and the new.

The e2Open batch's hot path was made of fewer Python steps (one regular expression for
the plain check, uuid5 by hashlib with UUID's slots set directly, COPY rows encoded in
chunks by `BinaryRows` instead of psycopg's `write_row`; then the per-row pass: a
report's holding tenant and device id inline, the stored event's dict given whole, a
COPY row's start in one struct pack). The same batch, received by two
fleets in schemas of their own, one with the steps as they were before (the reference
plain check, `uuid.uuid5`, `write_row`, the former `_place_plain` and
`stored_event`), stores byte for byte the same rows: ids,
versions, topics, states and notification ids (the events' timestamps pinned).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent

from domain import base as domain_base
from domain.base import NAMESPACE
from domain.device import Device
from domain.intake import PlainReport
from handlers import PartnerFleet
from handlers import holding as holding_module
from handlers import landing as landing_module
from handlers.base import Working
from handlers.holding import HoldingCommands
from handlers.landing import Landing
from infra.bootstrap import build_fleet
from infra.settings import Settings
from infra.storage import pg_copy
from infra.storage.pg_copy import COPY_MIN_ROWS, CopyStream, RowsByPsycopg
from tests.conftest import POSTGRES_DSN, drop_schema
from tests.scenarios import OPS, partner, report
from tests.unit.test_issue_11_fewer_steps import reference_plain_report

pytestmark = pytest.mark.postgres

SIZE = COPY_MIN_ROWS + 100
WHEN = "2026-11-30T12:00:00.123456+00:00"
TIMESTAMP = re.compile(rb'^\{"timestamp":\{"_type_":"datetime_iso","_data_":"[^"]*"\}')


def batch() -> list[Any]:
    """Plain reports with every optional field and text needing JSON escapes, reports the
    model's path takes (padded, lower case), a serial twice, and rejections."""
    reports: list[Any] = []
    for i in range(SIZE):
        extra: dict[str, Any] = {}
        if i % 5 == 0:
            extra["end_customer"] = f'Acme "{i % 3}" \\ Co'
        if i % 4 == 0:
            extra["care_plan"] = "premium_plus"
        if i % 7 == 0:
            extra["model"] = 'ZBook 14" G11'
        reports.append(report(f"5CG{i:06d}", **extra))
    reports[10] = report(" 5cg000010 ")  # padded: the model's path
    reports[11] = report("5cg000011", model=" EliteBook ")
    reports[20] = report("5CG000019")  # twice: a duplicate
    reports[30] = report("5CG000030", "LOC-9")  # unknown partner: rejected
    reports[40] = report("5CG-40")  # malformed serial: rejected
    return reports


OLD_CALLS: list[str] = []  # which old steps the old fleet took


def old_place_plain(
    self: HoldingCommands, w: Working, report: PlainReport, landing: Landing
) -> str | None:
    """`_place_plain` as before session 18's per-row pass (its holding and device id by
    their functions)."""
    OLD_CALLS.append("place_plain")
    serial, holding = report[0], holding_module._holding(w, report[2], landing)
    if serial in landing.landed:
        return None
    device_id = Device.id_for_normal(serial)
    w.add_encoded(device_id, landing.plain_row(device_id, report, holding))
    landing.landed.add(serial)
    return serial


def old_stored_event(device_id: uuid.UUID, topic: str, state: bytes) -> Any:
    """`landing.stored_event` as before session 18's per-row pass."""
    OLD_CALLS.append("stored_event")
    made = object.__new__(StoredEvent)
    vars(made).update(
        originator_id=device_id,
        originator_version=Device.INITIAL_VERSION,
        topic=topic,
        state=state,
    )
    return made


def stored(fleet: PartnerFleet, after: int) -> list[tuple[Any, ...]]:
    return [
        (n.id, n.originator_id, n.originator_version, n.topic, n.state)
        for n in fleet.recorder.select_notifications(start=after + 1, limit=10 * SIZE)
    ]


@pytest.fixture
def two_fleets() -> Iterator[tuple[PartnerFleet, PartnerFleet]]:
    schemas = [f"test_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    fleets = [build_fleet(Settings(database_url=f"{POSTGRES_DSN}?schema={s}")) for s in schemas]
    try:
        for fleet in fleets:
            partner(fleet, "LOC-1")
        yield fleets[0], fleets[1]
    finally:
        for fleet in fleets:
            fleet.close()
        for schema in schemas:
            drop_schema(schema)


def test_the_old_steps_and_the_new_store_the_same_rows_r_hld_1(
    two_fleets: tuple[PartnerFleet, PartnerFleet],
    streams: list[CopyStream],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """R-HLD-1: the same batch, the same outcome and the same stored rows, byte for byte
    (the batch's own event but for its timestamp), both streamed by COPY."""
    old, new = two_fleets
    monkeypatch.setattr(Landing, "iso_at", lambda self, ns: WHEN)
    OLD_CALLS.clear()
    before = [fleet.recorder.max_notification_id() or 0 for fleet in two_fleets]
    assert before[0] == before[1]

    outcome_new = new.receive_e2open_batch(OPS, "rows-1", batch())

    by_psycopg: list[RowsByPsycopg] = []

    def old_rows(copy: Any, statements: pg_copy.CopyStatements) -> RowsByPsycopg:
        copy.set_types(statements.types)
        by_psycopg.append(RowsByPsycopg(copy))
        return by_psycopg[-1]

    with monkeypatch.context() as patch:
        patch.setattr(pg_copy, "_rows", old_rows)  # write_row, as before session 18
        patch.setattr(domain_base, "_uuid5", lambda name: uuid.uuid5(NAMESPACE, name))
        # Each report checked by the reference (session 19: the forms come from the
        # screen of the batch, no longer from plain_report per report).
        patch.setattr(
            "handlers.holding._plain_forms",
            lambda delivery: map(reference_plain_report, delivery.messages),
        )
        patch.setattr(HoldingCommands, "_place_plain", old_place_plain)
        patch.setattr(landing_module, "stored_event", old_stored_event)
        outcome_old = old.receive_e2open_batch(OPS, "rows-1", batch())

    # The old steps were the ones taken: per plain report (the duplicate and the unknown
    # partner's included), and a stored event per plain report landed.
    assert (OLD_CALLS.count("place_plain"), OLD_CALLS.count("stored_event")) == (SIZE - 3, SIZE - 5)
    assert (len(streams), len(by_psycopg)) == (2, 1)  # both streamed, the old by write_row
    assert outcome_new == outcome_old
    assert len(outcome_new.accepted) == SIZE - 3
    assert [r.index for r in outcome_new.rejected] == [30, 40]
    rows_old, rows_new = stored(old, before[0]), stored(new, before[1])
    assert len(rows_new) == SIZE - 3 + 1
    # The plain path's rows carry the pinned timestamp: whole rows compared.
    pinned = [row for row in rows_new if WHEN.encode() in row[4]]
    assert len(pinned) == SIZE - 5  # all but the two of the model's path and the batch's
    assert pinned == [row for row in rows_old if WHEN.encode() in row[4]]
    # Every row, the model path's and the batch's with their own clock's timestamps.
    assert all(TIMESTAMP.match(row[4]) for row in rows_new)
    assert [(*row[:4], TIMESTAMP.sub(b"", row[4])) for row in rows_new] == [
        (*row[:4], TIMESTAMP.sub(b"", row[4])) for row in rows_old
    ]
