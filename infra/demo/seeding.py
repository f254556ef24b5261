"""The demo's commands: every step through the public commands, as the principal who would
issue it (operator, feed, partner users, customer admins, end users).

Batches where the commands take them (one registration per customer, one e2Open delivery,
one alert delivery); one command per device only where remote support reports per device
(service levels, service events, configuration data).
"""

from __future__ import annotations

import random
from uuid import UUID

from domain.consent import CURRENT_CONSENT_TEXT
from domain.customer_group import CustomerGroup
from domain.device import Device
from domain.partner import PartnerTenant
from handlers import PartnerFleet
from handlers.devices import NewDevice, PartnerChoice
from infra.demo.people import (
    BY_LOCATION,
    CUSTOMER,
    FEED,
    OPERATOR,
    PARTNERS,
    RESELLER,
    RESELLER_2,
    SERVICE_PARTNER,
    Principals,
)
from infra.demo.plan import ALERTS, SEED, SERVICE_EVENTS, DemoCustomer, service_levels

FIRST_WORDING = "2024-01"
LEVELLED_SERVERS = 2  # servers per serviced customer with service levels
LAST_REQUEST = "DEMO-MISSING-2"  # resolved by the last command: the demo is complete


def partners(fleet: PartnerFleet, who: Principals) -> None:
    """R-PAR-1, R-PAR-4: the partners, their admin and user, accreditation, certification."""
    ops = who(OPERATOR)
    for p in PARTNERS:
        fleet.register_partner(ops, p.location_id, p.name)
        fleet.register_partner_user(ops, p.location_id, p.admin)
        fleet.register_partner_user(ops, p.location_id, p.user)
        if p.csdp_account:
            fleet.accredit_service_partner(ops, p.location_id, p.csdp_account)
        if p.programme:
            fleet.certify_partner(ops, p.location_id, p.programme)


def e2open_delivery(fleet: PartnerFleet, who: Principals, customers: list[DemoCustomer]) -> None:
    """R-HLD-1: one e2Open delivery of every demo PC, plus reports kept as rejected."""
    reports: list[object] = [
        _report(serial, c.models[serial], c.pc_partner, c.customer_id, n)
        for c in customers
        for n, serial in enumerate(c.pcs)
    ]
    reports += [
        _report("5CG99R2001", "HP EliteBook 840 G11", RESELLER_2, "DEMO-C-UNKNOWN", 0),
        _report("5CG99R2002", "HP ProBook 450 G10", RESELLER_2, "DEMO-C-UNKNOWN", 0),
        {
            **_report("5CG99BAD01", "HP EliteBook 840 G11", RESELLER, CUSTOMER, 0),
            "ship_date": "soon",
        },
    ]
    fleet.receive_e2open_batch(who(FEED), "DEMO-E2OPEN-1", reports)


def _report(serial: str, model: str, location_id: str, customer_id: str, n: int) -> dict[str, str]:
    return {
        "serial": serial,
        "model": model,
        "reseller_location_id": location_id,
        "distributor": "Demo Distribution" if n % 2 else "Ingram Micro",
        "ship_date": f"2026-0{1 + n % 4}-15",
        "end_customer": customer_id,
        "care_plan": "premium_plus" if n == 1 else "premium",
    }


def customer(fleet: PartnerFleet, who: Principals, c: DemoCustomer) -> None:
    """R-LNK-1…5, R-CON-1, R-CON-3: a customer registers, links and consents."""
    admin, cid = who(c.admin), c.customer_id
    fleet.register_devices(admin, cid, _devices(c), PartnerChoice(location_id=c.reseller), c.name)
    service = PartnerChoice(location_id=SERVICE_PARTNER, role="service_partner")
    if c.service:
        fleet.link_devices(admin, cid, list(c.direct), service, c.name)
        if c.host:
            fleet.set_hosting_partner(admin, cid, c.host, service, c.name)
    if c.first_wording:
        fleet.grant_consent(admin, cid, list(c.first_wording), FIRST_WORDING)
    fleet.grant_consent(admin, cid, list(c.consent), CURRENT_CONSENT_TEXT)
    if c.withdrawn:
        fleet.withdraw_consent(admin, cid, list(c.withdrawn))
    if c.regranted:
        fleet.grant_consent(admin, cid, list(c.regranted), CURRENT_CONSENT_TEXT)
    if c.host and c.host_consent:
        fleet.grant_consent_on_host(admin, cid, c.host)
        if c.host_withdrawn:
            fleet.withdraw_consent_on_host(admin, cid, c.host)
    if c.insight_rs_to_service:
        fleet.choose_insight_rs_case_routing(admin, cid, [c.host or c.direct[0]], True)


def _devices(c: DemoCustomer) -> list[NewDevice]:
    host = [] if c.host is None else [_server(c, c.host, is_hosting_device=True)]
    central = [
        NewDevice(serial=s, connection="central_connect", model=c.models[s], hosting_serial=c.host)
        for s in c.central
    ]
    return [*host, *central, *(_server(c, s) for s in c.direct)]


def _server(c: DemoCustomer, serial: str, *, is_hosting_device: bool = False) -> NewDevice:
    return NewDevice(
        serial=serial,
        connection="direct_connect",
        model=c.models[serial],
        is_hosting_device=is_hosting_device,
    )


def dashboards(fleet: PartnerFleet, who: Principals, customers: list[DemoCustomer]) -> None:
    """R-HLD-3, R-ALR-3, R-ALR-4: dashboards, transfers (one reversed), cPIN enrolment."""
    for c in customers:
        if c.dashboard:
            _dashboard(fleet, who, c)


def _dashboard(fleet: PartnerFleet, who: Principals, c: DemoCustomer) -> None:
    partner, location_id = who.admin(c.pc_partner), c.pc_partner
    holding = PartnerTenant.holding_tenant_id_for(location_id)
    board = fleet.create_customer_dashboard(partner, location_id, c.customer_id, c.name, c.cpin)
    fleet.transfer_devices(partner, location_id, list(c.pcs), holding, board, f"T-{c.index}")
    if c.enrolled_pc is not None:
        pc, model = c.enrolled_pc, c.models[c.enrolled_pc]
        fleet.enrol_with_cpin(who(c.admin), c.customer_id, board, c.cpin, pc, model, "premium")
    if c.customer_id == CUSTOMER:  # a transfer is reversed the same way (R-HLD-3)
        back = [c.pcs[-1]]
        fleet.transfer_devices(partner, location_id, back, board, holding, f"T-{c.index}-back")
    elif c.index % 50 == 10:
        fleet.switch_self_service_notifications(partner, location_id, board, False)


def remote_support(fleet: PartnerFleet, who: Principals, customers: list[DemoCustomer]) -> None:
    """R-SVC-1…3, R-CON-2: service levels and events of some servers, configuration data.

    One command per device and report (as remote support sends them), so only a sample.
    """
    feed = who(FEED)
    for c in customers:
        rng = random.Random(SEED + 7 * c.index)
        for serial in c.servers[:LEVELLED_SERVERS] if c.service and c.index % 2 == 0 else ():
            for level in service_levels(serial, rng):
                fleet.add_service_level(feed, serial, level)
        for serial in c.servers:
            if rng.random() < (0.08 if c.service else 0.015):
                severity, summary = rng.choice(SERVICE_EVENTS)
                fleet.record_service_event(feed, serial, f"SE-{serial}-1", severity, summary)
        if c.customer_id == CUSTOMER:  # ACME's first server: a critical event in every demo
            severity, summary = SERVICE_EVENTS[0]
            fleet.record_service_event(feed, c.direct[0], f"SE-{c.direct[0]}-0", severity, summary)
        readable = [s for s in c.consent if s not in c.withdrawn or s in c.regranted]
        for serial in readable[:1] if c.index % 5 == 1 else ():
            fleet.collect_configuration(feed, serial, _configuration(c, serial, rng))


def _configuration(c: DemoCustomer, serial: str, rng: random.Random) -> dict[str, object]:
    return {
        "model": c.models[serial],
        "firmware": {"ilo": f"6.{rng.randrange(1, 9)}", "bios": f"U{rng.randrange(30, 60)}"},
        "memory_gb": rng.choice((64, 128, 256, 512)),
        "drives": rng.randrange(2, 24),
    }


def partner_work(fleet: PartnerFleet, who: Principals, customers: list[DemoCustomer]) -> None:
    """R-FAV-2…4, R-GRP-1, R-GRP-3, R-HLD-2: favourites, child groups, a missing PC."""
    chosen = {RESELLER: (10, 3), SERVICE_PARTNER: (5, 2), RESELLER_2: (2, 0)}
    for location_id, (admin_count, user_count) in chosen.items():
        groups = _groups_of(location_id, customers)
        for group_id in groups[:admin_count]:
            fleet.add_favourite(who.admin(location_id), group_id)
        for group_id in groups[:user_count]:
            fleet.add_favourite(who.user(location_id), group_id)
    fleet.choose_default_view(who.user(RESELLER), "favorites_only")
    acme = CustomerGroup.id_for(RESELLER, CUSTOMER)
    anna, ben = who.admin(RESELLER), who.user(RESELLER)
    fleet.create_child_group(anna, acme, "racks-fra", "Racks Frankfurt")
    fleet.add_group_admin(anna, acme, BY_LOCATION[RESELLER].user)
    fleet.share_child_group(anna, acme, "racks-fra", BY_LOCATION[RESELLER].user)
    fleet.create_child_group(anna, acme, "lab-private", "Anna's test lab")
    acme_admin = who(customers[0].admin)
    fleet.create_customer_child_group(acme_admin, CUSTOMER, acme, "finance", "Finance servers")
    fleet.report_missing_devices(ben, RESELLER, "DEMO-MISSING-1", ["5CG77M0001", "5CG77M0002"])
    fleet.report_missing_devices(anna, RESELLER, LAST_REQUEST, ["5CG77M0003"])


def _groups_of(location_id: str, customers: list[DemoCustomer]) -> list[UUID]:
    linked = [
        c
        for c in customers
        if location_id in (c.reseller, c.pc_partner if c.dashboard else None)
        or (location_id == SERVICE_PARTNER and c.service)
    ]
    return [CustomerGroup.id_for(location_id, c.customer_id) for c in linked]


def alerts_and_cases(fleet: PartnerFleet, who: Principals, customers: list[DemoCustomer]) -> None:
    """R-ALR-1, R-ALR-2: one alert delivery; end users submit repair cases from some PC
    alerts, Insight RS from every server alert (to the CSDP queue where the customer chose)."""
    pcs = [
        (c, _alert(c.pcs[0], c.index))
        for c in customers
        if c.index % 8 in (0, 3) or c.index % 50 == 10
    ]
    servers = [
        (c, _alert(c.servers[0], c.index)) for c in customers if c.service and c.index % 12 < 2
    ]
    delivery = [alert for _c, alert in pcs + servers]
    fleet.receive_alert_batch(who(FEED), "DEMO-ALERTS-1", delivery)
    for c, alert in pcs:
        if c.index % 8 == 0:
            serial, alert_id = alert["serial"], alert["alert_id"]
            fleet.submit_repair_case(who(c.end_user(serial)), serial, alert_id, f"CASE-{serial}")
    insight_rs = who(FEED)  # remote support reports Insight RS cases (access matrix)
    for _c, alert in servers:
        serial, alert_id = alert["serial"], alert["alert_id"]
        fleet.submit_repair_case(insight_rs, serial, alert_id, f"CASE-{serial}", "insight_rs")


def _alert(serial: str, n: int) -> dict[str, str]:
    severity, message = ALERTS[n % len(ALERTS)]
    return {"serial": serial, "alert_id": f"AL-{serial}", "severity": severity, "message": message}


def audit(fleet: PartnerFleet, who: Principals, customers: list[DemoCustomer]) -> None:
    """R-CON-4: HP operations corrects first consent records (given on the current wording,
    recorded on the old one): new events with a reason, the history itself unchanged."""
    for c in customers:
        if c.first_wording and c.index % 50 == 0:
            serial = c.first_wording[0]
            device: object = fleet.repository.get(Device.id_for(serial))
            assert isinstance(device, Device)
            fleet.correct_consent_record(
                who(OPERATOR),
                serial,
                device.consent_versions[0],
                "The signed opt-in form shows the 2025-06 wording; the record named 2024-01.",
                CURRENT_CONSENT_TEXT,
            )


def finish(fleet: PartnerFleet, who: Principals) -> None:
    """The last command: its record says the demo is complete."""
    fleet.resolve_missing_devices(
        who(OPERATOR), RESELLER, LAST_REQUEST, "Found in the distributor's next delivery."
    )


def is_complete(fleet: PartnerFleet) -> bool | None:
    """True when the demo is complete, False when it was started, None when absent."""
    partner_id = PartnerTenant.id_for(RESELLER)
    if partner_id not in fleet.repository:
        return None
    partner: object = fleet.repository.get(partner_id)
    assert isinstance(partner, PartnerTenant)
    request = partner.missing_device_requests.get(LAST_REQUEST)
    return request is not None and request.resolution is not None
