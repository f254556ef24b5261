"""Issue 8, kind 3: an identity already used with other content is never a silent success.

Batch ids (e2Open, alerts), serials of reported PCs and alert ids are idempotency or
deduplication keys; each guards its content (domain/idempotency.py). The same content
again is a redelivery; other content is refused with its reason and kept (R-HLD-1).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent

from domain import E2OpenBatch
from domain.intake import AlertBatch
from handlers import PartnerFleet
from tests.unit.conftest import (
    CUSTOMER,
    OPS,
    e2open_report,
    event_count,
    events_since,
    servers,
)

REUSED = "batch id {} was already received with different content"


def alert(alert_id: str, serial: str = "S1", **extra: str) -> dict[str, str]:
    """An alerts-feed message for device `serial`."""
    return {"serial": serial, "alert_id": alert_id, "severity": "warning", "message": "fan"} | extra


@pytest.fixture
def server(app: PartnerFleet) -> str:
    """Customer C1's server S1."""
    app.register_devices(CUSTOMER, "C1", servers("S1"))
    return "S1"


# --- batch ids -----------------------------------------------------------------------------


def test_r_hld_1_a_refused_delivery_delivered_again_records_nothing_more(
    app: PartnerFleet, holding_tenant: UUID
) -> None:
    """R-HLD-1: a refusal is kept once per content; its own redelivery repeats the refusal."""
    app.receive_e2open_batch(OPS, "b1", [e2open_report("PC1")])
    app.receive_e2open_batch(OPS, "b1", [e2open_report("PC2")])
    position = event_count(app)

    again = app.receive_e2open_batch(OPS, "b1", [e2open_report("PC2")])

    assert again.refused
    assert [r.reason for r in again.rejected] == [REUSED.format("b1")]
    assert event_count(app) == position


def test_r_hld_1_each_other_content_under_a_batch_id_is_kept_as_its_own_refusal(
    app: PartnerFleet, holding_tenant: UUID
) -> None:
    app.receive_e2open_batch(OPS, "b1", [e2open_report("PC1")])

    app.receive_e2open_batch(OPS, "b1", [e2open_report("PC2")])
    app.receive_e2open_batch(OPS, "b1", [e2open_report("PC3")])

    refusals = [e for e in events_since(app, 0) if isinstance(e, E2OpenBatch.DeliveryRefused)]
    assert [r.rejected[0]["serial"] for r in refusals] == ["PC2", "PC3"]
    assert len({r.fingerprint for r in refusals}) == 2


def test_r_hld_1_fewer_reports_under_a_used_batch_id_are_other_content_too(
    app: PartnerFleet, holding_tenant: UUID
) -> None:
    app.receive_e2open_batch(OPS, "b1", [e2open_report("PC1"), e2open_report("PC2")])

    outcome = app.receive_e2open_batch(OPS, "b1", [e2open_report("PC1")])

    assert outcome.refused
    assert outcome.rejected[0].reason == REUSED.format("b1")


def test_r_alr_1_an_alert_batch_id_used_again_with_other_alerts_is_refused(
    app: PartnerFleet, server: str
) -> None:
    """Alerts feed: the batch id guards its alerts like e2Open's (no alert silently lost)."""
    app.receive_alert_batch(OPS, "a1", [alert("A1")])
    same = app.receive_alert_batch(OPS, "a1", [alert("A1")])

    other = app.receive_alert_batch(OPS, "a1", [alert("A1"), alert("A2")])

    assert same.redelivered
    assert same.accepted == ["A1"]
    assert other.refused
    assert [r.reason for r in other.rejected] == [REUSED.format("a1")] * 2
    assert "A2" not in app.device("S1").alerts
    assert isinstance(events_since(app, 0)[-1], AlertBatch.DeliveryRefused)


# --- batches recorded before fingerprints were kept ---------------------------------------


def store_v1_batch(app: PartnerFleet, batch_id: str, reports: Sequence[object]) -> None:
    """Receive `reports` in another fleet and store its batch event as version 1 wrote it."""
    app.receive_e2open_batch(OPS, f"{batch_id}-source", reports)
    [received] = [e for e in events_since(app, 0) if isinstance(e, E2OpenBatch.Received)][-1:]
    stored = app.mapper.to_stored_event(received)
    state = json.loads(stored.state)
    del state["fingerprint"], state["class_version"]
    state["batch_id"] = batch_id
    app.recorder.insert_events(
        [
            StoredEvent(
                originator_id=E2OpenBatch.id_for(batch_id),
                originator_version=1,
                topic=stored.topic,
                state=json.dumps(state).encode(),
            )
        ]
    )


def test_a_version_1_batch_loads_without_fingerprint(
    app: PartnerFleet, holding_tenant: UUID
) -> None:
    store_v1_batch(app, "old", [e2open_report("PC1")])

    batch: object = app.repository.get(E2OpenBatch.id_for("old"))

    assert isinstance(batch, E2OpenBatch)
    assert (batch.batch_id, batch.fingerprint, batch.accepted) == ("old", None, ["PC1"])


def test_r_hld_1_a_version_1_batch_redelivered_with_its_reports_is_a_redelivery(
    app: PartnerFleet, holding_tenant: UUID
) -> None:
    """Old batches: each report accepted (by serial) or rejected (by index) the first time."""
    reports = [e2open_report("PC1"), {"serial": "PC9"}]
    store_v1_batch(app, "old", reports)
    position = event_count(app)

    outcome = app.receive_e2open_batch(OPS, "old", [e2open_report("pc1"), {"serial": "PC9"}])

    assert outcome.redelivered
    assert event_count(app) == position


def test_r_hld_1_a_version_1_batch_redelivered_with_a_new_report_is_refused(
    app: PartnerFleet, holding_tenant: UUID
) -> None:
    store_v1_batch(app, "old", [e2open_report("PC1")])

    outcome = app.receive_e2open_batch(OPS, "old", [e2open_report("PC1"), e2open_report("PC2")])

    assert outcome.refused
    assert [r.reason for r in outcome.rejected] == [REUSED.format("old")] * 2


# --- serials of reported PCs and alert ids ------------------------------------------------


def test_r_hld_1_a_pc_reported_again_with_other_content_is_rejected_not_a_duplicate(
    app: PartnerFleet, holding_tenant: UUID
) -> None:
    """R-HLD-1: the serial is the report's key; a new ship date or care plan is not nothing."""
    app.receive_e2open_batch(OPS, "b1", [e2open_report("PC1"), e2open_report("PC2")])

    outcome = app.receive_e2open_batch(
        OPS,
        "b2",
        [e2open_report("PC1", ship_date="2026-12-24"), e2open_report("PC2")],
    )

    assert outcome.duplicates == ["PC2"]
    [rejection] = outcome.rejected
    assert (rejection.index, rejection.serial) == (0, "PC1")
    assert "device PC1 was already reported with different content" in rejection.reason


def test_r_hld_1_a_pc_twice_in_one_batch_with_other_content_rejects_the_second(
    app: PartnerFleet, holding_tenant: UUID
) -> None:
    reports = [e2open_report("PC1"), e2open_report("PC1", care_plan="premium_plus")]

    outcome = app.receive_e2open_batch(OPS, "b1", reports)

    assert outcome.accepted == ["PC1"]
    assert [r.index for r in outcome.rejected] == [1]
    assert "already reported with different content" in outcome.rejected[0].reason
    assert app.device("PC1").care_plan == "premium"


def test_r_hld_1_a_pc_twice_in_one_batch_alike_is_one_duplicate(
    app: PartnerFleet, holding_tenant: UUID
) -> None:
    outcome = app.receive_e2open_batch(OPS, "b1", [e2open_report("PC1"), e2open_report("pc1")])

    assert (outcome.accepted, outcome.duplicates, outcome.rejected) == (["PC1"], ["PC1"], [])


def test_r_alr_1_an_alert_id_raised_again_with_other_content_is_rejected(
    app: PartnerFleet, server: str
) -> None:
    """The alert id is the dedup key of the alerts feed; it guards severity and message."""
    app.receive_alert_batch(OPS, "a1", [alert("A1")])

    outcome = app.receive_alert_batch(
        OPS, "a2", [alert("A1"), alert("A1", severity="critical"), alert("A1", message="disk")]
    )

    assert outcome.duplicates == ["A1"]
    assert [r.index for r in outcome.rejected] == [1, 2]
    assert all("alert id A1 was already raised" in r.reason for r in outcome.rejected)
    assert app.device("S1").alerts["A1"].severity == "warning"


def test_a_device_reported_before_reports_were_kept_compares_as_before(
    app: PartnerFleet, holding_tenant: UUID
) -> None:
    """A snapshot from before reports were kept: the class defaults, nothing to compare."""
    app.receive_e2open_batch(OPS, "b1", [e2open_report("PC1")])
    device = app.device("PC1")
    assert not device.reported_alike(("other model",))
    for name in ("reported_distributor", "reported_ship_date", "reported_end_customer"):
        del device.__dict__[name]

    assert device.reported_ship_date is None
    assert device.reported_alike(("other model",))
