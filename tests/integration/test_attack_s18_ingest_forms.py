"""Session 18's attack on the e2Open per-row pass (holding tenant and device id inline).

Serials and Location IDs whose normal form differs from their text (lower case, leading
zeros, a lower-case copy of an earlier serial), a refused Location ID met again in the
batch, a Location ID differing only in case (another partner: never case-folded), a
partner registered but not certified, and the same PCs again under a second batch id
(the retry path: each a duplicate): the steps as they were before the pass and the new
ones give the same outcomes and store the same rows, byte for byte.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from domain import base as domain_base
from domain.base import NAMESPACE
from handlers import PartnerFleet
from handlers import landing as landing_module
from handlers.holding import HoldingCommands
from handlers.landing import Landing
from infra.storage.pg_copy import COPY_MIN_ROWS, CopyStream
from tests.integration.test_issue_11_fewer_steps_rows import (
    OLD_CALLS,
    WHEN,
    old_place_plain,
    old_stored_event,
    stored,
    two_fleets,
)
from tests.scenarios import OPS, report

pytestmark = pytest.mark.postgres
__all__ = ["two_fleets"]  # the fixture, used by name

SIZE = COPY_MIN_ROWS + 50


def forms() -> list[Any]:
    """Plain reports in lower and mixed case and with leading zeros, each normal form
    once, and the forms that must be refused or found."""
    reports: list[Any] = []
    for i in range(SIZE):
        serial = f"{'abc' if i % 3 == 0 else 'AbC'}{i:07d}"  # lower/mixed, leading zeros
        reports.append(report(serial))
    reports[5] = report("ABC0000003")  # upper-case copy of a lower-case one: a duplicate
    reports[7] = report("abc0000003", model="Other")  # same PC, other content: refused
    reports[9] = report("ABC0000009", "LOC-9")  # unknown partner: refused ...
    reports[12] = report("ABC0000012", "LOC-9")  # ... and met again
    reports[14] = report("ABC0000014", "loc-1")  # case differs: another, unknown partner
    reports[16] = report("ABC0000016", "LOC-2")  # registered, not certified
    reports[18] = report("0", "LOC-1")  # a one-digit serial
    return reports


def test_attack_s18_forms_store_the_same_rows_old_and_new_r_hld_1(
    two_fleets: tuple[PartnerFleet, PartnerFleet],
    streams: list[CopyStream],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old, new = two_fleets
    for fleet in (old, new):
        fleet.register_partner(OPS, "LOC-2", "Partner LOC-2")  # no holding tenant
    monkeypatch.setattr(Landing, "iso_at", lambda self, ns: WHEN)
    OLD_CALLS.clear()
    before = [fleet.recorder.max_notification_id() or 0 for fleet in (old, new)]

    outcomes_new = [new.receive_e2open_batch(OPS, key, forms()) for key in ("f-1", "f-2")]
    with monkeypatch.context() as patch:
        patch.setattr(domain_base, "_uuid5", lambda name: uuid.uuid5(NAMESPACE, name))
        patch.setattr(HoldingCommands, "_place_plain", old_place_plain)
        patch.setattr(landing_module, "stored_event", old_stored_event)
        outcomes_old = [old.receive_e2open_batch(OPS, key, forms()) for key in ("f-1", "f-2")]

    assert OLD_CALLS.count("place_plain") >= SIZE  # the old steps were taken
    assert outcomes_new == outcomes_old
    first, second = outcomes_new
    assert [r.index for r in first.rejected] == [7, 9, 12, 14, 16]
    assert (len(first.accepted), first.duplicates) == (SIZE - 6, ["ABC0000003"])
    # The retry under another batch id lands nothing new: every PC found, none refused
    # but those refused before.
    assert [r.index for r in second.rejected] == [7, 9, 12, 14, 16]
    assert (second.accepted, len(second.duplicates)) == ([], SIZE - 5)
    rows_old, rows_new = stored(old, before[0]), stored(new, before[1])
    landed = [row for row in rows_new if WHEN.encode() in row[4]]
    assert len(landed) == SIZE - 6  # the duplicate at 5 lands nothing
    assert rows_new[: len(landed)] == rows_old[: len(landed)]
    assert [row[:4] for row in rows_new] == [row[:4] for row in rows_old]
