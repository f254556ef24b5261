"""Service levels (R-SVC-3) and service events recorded on a device (R-SVC-1)."""

from __future__ import annotations

from datetime import date

import pytest

from domain import Device, DomainError, NotFoundError
from domain.device import DeviceError
from domain.service_level import ServiceLevel, ServiceLevelError, active_levels, highest_level
from handlers import PartnerFleet
from tests.unit.conftest import OPS, event_count, events_since, of_type, refused

WARRANTY = ServiceLevel("warranty", "3y parts & labour", date(2024, 1, 1), date(2026, 12, 31))
CARE_PACK = ServiceLevel("care_pack", "4h on-site", date(2025, 7, 1), date(2026, 6, 30))
AGREEMENT = ServiceLevel(
    "support_agreement", "Datacenter Care", date(2026, 3, 1), date(2027, 2, 28)
)
EXPIRED = ServiceLevel("support_agreement", "Old contract", date(2020, 1, 1), date(2023, 12, 31))


# --- R-SVC-3: the domain functions --------------------------------------------------------


def test_r_svc_3_a_level_is_active_from_its_first_to_its_last_day() -> None:
    assert not CARE_PACK.active_on(date(2025, 6, 30))
    assert CARE_PACK.active_on(date(2025, 7, 1))
    assert CARE_PACK.active_on(date(2026, 6, 30))
    assert not CARE_PACK.active_on(date(2026, 7, 1))


def test_r_svc_3_all_active_levels_are_listed_highest_first_without_expired_ones() -> None:
    levels = [EXPIRED, WARRANTY, AGREEMENT, CARE_PACK]

    active = active_levels(levels, date(2026, 4, 1))

    assert active == [AGREEMENT, CARE_PACK, WARRANTY]


def test_r_svc_3_the_highest_active_level_is_shown() -> None:
    levels = [WARRANTY, CARE_PACK, EXPIRED]

    assert highest_level(levels, date(2026, 1, 15)) == CARE_PACK
    assert highest_level(levels, date(2026, 8, 1)) == WARRANTY


def test_r_svc_3_an_expired_level_is_never_the_highest() -> None:
    assert highest_level([EXPIRED, WARRANTY], date(2025, 1, 1)) == WARRANTY
    assert highest_level([EXPIRED], date(2025, 1, 1)) is None
    assert active_levels([EXPIRED], date(2025, 1, 1)) == []


def test_r_svc_3_of_two_active_levels_of_one_kind_the_later_ending_comes_first() -> None:
    short = ServiceLevel("care_pack", "1y", date(2026, 1, 1), date(2026, 12, 31))
    long = ServiceLevel("care_pack", "3y", date(2026, 1, 1), date(2028, 12, 31))

    assert active_levels([short, long], date(2026, 5, 1)) == [long, short]


def test_r_svc_3_a_level_of_unknown_kind_is_refused_naming_the_kinds() -> None:
    with pytest.raises(ServiceLevelError, match="Unknown service level kind 'gold'; known: "):
        ServiceLevel("gold", "Gold", date(2026, 1, 1), date(2026, 12, 31))


def test_r_svc_3_a_level_ending_before_it_starts_is_refused() -> None:
    with pytest.raises(ServiceLevelError, match=r"ends \(2025-12-31\) before it starts"):
        ServiceLevel("warranty", "Backwards", date(2026, 1, 1), date(2025, 12, 31))


def test_r_svc_3_a_level_without_a_name_is_refused() -> None:
    with pytest.raises(ServiceLevelError, match="needs a name"):
        ServiceLevel("warranty", "  ", date(2026, 1, 1), date(2026, 12, 31))


def test_r_svc_3_service_level_errors_are_domain_errors() -> None:
    assert issubclass(ServiceLevelError, DomainError)


# --- R-SVC-3: on a device -----------------------------------------------------------------


@pytest.fixture
def device_with_levels(app: PartnerFleet, customer_devices: list[str]) -> Device:
    """S1 with a warranty, a Care Pack, a support agreement and an expired contract."""
    for level in (WARRANTY, CARE_PACK, AGREEMENT, EXPIRED):
        app.add_service_level(OPS, "S1", level)
    return app.device("S1")


def test_r_svc_3_a_device_records_each_service_level_with_start_and_end(
    app: PartnerFleet, customer_devices: list[str]
) -> None:
    position = event_count(app)

    app.add_service_level(OPS, "S1", CARE_PACK)

    added = of_type(events_since(app, position), Device.ServiceLevelAdded)
    assert [(e.kind, e.name, e.starts, e.ends) for e in added] == [
        ("care_pack", "4h on-site", date(2025, 7, 1), date(2026, 6, 30))
    ]
    assert app.device("S1").service_levels == [CARE_PACK]


def test_r_svc_3_a_device_shows_its_highest_active_level(device_with_levels: Device) -> None:
    assert device_with_levels.highest_service_level(date(2025, 8, 1)) == CARE_PACK
    assert device_with_levels.highest_service_level(date(2026, 4, 1)) == AGREEMENT
    assert device_with_levels.highest_service_level(date(2028, 1, 1)) is None


def test_r_svc_3_a_device_lists_all_its_active_levels_on_request(
    device_with_levels: Device,
) -> None:
    assert device_with_levels.active_service_levels(date(2026, 4, 1)) == [
        AGREEMENT,
        CARE_PACK,
        WARRANTY,
    ]
    assert device_with_levels.active_service_levels(date(2026, 12, 1)) == [AGREEMENT, WARRANTY]


def test_r_svc_3_the_same_service_level_twice_is_refused(
    app: PartnerFleet, device_with_levels: Device
) -> None:
    with refused(app, DeviceError, "Device S1 already has service level '4h on-site'"):
        app.add_service_level(OPS, "S1", CARE_PACK)


def test_r_svc_3_a_service_level_for_an_unknown_device_is_refused(app: PartnerFleet) -> None:
    with refused(app, NotFoundError, "No device with serial number 'NOPE'"):
        app.add_service_level(OPS, "NOPE", WARRANTY)


# --- R-SVC-1: service events are recorded on the device -----------------------------------


def test_r_svc_1_a_service_event_is_recorded_on_the_device(
    app: PartnerFleet, customer_devices: list[str]
) -> None:
    position = event_count(app)

    app.record_service_event(OPS, "S1", "EV-1", "critical", "Fan 3 failed")

    recorded = of_type(events_since(app, position), Device.ServiceEventRecorded)
    assert [(e.originator_id, e.event_id, e.severity, e.summary) for e in recorded] == [
        (Device.id_for("S1"), "EV-1", "critical", "Fan 3 failed")
    ]
    assert app.device("S1").service_events == {"EV-1": "critical"}


def test_r_svc_1_a_service_event_of_unknown_severity_is_refused(
    app: PartnerFleet, customer_devices: list[str]
) -> None:
    with refused(app, DeviceError, "Unknown severity 'urgent'; use critical, warning or info"):
        app.record_service_event(OPS, "S1", "EV-1", "urgent", "Fan 3 failed")


def test_r_svc_1_a_service_event_is_recorded_once(
    app: PartnerFleet, customer_devices: list[str]
) -> None:
    app.record_service_event(OPS, "S1", "EV-1", "warning", "Fan 3 slow")

    with refused(app, DeviceError, "Service event EV-1 is already recorded"):
        app.record_service_event(OPS, "S1", "EV-1", "critical", "Fan 3 failed")
