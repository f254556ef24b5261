"""Partners, their users, the device quota per Passport ID and the holding tenant.

R-PAR-1, R-PAR-3, R-PAR-4, and the metadata every event carries.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from domain import Device, NotFoundError, PartnerTenant, Passport
from domain.base import DomainError
from domain.device import DeviceError
from domain.partner import PartnerError
from domain.passport import DeviceQuotaExceededError
from handlers import PartnerFleet
from tests.actors import customer
from tests.unit.conftest import (
    ANNA,
    BEN,
    CUSTOMER,
    CUSTOMER_ID,
    LOC,
    OPS,
    OTTO,
    e2open_report,
    event_count,
    events_of,
    events_since,
    names,
    of_type,
    refused,
    servers,
    to,
)

# --- R-PAR-1: a partner starts as reseller; its first user is its admin ------------------


def test_r_par_1_a_new_partner_is_a_reseller_identified_by_its_location_id(
    app: PartnerFleet,
) -> None:
    tenant_id = app.register_partner(OPS, "LOC-9", "  Fleet Partners GmbH ")

    events = events_of(app, tenant_id)
    assert names(events) == ["PartnerTenant.Registered"]
    registered = of_type(events, PartnerTenant.Registered)[0]
    assert (registered.location_id, registered.name) == ("LOC-9", "Fleet Partners GmbH")
    assert tenant_id == PartnerTenant.id_for("LOC-9")
    assert app.partner("LOC-9").partner_type == "reseller"


def test_r_par_1_the_first_user_becomes_partner_admin_and_later_ones_partner_users(
    app: PartnerFleet,
) -> None:
    app.register_partner(OPS, LOC, "Partner One")

    first = app.register_partner_user(OPS, LOC, ANNA.principal)
    second = app.register_partner_user(OPS, LOC, BEN.principal)

    assert (first, second) == ("admin", "user")
    registered = of_type(events_of(app, PartnerTenant.id_for(LOC)), PartnerTenant.UserRegistered)
    assert [(e.passport_id, e.role) for e in registered] == [
        (ANNA.principal, "admin"),
        (BEN.principal, "user"),
    ]
    assert app.partner(LOC).admins == [ANNA.principal]


def test_r_par_1_a_registered_users_passport_id_is_linked_to_its_partners_location_id(
    app: PartnerFleet, partner: str
) -> None:
    joined = of_type(events_of(app, Passport.id_for(BEN.principal)), Passport.JoinedPartner)

    assert [e.location_id for e in joined] == [partner]
    assert app.passport(BEN.principal).is_partner_user


def test_r_par_1_a_reseller_is_accredited_later_as_service_partner_with_its_csdp_account(
    app: PartnerFleet, partner: str
) -> None:
    position = event_count(app)

    app.accredit_service_partner(OPS, partner, " CSDP-1 ")

    accredited = of_type(events_since(app, position), PartnerTenant.AccreditedAsServicePartner)
    assert [e.csdp_account for e in accredited] == ["CSDP-1"]
    tenant = app.partner(partner)
    assert (tenant.partner_type, tenant.csdp_account) == ("service_partner", "CSDP-1")


def test_r_par_1_a_second_partner_with_the_same_location_id_is_refused(
    app: PartnerFleet, partner: str
) -> None:
    with refused(app, DomainError, f"Location ID {partner} already exists"):
        app.register_partner(OPS, partner, "Impostor")


def test_r_par_1_a_partner_without_location_id_is_refused(app: PartnerFleet) -> None:
    with refused(app, PartnerError, "non-empty Partner Location ID"):
        app.register_partner(OPS, "  ", "Nameless")


def test_r_par_1_registering_the_same_user_twice_is_refused(
    app: PartnerFleet, partner: str
) -> None:
    with refused(app, PartnerError, f"{BEN.principal} is already a user of partner {partner}"):
        app.register_partner_user(OPS, partner, BEN.principal)


def test_r_par_1_a_user_of_one_partner_cannot_become_a_user_of_another(
    app: PartnerFleet, partner: str, other_partner: str
) -> None:
    with refused(app, DomainError, f"already a user of partner {partner}"):
        app.register_partner_user(OPS, other_partner, BEN.principal)

    assert BEN.principal not in app.partner(other_partner).users


def test_r_par_1_a_user_for_an_unknown_location_id_is_refused(app: PartnerFleet) -> None:
    with refused(app, NotFoundError, "No partner has Location ID 'LOC-404'"):
        app.register_partner_user(OPS, "LOC-404", "nobody@example.com")


def test_r_par_1_accrediting_a_service_partner_again_is_refused(
    app: PartnerFleet, service_partner: str
) -> None:
    with refused(app, PartnerError, "already a service partner"):
        app.accredit_service_partner(OPS, service_partner, "CSDP-2")


def test_r_par_1_accreditation_without_a_csdp_account_is_refused(
    app: PartnerFleet, partner: str
) -> None:
    with refused(app, PartnerError, "needs the CSDP account"):
        app.accredit_service_partner(OPS, partner, " ")

    assert app.partner(partner).partner_type == "reseller"


# --- R-PAR-3: at most 1,500 devices per Passport ID --------------------------------------


def test_r_par_3_a_passport_id_can_hold_1500_devices(app: PartnerFleet) -> None:
    batch = servers(*(f"Q{n}" for n in range(1_500)))

    app.register_devices(CUSTOMER, CUSTOMER_ID, batch)

    registered = of_type(
        events_of(app, Passport.id_for(CUSTOMER.principal)), Passport.DevicesRegistered
    )
    assert sum(len(e.serials) for e in registered) == 1_500
    assert app.passport(CUSTOMER.principal).registered_devices == 1_500


def test_r_par_3_the_1501st_device_is_refused_and_nothing_is_recorded(
    app: PartnerFleet, partner: str
) -> None:
    app.register_devices(CUSTOMER, CUSTOMER_ID, servers(*(f"Q{n}" for n in range(1_500))))

    with refused(app, DeviceQuotaExceededError, "limit of 1,500 devices per Passport ID"):
        app.register_devices(CUSTOMER, CUSTOMER_ID, servers("Q1500"), to(partner))

    with refused(app, NotFoundError, "No device with serial number 'Q1500'"):
        app.device("Q1500")
    assert app.passport(CUSTOMER.principal).registered_devices == 1_500


def test_r_par_3_a_batch_crossing_the_limit_is_refused_whole_and_says_what_to_do(
    app: PartnerFleet,
) -> None:
    app.register_devices(CUSTOMER, CUSTOMER_ID, servers(*(f"Q{n}" for n in range(1_499))))

    with refused(app, DeviceQuotaExceededError, "holds 1499 devices") as refusal:
        app.register_devices(CUSTOMER, CUSTOMER_ID, servers("X1", "X2"))

    assert "another Passport ID" in str(refusal.value)
    assert app.passport(CUSTOMER.principal).registered_devices == 1_499


def test_r_par_3_a_first_registration_of_1501_devices_records_not_even_the_passport(
    app: PartnerFleet,
) -> None:
    with refused(app, DeviceQuotaExceededError, "1,500"):
        app.register_devices(CUSTOMER, CUSTOMER_ID, servers(*(f"Q{n}" for n in range(1_501))))

    assert event_count(app) == 0


def test_r_par_3_the_limit_counts_per_passport_id_not_per_customer(app: PartnerFleet) -> None:
    colleague = customer(CUSTOMER_ID, "second-admin@customer.example", "corr-2")
    app.register_devices(CUSTOMER, CUSTOMER_ID, servers(*(f"Q{n}" for n in range(1_500))))

    app.register_devices(colleague, CUSTOMER_ID, servers("Q1500"))

    assert app.device("Q1500").customer_id == CUSTOMER_ID
    assert app.passport(colleague.principal).registered_devices == 1


def test_r_par_3_a_device_registered_again_is_refused_and_not_counted_twice(
    app: PartnerFleet,
) -> None:
    app.register_devices(CUSTOMER, CUSTOMER_ID, servers("S1"))

    with refused(app, DeviceError, "Device S1 is already registered"):
        app.register_devices(CUSTOMER, CUSTOMER_ID, servers("S2", "s1"))

    assert app.passport(CUSTOMER.principal).registered_devices == 1
    with refused(app, NotFoundError, "No device with serial number 'S2'"):
        app.device("S2")


# --- R-PAR-4: certification creates the holding tenant, once -----------------------------


def test_r_par_4_certification_creates_the_partners_holding_tenant(
    app: PartnerFleet, partner: str
) -> None:
    position = event_count(app)

    holding = app.certify_partner(OPS, partner, "resell_view_monitor")

    events = events_since(app, position)
    assert names(events) == ["PartnerTenant.Certified", "PartnerTenant.HoldingTenantCreated"]
    assert of_type(events, PartnerTenant.Certified)[0].programme == "resell_view_monitor"
    created = of_type(events, PartnerTenant.HoldingTenantCreated)[0]
    assert created.holding_tenant_id == holding == PartnerTenant.holding_tenant_id_for(partner)
    assert app.partner(partner).holding_tenant_id == holding


def test_r_par_4_a_second_certification_keeps_the_one_holding_tenant(
    app: PartnerFleet, partner: str, holding_tenant: UUID
) -> None:
    app.accredit_service_partner(OPS, partner, "CSDP-1")
    position = event_count(app)

    again = app.certify_partner(OPS, partner, "service_delivery")

    assert names(events_since(app, position)) == ["PartnerTenant.Certified"]
    assert again == holding_tenant
    assert app.partner(partner).certifications == ["resell_view_monitor", "service_delivery"]


def test_r_par_4_certifying_twice_for_the_same_programme_is_refused(
    app: PartnerFleet, partner: str, holding_tenant: UUID
) -> None:
    with refused(app, PartnerError, "already certified for resell_view_monitor"):
        app.certify_partner(OPS, partner, "resell_view_monitor")


def test_r_par_4_service_delivery_needs_accreditation_as_service_partner_first(
    app: PartnerFleet, partner: str
) -> None:
    with refused(app, PartnerError, "must be accredited as service partner"):
        app.certify_partner(OPS, partner, "service_delivery")

    assert app.partner(partner).holding_tenant_id is None


def test_r_par_4_an_unknown_programme_is_refused_naming_the_known_ones(
    app: PartnerFleet, partner: str
) -> None:
    with refused(app, PartnerError, "known: resell_view_monitor, service_delivery"):
        app.certify_partner(OPS, partner, "premium_gold")


def test_r_par_4_another_partner_cannot_take_pcs_out_of_the_holding_tenant(
    app: PartnerFleet, partner: str, other_partner: str, holding_tenant: UUID
) -> None:
    app.certify_partner(OPS, other_partner, "resell_view_monitor")
    app.receive_e2open_batch(OPS, "b1", [e2open_report("PC1")])
    own = app.partner(other_partner).require_holding_tenant()

    with refused(app, NotFoundError, f"Partner {other_partner} has no tenant"):
        app.transfer_devices(OTTO, other_partner, ["PC1"], holding_tenant, own, "t1")

    assert app.device("PC1").placement == holding_tenant


def test_r_par_4_users_of_another_partner_cannot_act_on_the_holding_tenant(
    app: PartnerFleet, partner: str, other_partner: str, holding_tenant: UUID
) -> None:
    """R-PAR-4, issue 9: another partner's Location ID is not found (404)."""
    with refused(app, NotFoundError, f"No partner with Location ID '{partner}' found"):
        app.report_missing_devices(OTTO, partner, "REQ-1", ["PC9"])


# --- every event carries who, when and the correlation id -------------------------------


def test_every_event_of_a_command_carries_principal_correlation_id_and_timestamp(
    app: PartnerFleet, partner: str
) -> None:
    cause = customer(CUSTOMER_ID, "admin@customer.example", "corr-link-42")
    position = event_count(app)
    before = datetime.now(UTC)

    app.register_devices(cause, CUSTOMER_ID, servers("S1"), to(partner))

    after = datetime.now(UTC)
    events = events_since(app, position)
    assert {"Device.Registered", "Device.PartnerLinked", "CustomerGroup.Created"} <= set(
        names(events)
    )
    for event in events:
        assert (event.principal, event.correlation_id) == (cause.principal, "corr-link-42")
        assert event.timestamp.tzinfo is not None
        assert before <= event.timestamp <= after


def test_events_record_the_principal_of_each_command_not_of_the_aggregates_creator(
    app: PartnerFleet, partner: str
) -> None:
    app.register_devices(CUSTOMER, CUSTOMER_ID, servers("S1"))
    relink = customer(CUSTOMER_ID, "second-admin@customer.example", "corr-relink")

    app.link_devices(relink, CUSTOMER_ID, ["S1"], to(partner))

    events = events_of(app, Device.id_for("S1"))
    assert [(e.principal, e.correlation_id) for e in events] == [
        (CUSTOMER.principal, CUSTOMER.correlation_id),
        (relink.principal, relink.correlation_id),
    ]
    assert events[0].timestamp < events[1].timestamp
