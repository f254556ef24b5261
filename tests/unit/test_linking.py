"""Linking devices to partners: R-LNK-1 to R-LNK-6."""

from __future__ import annotations

from uuid import UUID

from domain import CustomerGroup, Device, NotFoundError
from domain.base import DomainError
from domain.device import DeviceError
from handlers import PartnerFleet
from tests.actors import customer
from tests.unit.conftest import (
    ANNA,
    CUSTOMER,
    CUSTOMER_ID,
    event_count,
    events_of,
    events_since,
    hosted_fleet,
    names,
    of_type,
    refused,
    servers,
    to,
)


def group_serials(app: PartnerFleet, location_id: str, customer_id: str = CUSTOMER_ID) -> set[str]:
    """The serials in a partner's customer group."""
    return set(app.customer_group(CustomerGroup.id_for(location_id, customer_id)).devices)


# --- R-LNK-1: a customer links by Location ID; a partner sees only its devices -----------


def test_r_lnk_1_a_customer_links_a_device_by_entering_the_partners_location_id(
    app: PartnerFleet, partner: str, customer_devices: list[str]
) -> None:
    position = event_count(app)

    app.link_devices(CUSTOMER, CUSTOMER_ID, ["S1"], to(partner))

    linked = of_type(events_since(app, position), Device.PartnerLinked)
    assert [(e.originator_id, e.location_id, e.role) for e in linked] == [
        (Device.id_for("S1"), partner, "reseller")
    ]
    assert app.device("S1").links == {"reseller": partner}


def test_r_lnk_1_a_partner_sees_only_devices_linked_to_it_grouped_by_customer(
    app: PartnerFleet, partner: str, other_partner: str
) -> None:
    second = customer("C2", "admin@second.example", "corr-c2")
    app.register_devices(CUSTOMER, CUSTOMER_ID, servers("S1", "S2", "S3"))
    app.register_devices(second, "C2", servers("T1", "T2"))

    app.link_devices(CUSTOMER, CUSTOMER_ID, ["S1", "S2"], to(partner))
    app.link_devices(CUSTOMER, CUSTOMER_ID, ["S3"], to(other_partner))
    app.link_devices(second, "C2", ["T1"], to(partner))

    assert group_serials(app, partner, CUSTOMER_ID) == {"S1", "S2"}
    assert group_serials(app, partner, "C2") == {"T1"}
    assert group_serials(app, other_partner, CUSTOMER_ID) == {"S3"}


def test_r_lnk_1_linking_to_an_unknown_location_id_is_refused(
    app: PartnerFleet, customer_devices: list[str]
) -> None:
    with refused(app, NotFoundError, "No partner has Location ID 'LOC-TYPO'; check the ID"):
        app.link_devices(CUSTOMER, CUSTOMER_ID, ["S1"], to("LOC-TYPO"))

    assert app.device("S1").links == {}


def test_r_lnk_1_only_the_owner_links_a_device(
    app: PartnerFleet, partner: str, customer_devices: list[str]
) -> None:
    stranger = customer("C9", "admin@stranger.example", "corr-x")

    with refused(app, NotFoundError, "No device with serial number .S1."):
        app.link_devices(stranger, "C9", ["S1"], to(partner))


# --- R-LNK-2: central-connect devices follow their Insight RS hosting device -------------


def test_r_lnk_2_the_partner_set_once_on_the_hosting_device_applies_to_all_it_manages(
    app: PartnerFleet, partner: str
) -> None:
    app.register_devices(CUSTOMER, CUSTOMER_ID, hosted_fleet("HOST1", "CC1", "CC2"))

    app.set_hosting_partner(CUSTOMER, CUSTOMER_ID, "HOST1", to(partner))

    for serial in ("HOST1", "CC1", "CC2"):
        assert app.device(serial).links == {"reseller": partner}
    assert group_serials(app, partner) == {"HOST1", "CC1", "CC2"}


def test_r_lnk_2_a_device_added_to_the_host_later_gets_the_hosts_partner(
    app: PartnerFleet, partner: str
) -> None:
    app.register_devices(CUSTOMER, CUSTOMER_ID, hosted_fleet("HOST1", "CC1"))
    app.set_hosting_partner(CUSTOMER, CUSTOMER_ID, "HOST1", to(partner))

    app.register_devices(CUSTOMER, CUSTOMER_ID, hosted_fleet("HOST1", "CC9")[1:])

    linked = of_type(events_of(app, Device.id_for("CC9")), Device.PartnerLinked)
    assert [(e.location_id, e.role) for e in linked] == [(partner, "reseller")]
    assert "CC9" in group_serials(app, partner)


def test_r_lnk_2_the_owner_may_change_the_partner_of_one_hosted_device(
    app: PartnerFleet, partner: str, other_partner: str
) -> None:
    app.register_devices(CUSTOMER, CUSTOMER_ID, hosted_fleet("HOST1", "CC1", "CC2"))
    app.set_hosting_partner(CUSTOMER, CUSTOMER_ID, "HOST1", to(partner))

    app.link_devices(CUSTOMER, CUSTOMER_ID, ["CC2"], to(other_partner))

    assert app.device("CC1").links == {"reseller": partner}
    assert app.device("CC2").links == {"reseller": other_partner}
    assert group_serials(app, partner) == {"HOST1", "CC1"}
    assert group_serials(app, other_partner) == {"CC2"}


def test_r_lnk_2_setting_the_partner_on_a_device_that_hosts_nothing_is_refused(
    app: PartnerFleet, partner: str, customer_devices: list[str]
) -> None:
    with refused(app, DomainError, "S1 is not an Insight RS hosting device"):
        app.set_hosting_partner(CUSTOMER, CUSTOMER_ID, "S1", to(partner))


def test_r_lnk_2_only_the_owner_sets_the_partner_on_a_hosting_device(
    app: PartnerFleet, partner: str
) -> None:
    app.register_devices(CUSTOMER, CUSTOMER_ID, hosted_fleet("HOST1", "CC1"))

    with refused(app, NotFoundError, "No device with serial number .HOST1."):
        app.set_hosting_partner(customer("C9", "x@c9", "c"), "C9", "HOST1", to(partner))


# --- R-LNK-3: direct-connect links apply only to the devices chosen ----------------------


def test_r_lnk_3_a_partner_named_at_registration_is_linked_to_the_registered_devices(
    app: PartnerFleet, linked_group: UUID, partner: str
) -> None:
    for serial in ("S1", "S2"):
        events = events_of(app, Device.id_for(serial))
        assert names(events) == ["Device.Registered", "Device.PartnerLinked"]
    assert group_serials(app, partner) == {"S1", "S2"}


def test_r_lnk_3_many_devices_are_linked_at_once_and_only_those_chosen(
    app: PartnerFleet, partner: str, customer_devices: list[str]
) -> None:
    app.link_devices(CUSTOMER, CUSTOMER_ID, ["S1", "S2"], to(partner))

    assert app.device("S1").links == app.device("S2").links == {"reseller": partner}
    assert app.device("S3").links == {}


def test_r_lnk_3_one_device_is_linked_from_its_configuration_page(
    app: PartnerFleet, partner: str, customer_devices: list[str]
) -> None:
    app.link_devices(CUSTOMER, CUSTOMER_ID, ["s3 "], to(partner))

    assert [s for s in customer_devices if app.device(s).links] == ["S3"]


def test_r_lnk_3_a_bulk_link_naming_an_unknown_device_is_refused_whole(
    app: PartnerFleet, partner: str, customer_devices: list[str]
) -> None:
    with refused(app, NotFoundError, "No device with serial number 'NOPE'"):
        app.link_devices(CUSTOMER, CUSTOMER_ID, ["S1", "S2", "NOPE"], to(partner))

    assert app.device("S1").links == {}


def test_r_lnk_3_a_bulk_link_listing_a_device_twice_is_refused(
    app: PartnerFleet, partner: str, customer_devices: list[str]
) -> None:
    with refused(app, DeviceError, "listed twice"):
        app.link_devices(CUSTOMER, CUSTOMER_ID, ["S1", "s1"], to(partner))


# --- R-LNK-4: a reseller and a service partner are linked separately ---------------------


def test_r_lnk_4_a_reseller_and_a_service_partner_are_linked_separately(
    app: PartnerFleet, partner: str, service_partner: str, customer_devices: list[str]
) -> None:
    app.link_devices(CUSTOMER, CUSTOMER_ID, ["S1"], to(partner))

    app.link_devices(CUSTOMER, CUSTOMER_ID, ["S1"], to(service_partner, "service_partner"))

    linked = of_type(events_of(app, Device.id_for("S1")), Device.PartnerLinked)
    assert [(e.role, e.location_id) for e in linked] == [
        ("reseller", partner),
        ("service_partner", service_partner),
    ]
    assert app.device("S1").links == {"reseller": partner, "service_partner": service_partner}
    assert "S1" in group_serials(app, partner)
    assert "S1" in group_serials(app, service_partner)


def test_r_lnk_4_a_reseller_cannot_be_linked_as_service_partner(
    app: PartnerFleet, partner: str, customer_devices: list[str]
) -> None:
    with refused(app, DeviceError, f"{partner} is not an accredited service partner"):
        app.link_devices(CUSTOMER, CUSTOMER_ID, ["S1"], to(partner, "service_partner"))


def test_r_lnk_4_an_unknown_link_role_is_refused(
    app: PartnerFleet, partner: str, customer_devices: list[str]
) -> None:
    with refused(app, DeviceError, "Unknown link role 'distributor'"):
        app.link_devices(CUSTOMER, CUSTOMER_ID, ["S1"], to(partner, "distributor"))


def test_r_lnk_4_unlinking_the_reseller_leaves_the_service_partner_linked(
    app: PartnerFleet, partner: str, service_partner: str, customer_devices: list[str]
) -> None:
    app.link_devices(CUSTOMER, CUSTOMER_ID, ["S1"], to(partner))
    app.link_devices(CUSTOMER, CUSTOMER_ID, ["S1"], to(service_partner, "service_partner"))

    app.unlink_devices(CUSTOMER, CUSTOMER_ID, ["S1"], role="reseller")

    assert app.device("S1").links == {"service_partner": service_partner}
    assert "S1" not in group_serials(app, partner)
    assert "S1" in group_serials(app, service_partner)


# --- R-LNK-5: the first link for a customer creates the partner's customer group ---------


def test_r_lnk_5_the_first_link_for_a_customer_creates_the_partners_customer_group(
    app: PartnerFleet, partner: str, customer_devices: list[str]
) -> None:
    position = event_count(app)

    app.link_devices(CUSTOMER, CUSTOMER_ID, ["S1"], to(partner), customer_name="Customer One")

    group_id = CustomerGroup.id_for(partner, CUSTOMER_ID)
    created = of_type(events_since(app, position), CustomerGroup.Created)
    assert len(created) == 1
    assert created[0].originator_id == group_id
    assert (created[0].partner_location_id, created[0].customer_id) == (partner, CUSTOMER_ID)
    assert created[0].customer_name == "Customer One"
    assert created[0].admins == [ANNA.principal]
    added = of_type(events_of(app, group_id), CustomerGroup.DeviceAdded)
    assert [(e.serial, e.reason) for e in added] == [("S1", "reseller")]


def test_r_lnk_5_later_links_for_the_same_customer_reuse_its_group(
    app: PartnerFleet, linked_group: UUID, partner: str
) -> None:
    app.register_devices(CUSTOMER, CUSTOMER_ID, servers("S9"))
    position = event_count(app)

    app.link_devices(CUSTOMER, CUSTOMER_ID, ["S9"], to(partner))

    assert "CustomerGroup.Created" not in names(events_since(app, position))
    assert group_serials(app, partner) == {"S1", "S2", "S9"}


def test_r_lnk_5_a_deleted_group_comes_back_when_the_customer_links_again(
    app: PartnerFleet, linked_group: UUID, partner: str
) -> None:
    app.unlink_devices(CUSTOMER, CUSTOMER_ID, ["S1", "S2"])
    app.delete_customer_group(ANNA, linked_group)

    app.link_devices(CUSTOMER, CUSTOMER_ID, ["S1"], to(partner))

    tail = names(events_of(app, linked_group))[-3:]
    assert tail == ["CustomerGroup.Deleted", "CustomerGroup.Reopened", "CustomerGroup.DeviceAdded"]
    group = app.customer_group(linked_group)
    assert not group.deleted
    assert set(group.devices) == {"S1"}


def test_r_lnk_5_a_group_is_not_created_when_the_link_is_refused(
    app: PartnerFleet, partner: str, customer_devices: list[str]
) -> None:
    with refused(app, DeviceError, "not an accredited service partner"):
        app.link_devices(CUSTOMER, CUSTOMER_ID, ["S1"], to(partner, "service_partner"))

    with refused(app, NotFoundError, "No customer group"):
        app.customer_group(CustomerGroup.id_for(partner, CUSTOMER_ID))


# --- R-LNK-6: unlinking or relinking removes the device from the old partner at once -----


def test_r_lnk_6_unlinking_removes_the_device_from_the_partners_group_and_data_access(
    app: PartnerFleet, linked_group: UUID, partner: str
) -> None:
    app.grant_consent(CUSTOMER, CUSTOMER_ID, ["S1"])
    assert app.may_read_configuration("S1", partner)
    position = event_count(app)

    app.unlink_devices(CUSTOMER, CUSTOMER_ID, ["S1"])

    events = events_since(app, position)
    assert names(events) == ["Device.PartnerUnlinked", "CustomerGroup.DeviceRemoved"]
    unlinked = of_type(events, Device.PartnerUnlinked)[0]
    assert (unlinked.location_id, unlinked.role) == (partner, "reseller")
    assert group_serials(app, partner) == {"S2"}
    assert not app.may_read_configuration("S1", partner)


def test_r_lnk_6_relinking_moves_the_device_and_its_data_access_to_the_new_partner(
    app: PartnerFleet, linked_group: UUID, partner: str, other_partner: str
) -> None:
    app.grant_consent(CUSTOMER, CUSTOMER_ID, ["S1"])
    position = event_count(app)

    app.link_devices(CUSTOMER, CUSTOMER_ID, ["S1"], to(other_partner))

    events = events_since(app, position)
    device_events = [e for e in events if e.originator_id == Device.id_for("S1")]
    assert names(device_events) == ["Device.PartnerUnlinked", "Device.PartnerLinked"]
    removed = of_type(events, CustomerGroup.DeviceRemoved)
    assert [(e.originator_id, e.serial) for e in removed] == [(linked_group, "S1")]
    assert group_serials(app, partner) == {"S2"}
    assert group_serials(app, other_partner) == {"S1"}
    assert not app.may_read_configuration("S1", partner)
    assert app.may_read_configuration("S1", other_partner)


def test_r_lnk_6_moving_a_host_to_another_partner_moves_every_device_it_manages(
    app: PartnerFleet, partner: str, other_partner: str
) -> None:
    app.register_devices(CUSTOMER, CUSTOMER_ID, hosted_fleet("HOST1", "CC1", "CC2"))
    app.set_hosting_partner(CUSTOMER, CUSTOMER_ID, "HOST1", to(partner))

    app.set_hosting_partner(CUSTOMER, CUSTOMER_ID, "HOST1", to(other_partner))

    assert group_serials(app, partner) == set()
    assert group_serials(app, other_partner) == {"HOST1", "CC1", "CC2"}


def test_r_lnk_6_relinking_to_the_same_partner_records_nothing(
    app: PartnerFleet, linked_group: UUID, partner: str
) -> None:
    position = event_count(app)

    app.link_devices(CUSTOMER, CUSTOMER_ID, ["S1"], to(partner))

    assert event_count(app) == position


def test_r_lnk_6_unlinking_a_device_without_a_partner_is_refused(
    app: PartnerFleet, partner: str, customer_devices: list[str]
) -> None:
    with refused(app, DeviceError, "Device S1 has no partner linked as reseller"):
        app.unlink_devices(CUSTOMER, CUSTOMER_ID, ["S1"])


def test_r_lnk_6_only_the_owner_unlinks_a_device(
    app: PartnerFleet, linked_group: UUID, partner: str
) -> None:
    with refused(app, NotFoundError, "No device with serial number"):
        app.unlink_devices(customer("C9", "x@c9", "c"), "C9", ["S1"])

    assert "S1" in group_serials(app, partner)
