"""The service read model: service events per service partner, service levels per device."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from domain import Device, NotAllowedError
from domain.service_level import ServiceLevel
from handlers import PartnerFleet
from handlers.devices import PartnerChoice
from projections.base import MomentError, iso
from projections.service import (
    ServiceEvent,
    ServiceSummary,
    service_events,
    service_levels,
    service_summary,
)
from tests.unit.views_support import (
    CUSTOMER,
    LOC,
    OPS,
    OTHER_SERVICE_LOC,
    SERVICE_LOC,
    Reader,
    db,
    device_events,
    fleet,
    link_new_servers,
    new_partner,
    read,
    runner,
)

__all__ = ["db", "fleet", "read", "runner"]

AS_SERVICE_PARTNER = "service_partner"

# (serial, event id, severity): recorded in this order.
EVENTS = [
    ("S1", "EV1", "critical"),
    ("S2", "EV2", "warning"),
    ("S1", "EV3", "critical"),
    ("S3", "EV4", "info"),
    ("S4", "EV5", "critical"),
]


@pytest.fixture
def world(fleet: PartnerFleet) -> None:
    """LOC-S serves C1 (S1, S2) and C2 (S3); LOC-T serves C3 (S4); reseller LOC-1 sells S1."""
    new_partner(fleet, LOC)
    new_partner(fleet, SERVICE_LOC, service=True)
    new_partner(fleet, OTHER_SERVICE_LOC, service=True)
    link_new_servers(fleet, "C1", "S1", "S2", to=SERVICE_LOC, role=AS_SERVICE_PARTNER)
    link_new_servers(fleet, "C2", "S3", to=SERVICE_LOC, role=AS_SERVICE_PARTNER)
    link_new_servers(fleet, "C3", "S4", to=OTHER_SERVICE_LOC, role=AS_SERVICE_PARTNER)
    fleet.link_devices(CUSTOMER, "C1", ["S1"], PartnerChoice(location_id=LOC))
    for serial, event_id, severity in EVENTS:
        fleet.record_service_event(OPS, serial, event_id, severity, f"{severity} on {serial}")


def event_ids(events: list[ServiceEvent]) -> list[str]:
    """The event ids, in the order listed."""
    return [event.event_id for event in events]


# --- R-SVC-1: only the service partner sees a device's service events --------------------


def test_r_svc_1_the_service_partner_sees_the_service_events_of_its_devices_newest_first(
    fleet: PartnerFleet, read: Reader, world: None
) -> None:
    recorded = {
        e.event_id: iso(e.timestamp)
        for serial in ("S1", "S2", "S3")
        for e in device_events(fleet, serial, Device.ServiceEventRecorded)
    }

    with read() as tx:
        events = service_events(tx, SERVICE_LOC)

    assert events == [
        ServiceEvent("S3", "C2", "EV4", "info", "info on S3", recorded["EV4"]),
        ServiceEvent("S1", "C1", "EV3", "critical", "critical on S1", recorded["EV3"]),
        ServiceEvent("S2", "C1", "EV2", "warning", "warning on S2", recorded["EV2"]),
        ServiceEvent("S1", "C1", "EV1", "critical", "critical on S1", recorded["EV1"]),
    ]


def test_r_svc_1_a_reseller_linked_to_the_device_never_sees_its_service_events(
    read: Reader, world: None
) -> None:
    with read() as tx:
        events = service_events(tx, LOC)
        of_s1 = service_events(tx, LOC, serial="S1")
        summary = service_summary(tx, LOC)

    assert (events, of_s1, summary) == ([], [], [])


def test_r_svc_1_a_service_partner_linked_only_as_reseller_sees_no_service_events(
    fleet: PartnerFleet, read: Reader, world: None
) -> None:
    link_new_servers(fleet, "C4", "S5", to=OTHER_SERVICE_LOC)
    fleet.record_service_event(OPS, "S5", "EV6", "critical", "critical on S5")

    with read() as tx:
        events = service_events(tx, OTHER_SERVICE_LOC)

    assert event_ids(events) == ["EV5"]


def test_r_svc_1_each_service_partner_sees_only_the_devices_it_services(
    read: Reader, world: None
) -> None:
    with read() as tx:
        other = service_events(tx, OTHER_SERVICE_LOC)
        not_its_device = service_events(tx, OTHER_SERVICE_LOC, serial="S1")

    assert [(e.serial, e.event_id) for e in other] == [("S4", "EV5")]
    assert not_its_device == []


def test_r_svc_1_after_the_service_partner_is_unlinked_the_devices_events_disappear(
    fleet: PartnerFleet, read: Reader, world: None
) -> None:
    with read() as tx:
        assert event_ids(service_events(tx, SERVICE_LOC, serial="S1")) == ["EV3", "EV1"]

    fleet.unlink_devices(CUSTOMER, "C1", ["S1"], role=AS_SERVICE_PARTNER)

    with read() as tx:
        events = service_events(tx, SERVICE_LOC)
        summary = service_summary(tx, SERVICE_LOC)
    assert event_ids(events) == ["EV4", "EV2"]
    assert summary == [ServiceSummary("C1", 1, 0), ServiceSummary("C2", 1, 0)]


def test_r_svc_1_after_a_relink_only_the_new_service_partner_sees_the_devices_events(
    fleet: PartnerFleet, read: Reader, world: None
) -> None:
    with read() as tx:
        assert event_ids(service_events(tx, OTHER_SERVICE_LOC)) == ["EV5"]

    choice = PartnerChoice(location_id=OTHER_SERVICE_LOC, role=AS_SERVICE_PARTNER)
    fleet.link_devices(CUSTOMER, "C1", ["S1"], choice)

    with read() as tx:
        old = service_events(tx, SERVICE_LOC, serial="S1")
        new = service_events(tx, OTHER_SERVICE_LOC, serial="S1")
    assert old == []
    assert event_ids(new) == ["EV3", "EV1"]


def test_r_svc_1_events_recorded_after_the_view_caught_up_are_listed(
    fleet: PartnerFleet, read: Reader, world: None
) -> None:
    with read() as tx:
        before = event_ids(service_events(tx, SERVICE_LOC, serial="S2"))

    fleet.record_service_event(OPS, "S2", "EV9", "critical", "critical on S2")

    with read() as tx:
        after = event_ids(service_events(tx, SERVICE_LOC, serial="S2"))
    assert (before, after) == (["EV2"], ["EV9", "EV2"])


# --- R-SVC-2: a summary per customer, listings per customer and per device ---------------


def test_r_svc_2_the_summary_counts_events_per_customer_and_critical_ones_separately(
    read: Reader, world: None
) -> None:
    with read() as tx:
        summary = service_summary(tx, SERVICE_LOC)
        other = service_summary(tx, OTHER_SERVICE_LOC)

    assert summary == [ServiceSummary("C1", 3, 2), ServiceSummary("C2", 1, 0)]
    assert other == [ServiceSummary("C3", 1, 1)]


def test_r_svc_2_a_service_partner_lists_the_events_of_one_customer(
    read: Reader, world: None
) -> None:
    with read() as tx:
        of_c1 = service_events(tx, SERVICE_LOC, customer_id="C1")
        of_c2 = service_events(tx, SERVICE_LOC, customer_id="C2")
        of_c3 = service_events(tx, SERVICE_LOC, customer_id="C3")

    assert [(e.serial, e.event_id) for e in of_c1] == [("S1", "EV3"), ("S2", "EV2"), ("S1", "EV1")]
    assert [(e.serial, e.event_id) for e in of_c2] == [("S3", "EV4")]
    assert of_c3 == []


@pytest.mark.parametrize("serial", ["S1", "s1", " S1 "])
def test_r_svc_2_a_service_partner_lists_the_events_of_one_device(
    read: Reader, world: None, serial: str
) -> None:
    with read() as tx:
        events = service_events(tx, SERVICE_LOC, serial=serial)

    assert [(e.serial, e.event_id, e.severity) for e in events] == [
        ("S1", "EV3", "critical"),
        ("S1", "EV1", "critical"),
    ]


def test_r_svc_2_customer_and_device_filters_combine(read: Reader, world: None) -> None:
    with read() as tx:
        matching = service_events(tx, SERVICE_LOC, customer_id="C1", serial="S2")
        crossed = service_events(tx, SERVICE_LOC, customer_id="C2", serial="S2")

    assert event_ids(matching) == ["EV2"]
    assert crossed == []


# --- R-SVC-3: service levels --------------------------------------------------------------

WARRANTY = ServiceLevel("warranty", "Base warranty", date(2025, 1, 1), date(2027, 12, 31))
CARE_PACK = ServiceLevel("care_pack", "Care Pack 1y", date(2026, 1, 1), date(2026, 12, 31))
LONG_CARE_PACK = ServiceLevel("care_pack", "Care Pack 18m", date(2026, 1, 1), date(2027, 6, 30))
AGREEMENT = ServiceLevel(
    "support_agreement", "Datacenter Care", date(2026, 3, 1), date(2026, 5, 31)
)


@pytest.fixture
def levels(fleet: PartnerFleet, world: None) -> None:
    """S1 holds a warranty, two Care Packs and a support agreement; S2 only a warranty."""
    for level in (WARRANTY, CARE_PACK, AGREEMENT, LONG_CARE_PACK):
        fleet.add_service_level(OPS, "S1", level)
    fleet.add_service_level(
        OPS, "S2", ServiceLevel("warranty", "S2 warranty", date(2020, 1, 1), date(2030, 1, 1))
    )


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2024, 12, 31), []),
        (date(2025, 1, 1), [WARRANTY]),
        (date(2026, 1, 1), [LONG_CARE_PACK]),
        (date(2026, 3, 1), [AGREEMENT]),
        (date(2026, 5, 31), [AGREEMENT]),
        (date(2026, 6, 1), [LONG_CARE_PACK]),
        (date(2027, 6, 30), [LONG_CARE_PACK]),
        (date(2027, 7, 1), [WARRANTY]),
        (date(2027, 12, 31), [WARRANTY]),
        (date(2028, 1, 1), []),
    ],
)
def test_r_svc_3_the_highest_level_active_on_a_date_is_shown(
    read: Reader, levels: None, day: date, expected: list[ServiceLevel]
) -> None:
    with read() as tx:
        assert service_levels(tx, SERVICE_LOC, "S1", day) == expected


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 4, 15), [AGREEMENT, LONG_CARE_PACK, CARE_PACK, WARRANTY]),
        (date(2026, 12, 31), [LONG_CARE_PACK, CARE_PACK, WARRANTY]),
        (date(2027, 1, 1), [LONG_CARE_PACK, WARRANTY]),
        (date(2025, 6, 1), [WARRANTY]),
    ],
)
def test_r_svc_3_all_active_levels_are_shown_on_request_highest_first(
    read: Reader, levels: None, day: date, expected: list[ServiceLevel]
) -> None:
    with read() as tx:
        assert service_levels(tx, SERVICE_LOC, "s1", day, all_active=True) == expected


def test_r_svc_3_expired_levels_are_not_active(read: Reader, levels: None) -> None:
    with read() as tx:
        after_all = service_levels(tx, SERVICE_LOC, "S1", date(2028, 1, 1), all_active=True)
        before_all = service_levels(tx, SERVICE_LOC, "S1", date(2024, 12, 31), all_active=True)

    assert (after_all, before_all) == ([], [])


def test_r_svc_3_a_devices_levels_are_its_own(read: Reader, levels: None) -> None:
    with read() as tx:
        of_s2 = service_levels(tx, SERVICE_LOC, "S2", date(2026, 4, 15), all_active=True)
        of_s3 = service_levels(tx, SERVICE_LOC, "S3", date(2026, 4, 15), all_active=True)

    assert [level.name for level in of_s2] == ["S2 warranty"]
    assert of_s3 == []


def test_r_svc_3_every_partner_linked_to_the_device_sees_its_levels(
    read: Reader, levels: None
) -> None:
    with read() as tx:
        reseller = service_levels(tx, LOC, "S1", date(2026, 4, 15))

    assert reseller == [AGREEMENT]


@pytest.mark.parametrize(("partner", "serial"), [(OTHER_SERVICE_LOC, "S1"), (LOC, "S2")])
def test_r_svc_3_a_partner_not_linked_to_the_device_is_refused(
    read: Reader, levels: None, partner: str, serial: str
) -> None:
    with read() as tx, pytest.raises(NotAllowedError, match=f"{serial} is not linked to"):
        service_levels(tx, partner, serial, date(2026, 4, 15))


def test_r_svc_3_a_partner_unlinked_from_the_device_is_refused_at_once(
    fleet: PartnerFleet, read: Reader, levels: None
) -> None:
    with read() as tx:
        assert service_levels(tx, LOC, "S1", date(2026, 4, 15)) == [AGREEMENT]

    fleet.unlink_devices(CUSTOMER, "C1", ["S1"])

    with read() as tx, pytest.raises(NotAllowedError, match=LOC):
        service_levels(tx, LOC, "S1", date(2026, 4, 15))


def test_r_svc_3_a_datetime_for_the_day_is_refused_naming_the_date_to_pass(
    read: Reader, levels: None
) -> None:
    """R-SVC-3 (issue 8, kind 4): the day of a datetime depends on a zone only the caller
    knows, so it is refused clearly instead of failing to compare with a date."""
    moment = datetime(2026, 4, 15, 23, 30, tzinfo=UTC)

    with read() as tx, pytest.raises(MomentError, match="pass 2026-04-15T23:30:00\\+00:00 as"):
        service_levels(tx, SERVICE_LOC, "S1", moment)
