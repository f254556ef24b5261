"""Issue 11: e2Open PCs landed in bulk store exactly what the Device aggregate would (R-HLD-1).

`handlers/landing.py` writes a PC's created event straight to its stored form, and
`Device.land_in_holding_tenant` builds the aggregate without the library's generic
construction; both must be indistinguishable from the paths they replace, and a batch must
keep every R-HLD-1 outcome (duplicates, repeats in one batch, rejections).
"""

from __future__ import annotations

import string
import unicodedata
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID, uuid4, uuid5

from eventsourcing.persistence import Mapper
from hypothesis import given, reject, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from domain import Device, E2OpenBatch
from domain.base import NAMESPACE, Cause, natural_id
from domain.intake import E2OpenReport
from handlers import PartnerFleet
from handlers.landing import Landing
from tests.scenarios import IN_MEMORY
from tests.unit.conftest import OPS, e2open_report, events_since, names, of_type

# Text as a feed may bring it (quotes, backslashes, accents, emoji), within the model's rules.
TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=40
).filter(lambda t: t.strip() == t and bool(t))
SERIAL = st.text(alphabet=string.ascii_uppercase + string.digits, min_size=1, max_size=32)


@st.composite
def reports(draw: st.DrawFn) -> E2OpenReport:
    """Valid e2Open reports with every optional field drawn."""
    raw: dict[str, Any] = {
        "serial": draw(SERIAL),
        "model": draw(TEXT),
        "reseller_location_id": draw(TEXT),
        "distributor": draw(TEXT),
        "ship_date": draw(st.dates(date(2000, 1, 1), date(2100, 1, 1))).isoformat(),
        "care_plan": draw(st.sampled_from(["premium", "premium_plus"])),
    }
    if draw(st.booleans()):
        raw["end_customer"] = draw(TEXT)
    try:
        return E2OpenReport.model_validate(raw)
    except ValidationError:
        reject()  # text the model refuses (R-HLD-1 rejects it): no row to compare


def stock_row(mapper: Mapper[Any], cause: Cause, report: E2OpenReport, tenant: UUID) -> Any:
    """The stored event of the aggregate path, with a fixed timestamp."""
    device = Device.land_in_holding_tenant(cause, tenant, **report.model_dump())
    [event] = device.collect_events()
    return event, mapper.to_stored_event(event)


@settings(max_examples=150, deadline=None)
@given(report=reports(), principal=TEXT, correlation=TEXT)
def test_issue_11_landing_row_is_the_mappers_stored_event(
    report: E2OpenReport, principal: str, correlation: str
) -> None:
    """The directly written row is byte for byte what the mapper stores for the event."""
    app = PartnerFleet(env=IN_MEMORY)
    cause = Cause(principal, correlation)
    tenant = uuid4()
    event, stored = stock_row(app.mapper, cause, report, tenant)
    landing = Landing(app.mapper, cause)
    assert landing.available
    row = landing.row(Device.id_for(report.serial), report, tenant, event.timestamp)
    assert row == stored
    assert app.mapper.to_domain_event(row) == event


def test_issue_11_land_in_holding_tenant_is_the_generic_construction() -> None:
    """R-HLD-1: the aggregate and its event equal what eventsourcing's `_create` makes."""
    cause, tenant = Cause("feed:e2open", "corr-1"), uuid4()
    fields: dict[str, Any] = dict(e2open_report(" pc1 "), end_customer="Müller AG")
    fields |= {"care_plan": "premium_plus", "ship_date": date(2026, 10, 1)}
    fast = Device.land_in_holding_tenant(cause, tenant, **fields)
    [made] = fast.collect_events()
    generic = Device._start(
        Device.ReportedByE2Open,
        cause,
        Device.id_for("PC1"),
        serial="PC1",
        holding_tenant_id=tenant,
        timestamp=made.timestamp,
        **{k: v for k, v in fields.items() if k != "serial"},
    )
    [expected] = generic.collect_events()
    assert vars(made) == vars(expected)
    assert list(vars(made)) == list(vars(expected))  # the stored JSON's key order
    assert vars(fast) == vars(generic)
    assert fast.placement == tenant
    assert fast.placement_owner == "LOC-1"


def test_issue_11_landing_falls_back_to_aggregates_with_a_compressor(
    holding_tenant: UUID,
) -> None:
    """R-HLD-1: with a compressed store the batch lands Device aggregates as before."""
    app = PartnerFleet(
        env=IN_MEMORY | {"COMPRESSOR_TOPIC": "eventsourcing.compressor:ZlibCompressor"}
    )
    app.register_partner(OPS, "LOC-1", "Partner LOC-1")
    app.certify_partner(OPS, "LOC-1", "resell_view_monitor")
    assert not Landing(app.mapper, OPS).available
    outcome = app.receive_e2open_batch(OPS, "z-1", [e2open_report("PC1"), e2open_report("PC2")])
    assert outcome.accepted == ["PC1", "PC2"]
    pc: Device = app.repository.get(Device.id_for("PC1"))
    assert pc.placement_owner == "LOC-1"


def test_issue_11_bulk_batch_stores_devices_then_the_batch_r_hld_1(
    app: PartnerFleet, holding_tenant: UUID
) -> None:
    """R-HLD-1: encoded PCs are stored before the batch's event, one each, loadable as
    Devices in the holding tenant; read-your-writes names the last of them."""
    before = app.recorder.max_notification_id() or 0
    outcome = app.receive_e2open_batch(
        OPS, "b-1", [e2open_report(f"PC{i}", end_customer='Ünïcode "AG"') for i in range(5)]
    )
    assert outcome.accepted == [f"PC{i}" for i in range(5)]
    stored = events_since(app, before)
    assert names(stored) == ["Device.ReportedByE2Open"] * 5 + ["E2OpenBatch.Received"]
    assert app.last_position() == app.recorder.max_notification_id()
    pc: Device = app.repository.get(Device.id_for("PC3"))
    assert (pc.placement, pc.reported_end_customer) == (holding_tenant, 'Ünïcode "AG"')
    assert of_type(stored, E2OpenBatch.Received)[0].accepted == outcome.accepted


def test_issue_11_serial_twice_in_one_bulk_batch_r_hld_1(
    app: PartnerFleet, holding_tenant: UUID
) -> None:
    """R-HLD-1: a serial repeated alike in one batch is a duplicate, repeated with other
    content is rejected; the first one lands once."""
    before = app.recorder.max_notification_id() or 0
    outcome = app.receive_e2open_batch(
        OPS,
        "b-2",
        [
            e2open_report("PC1"),
            e2open_report("pc1"),  # the same PC, the same report
            e2open_report("PC1", model="ZBook"),  # the same PC, another report
        ],
    )
    assert outcome.accepted == ["PC1"]
    assert outcome.duplicates == ["PC1"]
    assert [r.index for r in outcome.rejected] == [2]
    assert "different content" in outcome.rejected[0].reason
    assert names(events_since(app, before)) == ["Device.ReportedByE2Open", "E2OpenBatch.Received"]


def test_issue_11_known_serial_retries_with_lookups_r_hld_1(
    app: PartnerFleet, holding_tenant: UUID
) -> None:
    """R-HLD-1: a PC landed by an earlier batch conflicts with the optimistic save; the
    retry looks it up, so the new batch reports it as a duplicate and lands the rest."""
    app.receive_e2open_batch(OPS, "b-3", [e2open_report("PC1")])
    before = app.recorder.max_notification_id() or 0
    outcome = app.receive_e2open_batch(OPS, "b-4", [e2open_report("PC1"), e2open_report("PC2")])
    assert (outcome.accepted, outcome.duplicates) == (["PC2"], ["PC1"])
    assert names(events_since(app, before)) == ["Device.ReportedByE2Open", "E2OpenBatch.Received"]
    assert datetime.now(UTC) >= app.repository.get(Device.id_for("PC2")).created_on


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(["device", "partner", "e2open-batch"]), key=st.text(max_size=40))
def test_issue_11_natural_ids_are_uuid5_of_the_key(kind: str, key: str) -> None:
    """Ids derived from natural keys stay what uuid5 made of them (stored histories)."""
    try:
        expected = uuid5(NAMESPACE, f"{kind}:{unicodedata.normalize('NFC', key)}")
    except UnicodeEncodeError:
        reject()  # a lone surrogate: no id either way
    made = natural_id(kind, key)
    assert made == expected
    assert (made.version, made.variant, hash(made), str(made)) == (
        5,
        expected.variant,
        hash(expected),
        str(expected),
    )
