"""The service read model: service events per service partner, service levels per device."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

import pytest

from domain import Device, NotFoundError
from domain.service_level import ServiceLevel
from handlers import PartnerFleet
from handlers.access import ForbiddenError, PartnerScope
from handlers.devices import PartnerChoice
from projections.base import MomentError, Tx, iso
from projections.service import (
    ServiceEvent,
    ServiceSummary,
    service_events,
    service_levels,
    service_summary,
)
from tests.scopes import partner_at
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
        events = service_events(tx, partner_at(fleet, SERVICE_LOC)).rows

    assert events == [
        ServiceEvent("S3", "C2", "EV4", "info", "info on S3", recorded["EV4"]),
        ServiceEvent("S1", "C1", "EV3", "critical", "critical on S1", recorded["EV3"]),
        ServiceEvent("S2", "C1", "EV2", "warning", "warning on S2", recorded["EV2"]),
        ServiceEvent("S1", "C1", "EV1", "critical", "critical on S1", recorded["EV1"]),
    ]


@pytest.mark.parametrize(
    "query",
    [
        service_events,
        lambda tx, scope: service_events(tx, scope, serial="S1"),
        service_summary,
        lambda tx, scope: service_levels(tx, scope, "S1", date(2026, 4, 15)),
    ],
    ids=["events", "events of S1", "summary", "levels"],
)
def test_r_svc_1_a_reseller_linked_to_the_device_never_sees_its_service_events(
    fleet: PartnerFleet, read: Reader, world: None, query: Callable[[Tx, PartnerScope], object]
) -> None:
    """R-SVC-1: a reseller is refused service events, summaries and levels outright (403),
    whatever device it names, so nothing about them depends on the device."""
    with read() as tx, pytest.raises(ForbiddenError, match="not a service partner"):
        query(tx, partner_at(fleet, LOC))


def test_r_svc_1_a_service_partner_linked_only_as_reseller_sees_no_service_events(
    fleet: PartnerFleet, read: Reader, world: None
) -> None:
    link_new_servers(fleet, "C4", "S5", to=OTHER_SERVICE_LOC)
    fleet.record_service_event(OPS, "S5", "EV6", "critical", "critical on S5")

    with read() as tx:
        events = service_events(tx, partner_at(fleet, OTHER_SERVICE_LOC)).rows

    assert event_ids(events) == ["EV5"]


def test_r_svc_1_each_service_partner_sees_only_the_devices_it_services(
    fleet: PartnerFleet, read: Reader, world: None
) -> None:
    with read() as tx:
        other = service_events(tx, partner_at(fleet, OTHER_SERVICE_LOC)).rows
        with pytest.raises(NotFoundError) as not_its_device:
            service_events(tx, partner_at(fleet, OTHER_SERVICE_LOC), serial="S1")
        with pytest.raises(NotFoundError) as unknown:
            service_events(tx, partner_at(fleet, OTHER_SERVICE_LOC), serial="S404")

    assert [(e.serial, e.event_id) for e in other] == [("S4", "EV5")]
    assert str(not_its_device.value) == "No device with serial number 'S1'."
    assert str(unknown.value) == "No device with serial number 'S404'."


def test_r_svc_1_after_the_service_partner_is_unlinked_the_devices_events_disappear(
    fleet: PartnerFleet, read: Reader, world: None
) -> None:
    with read() as tx:
        assert event_ids(service_events(tx, partner_at(fleet, SERVICE_LOC), serial="S1").rows) == [
            "EV3",
            "EV1",
        ]

    fleet.unlink_devices(CUSTOMER, "C1", ["S1"], role=AS_SERVICE_PARTNER)

    with read() as tx:
        events = service_events(tx, partner_at(fleet, SERVICE_LOC)).rows
        summary = service_summary(tx, partner_at(fleet, SERVICE_LOC)).rows
    assert event_ids(events) == ["EV4", "EV2"]
    assert summary == [ServiceSummary("C1", 1, 0), ServiceSummary("C2", 1, 0)]


def test_r_svc_1_after_a_relink_only_the_new_service_partner_sees_the_devices_events(
    fleet: PartnerFleet, read: Reader, world: None
) -> None:
    with read() as tx:
        assert event_ids(service_events(tx, partner_at(fleet, OTHER_SERVICE_LOC)).rows) == ["EV5"]

    choice = PartnerChoice(location_id=OTHER_SERVICE_LOC, role=AS_SERVICE_PARTNER)
    fleet.link_devices(CUSTOMER, "C1", ["S1"], choice)

    with read() as tx:
        old = service_events(tx, partner_at(fleet, SERVICE_LOC)).rows
        new = service_events(tx, partner_at(fleet, OTHER_SERVICE_LOC), serial="S1").rows
        with pytest.raises(NotFoundError, match="No device with serial number 'S1'"):
            service_events(tx, partner_at(fleet, SERVICE_LOC), serial="S1")
    assert "S1" not in {e.serial for e in old}
    assert event_ids(new) == ["EV3", "EV1"]


def test_r_svc_1_events_recorded_after_the_view_caught_up_are_listed(
    fleet: PartnerFleet, read: Reader, world: None
) -> None:
    with read() as tx:
        before = event_ids(service_events(tx, partner_at(fleet, SERVICE_LOC), serial="S2").rows)

    fleet.record_service_event(OPS, "S2", "EV9", "critical", "critical on S2")

    with read() as tx:
        after = event_ids(service_events(tx, partner_at(fleet, SERVICE_LOC), serial="S2").rows)
    assert (before, after) == (["EV2"], ["EV9", "EV2"])


# --- R-SVC-2: a summary per customer, listings per customer and per device ---------------


def test_r_svc_2_the_summary_counts_events_per_customer_and_critical_ones_separately(
    fleet: PartnerFleet, read: Reader, world: None
) -> None:
    with read() as tx:
        summary = service_summary(tx, partner_at(fleet, SERVICE_LOC)).rows
        other = service_summary(tx, partner_at(fleet, OTHER_SERVICE_LOC)).rows

    assert summary == [ServiceSummary("C1", 3, 2), ServiceSummary("C2", 1, 0)]
    assert other == [ServiceSummary("C3", 1, 1)]


def test_r_svc_2_a_service_partner_lists_the_events_of_one_customer(
    fleet: PartnerFleet, read: Reader, world: None
) -> None:
    with read() as tx:
        of_c1 = service_events(tx, partner_at(fleet, SERVICE_LOC), customer_id="C1").rows
        of_c2 = service_events(tx, partner_at(fleet, SERVICE_LOC), customer_id="C2").rows
        with pytest.raises(NotFoundError, match="No customer 'C3' found"):
            service_events(tx, partner_at(fleet, SERVICE_LOC), customer_id="C3")

    assert [(e.serial, e.event_id) for e in of_c1] == [("S1", "EV3"), ("S2", "EV2"), ("S1", "EV1")]
    assert [(e.serial, e.event_id) for e in of_c2] == [("S3", "EV4")]


@pytest.mark.parametrize("serial", ["S1", "s1", " S1 "])
def test_r_svc_2_a_service_partner_lists_the_events_of_one_device(
    fleet: PartnerFleet, read: Reader, world: None, serial: str
) -> None:
    with read() as tx:
        events = service_events(tx, partner_at(fleet, SERVICE_LOC), serial=serial).rows

    assert [(e.serial, e.event_id, e.severity) for e in events] == [
        ("S1", "EV3", "critical"),
        ("S1", "EV1", "critical"),
    ]


def test_r_svc_2_customer_and_device_filters_combine(
    fleet: PartnerFleet, read: Reader, world: None
) -> None:
    with read() as tx:
        matching = service_events(
            tx, partner_at(fleet, SERVICE_LOC), customer_id="C1", serial="S2"
        ).rows
        crossed = service_events(
            tx, partner_at(fleet, SERVICE_LOC), customer_id="C2", serial="S2"
        ).rows

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
    fleet: PartnerFleet, read: Reader, levels: None, day: date, expected: list[ServiceLevel]
) -> None:
    with read() as tx:
        assert service_levels(tx, partner_at(fleet, SERVICE_LOC), "S1", day) == expected


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
    fleet: PartnerFleet, read: Reader, levels: None, day: date, expected: list[ServiceLevel]
) -> None:
    with read() as tx:
        assert (
            service_levels(tx, partner_at(fleet, SERVICE_LOC), "s1", day, all_active=True)
            == expected
        )


def test_r_svc_3_expired_levels_are_not_active(
    fleet: PartnerFleet, read: Reader, levels: None
) -> None:
    with read() as tx:
        after_all = service_levels(
            tx, partner_at(fleet, SERVICE_LOC), "S1", date(2028, 1, 1), all_active=True
        )
        before_all = service_levels(
            tx, partner_at(fleet, SERVICE_LOC), "S1", date(2024, 12, 31), all_active=True
        )

    assert (after_all, before_all) == ([], [])


def test_r_svc_3_a_devices_levels_are_its_own(
    fleet: PartnerFleet, read: Reader, levels: None
) -> None:
    with read() as tx:
        of_s2 = service_levels(
            tx, partner_at(fleet, SERVICE_LOC), "S2", date(2026, 4, 15), all_active=True
        )
        of_s3 = service_levels(
            tx, partner_at(fleet, SERVICE_LOC), "S3", date(2026, 4, 15), all_active=True
        )

    assert [level.name for level in of_s2] == ["S2 warranty"]
    assert of_s3 == []


def test_r_svc_3_only_the_service_partner_of_the_device_sees_its_levels(
    fleet: PartnerFleet, read: Reader, levels: None
) -> None:
    """R-SVC-3, R-SVC-1 (issue 9): levels are shown as service events are, to the device's
    service partner only; its reseller is refused (403)."""
    with read() as tx:
        service = service_levels(tx, partner_at(fleet, SERVICE_LOC), "S1", date(2026, 4, 15))
        with pytest.raises(ForbiddenError, match="not a service partner"):
            service_levels(tx, partner_at(fleet, LOC), "S1", date(2026, 4, 15))

    assert service == [AGREEMENT]


@pytest.mark.parametrize("serial", ["S1", "S404"])
def test_r_svc_3_a_service_partner_not_linked_to_the_device_is_told_it_is_not_found(
    fleet: PartnerFleet, read: Reader, levels: None, serial: str
) -> None:
    """R-SVC-3: another partner's device answers as an unknown serial does."""
    with read() as tx, pytest.raises(NotFoundError) as refused:
        service_levels(tx, partner_at(fleet, OTHER_SERVICE_LOC), serial, date(2026, 4, 15))

    assert str(refused.value) == f"No device with serial number {serial!r}."


def test_r_svc_3_a_partner_unlinked_from_the_device_is_refused_at_once(
    fleet: PartnerFleet, read: Reader, levels: None
) -> None:
    with read() as tx:
        before = service_levels(tx, partner_at(fleet, SERVICE_LOC), "S1", date(2026, 4, 15))

    fleet.unlink_devices(CUSTOMER, "C1", ["S1"], role=AS_SERVICE_PARTNER)

    assert before == [AGREEMENT]
    with read() as tx, pytest.raises(NotFoundError, match="No device with serial number 'S1'"):
        service_levels(tx, partner_at(fleet, SERVICE_LOC), "S1", date(2026, 4, 15))


def test_r_svc_3_a_datetime_for_the_day_is_refused_naming_the_date_to_pass(
    fleet: PartnerFleet, read: Reader, levels: None
) -> None:
    """R-SVC-3 (issue 8, kind 4): the day of a datetime depends on a zone only the caller
    knows, so it is refused clearly instead of failing to compare with a date."""
    moment = datetime(2026, 4, 15, 23, 30, tzinfo=UTC)

    with read() as tx, pytest.raises(MomentError, match="pass 2026-04-15T23:30:00\\+00:00 as"):
        service_levels(tx, partner_at(fleet, SERVICE_LOC), "S1", moment)
