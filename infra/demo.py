"""Demo data for `make run`: two partners, a customer with servers and PCs. Seeded once."""

from __future__ import annotations

from datetime import date

from domain.partner import PartnerTenant
from domain.service_level import ServiceLevel
from handlers import PartnerFleet
from handlers.access import Actor, Claims, Role, authenticate, service_actor
from handlers.devices import NewDevice, PartnerChoice

RESELLER = "DEMO-RESELLER-1"
SERVICE_PARTNER = "DEMO-SERVICE-1"
CUSTOMER = "DEMO-CUSTOMER-ACME"
OPS = service_actor("hp-ops@example.com", Role.OPERATOR, correlation_id="demo-seed")
FEED = service_actor("feed:e2open", Role.FEED, correlation_id="demo-seed")


def _as(fleet: PartnerFleet, subject: str, role: Role, tenant: str, *pcs: str) -> Actor:
    """The demo principal, authenticated as a token's claims would be."""
    return authenticate(fleet, Claims(subject, role, tenant, pcs, "demo-seed"))


def seed_demo(fleet: PartnerFleet) -> bool:
    """Seed the demo data unless it is already there; True when it seeded."""
    if _already_seeded(fleet):
        return False
    _partners(fleet)
    _customer_devices(fleet)
    _holding_tenant(fleet)
    return True


def _already_seeded(fleet: PartnerFleet) -> bool:
    recorded = fleet.events.get(PartnerTenant.id_for(RESELLER))
    return any(True for _ in recorded)


def _partners(fleet: PartnerFleet) -> None:
    fleet.register_partner(OPS, RESELLER, "Demo Reseller GmbH")
    fleet.register_partner_user(OPS, RESELLER, "anna@reseller.example")
    fleet.register_partner_user(OPS, RESELLER, "ben@reseller.example")
    fleet.certify_partner(OPS, RESELLER, "resell_view_monitor")
    fleet.register_partner(OPS, SERVICE_PARTNER, "Demo Service Partner AG")
    fleet.register_partner_user(OPS, SERVICE_PARTNER, "chris@service.example")
    fleet.accredit_service_partner(OPS, SERVICE_PARTNER, "CSDP-DEMO-1")


def _customer_devices(fleet: PartnerFleet) -> None:
    customer_admin = _as(fleet, "it-admin@acme.example", Role.CUSTOMER_ADMIN, CUSTOMER)
    servers = [
        NewDevice(serial=f"CZJ00{n}", connection="direct_connect", model="ProLiant DL380")
        for n in range(1, 4)
    ]
    fleet.register_devices(
        customer_admin,
        CUSTOMER,
        servers,
        PartnerChoice(location_id=RESELLER),
        customer_name="ACME Manufacturing",
    )
    fleet.link_devices(
        customer_admin,
        CUSTOMER,
        ["CZJ001"],
        PartnerChoice(location_id=SERVICE_PARTNER, role="service_partner"),
    )
    fleet.grant_consent(customer_admin, CUSTOMER, ["CZJ001", "CZJ002"])
    warranty = ServiceLevel("warranty", "HPE 3-year warranty", date(2025, 1, 1), date(2027, 12, 31))
    fleet.add_service_level(OPS, "CZJ001", warranty)


def _holding_tenant(fleet: PartnerFleet) -> None:
    reports = [
        {
            "serial": f"5CG40{n}",
            "model": "HP EliteBook 840",
            "reseller_location_id": RESELLER,
            "distributor": "Demo Distribution",
            "ship_date": "2026-10-01",
        }
        for n in range(10, 15)
    ]
    fleet.receive_e2open_batch(FEED, "demo-batch-1", reports)
    anna = _as(fleet, "anna@reseller.example", Role.PARTNER_USER, RESELLER)
    dashboard = fleet.create_customer_dashboard(
        anna, RESELLER, CUSTOMER, "ACME Manufacturing", "4711"
    )
    holding = fleet.partner(RESELLER).require_holding_tenant()
    fleet.transfer_devices(anna, RESELLER, ["5CG4010", "5CG4011"], holding, dashboard, "demo-t1")
    fleet.raise_alert(OPS, "5CG4012", "demo-alert-1", "critical", "Battery failure predicted")
    end_user = _as(fleet, "user@acme.example", Role.END_USER, CUSTOMER, "5CG4012")
    fleet.submit_repair_case(end_user, "5CG4012", "demo-alert-1", "demo-case-1")
