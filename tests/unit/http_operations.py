"""Every operation of the HTTP API, as the access matrices know it (issue 9).

`OPERATIONS` maps each OpenAPI operation ("METHOD /path") to the command (handlers.base.
COMMANDS) or query (the query matrix, tests/unit/test_access_queries.py) it runs, and to one
call of it on a side of the access world (tests/unit/access_world.py):

- `who`: a principal of tests/unit/http_world.py whose call on its own side succeeds
  (`ok`), None for public routes;
- `path` and `body`: templates filled with a side's ids (`fill`), so the same call names
  the own tenant's (OWN) or another tenant's (OTHER) resources;
- `denied`: a principal whose role may never do it (403), None when every role may;
- `tenant`: the path names a tenant (a Location ID, customer id or its resource): the
  owner's role asking for OTHER's answers 404;
- `given`: more history the call needs (e.g. both partners accredited as service partners).

A route added to the API without a row here fails the coverage test, naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from typing import Any

from domain.service_level import ServiceLevel
from handlers import PartnerFleet
from handlers.devices import PartnerChoice
from tests.actors import customer, operator
from tests.scenarios import report
from tests.unit.access_world import CPIN, EMPTY_GROUP, OTHER, OWN, Side, consent_version, world

PUBLIC = "public"  # routes without a token: health, the problem types, the demo keys
OPS = operator()


@dataclass(frozen=True)
class Op:
    """One operation: what it runs, and one call of it that `who` may make on its own side."""

    name: str
    who: str | None
    path: str
    body: Any = None
    ok: int = 200
    denied: str | None = "c1"
    tenant: bool = True
    query: dict[str, str] = field(default_factory=dict)
    given: Callable[[PartnerFleet], None] | None = None  # more history, before the calls


SERIALS = ("S", "SN", "H", "HC", "CC", "CCC", "PCC", "PT", "PD")  # the names of a side's serials


@cache
def _consent_versions() -> dict[int, int]:
    fleet = world()
    return {side.n: consent_version(fleet, side) for side in (OWN, OTHER)}


def fields(side: Side) -> dict[str, Any]:
    """A side's ids, by the names the templates use: {loc}, {customer}, {group},
    {holding}, and serials such as {S} (S1 on OWN, S2 on OTHER)."""
    return {
        "loc": side.loc,
        "customer": side.customer,
        "group": str(side.group),
        "holding": str(side.holding),
        "empty_group": str(EMPTY_GROUP if side is OWN else side.group),  # no devices, no child
        "admin": side.admin,
        "user": side.user,
        "n": str(side.n),
        "consent_version": _consent_versions()[side.n],  # of the record of S's grant
        **{serial: side.s(serial) for serial in SERIALS},
    }


def fill(template: Any, side: Side) -> Any:
    """`template` (a string, or lists and dicts of them) with `side`'s ids filled in."""
    return fill_ids(template, fields(side))


def fill_ids(template: Any, ids: Mapping[str, Any]) -> Any:
    """`template` with `ids` filled in by name ({loc}, {S} ...); a template that is one name
    only gets its value as it is (a number stays a number)."""
    if isinstance(template, str) and template[1:-1] in ids and template == f"{{{template[1:-1]}}}":
        return ids[template[1:-1]]
    if isinstance(template, str):
        return template.format_map(ids)
    if isinstance(template, list):
        return [fill_ids(item, ids) for item in template]
    if isinstance(template, dict):
        return {key: fill_ids(value, ids) for key, value in template.items()}
    return template


def _configuration(fleet: PartnerFleet) -> None:
    """Each side's S has collected data (R-CON-2: consent granted, the partner linked)."""
    for side in (OWN, OTHER):
        fleet.collect_configuration(OPS, side.s("S"), {"bios": "1.2"})


def _service(fleet: PartnerFleet) -> None:
    """Both partners accredited as service partners and linked so to their S, which has a
    critical service event, a service level and a case in the CSDP queue (R-SVC-*)."""
    level = ServiceLevel("warranty", "Base", date(2020, 1, 1), date(2099, 1, 1))
    for side in (OWN, OTHER):
        fleet.accredit_service_partner(OPS, side.loc, f"CSDP-{side.n}")
        choice = PartnerChoice(location_id=side.loc, role="service_partner")
        fleet.link_devices(customer(side.customer), side.customer, [side.s("S")], choice)
        fleet.record_service_event(OPS, side.s("S"), "E1", "critical", "PSU failed")
        fleet.add_service_level(OPS, side.s("S"), level)


OPERATIONS: dict[str, Op] = {
    # --- public ---
    "GET /healthz": Op(PUBLIC, None, "/healthz", denied=None, tenant=False),
    "GET /problems/{kind}": Op(PUBLIC, None, "/problems/not-found", denied=None, tenant=False),
    # --- partners and users (R-PAR-1, R-PAR-4, R-HLD-2) ---
    "POST /partners": Op(
        "register_partner",
        "ops",
        "/partners",
        {"location_id": "LOC-NEW{n}", "name": "New"},
        ok=201,
        denied="anna",
        tenant=False,
    ),
    "GET /partners/{location_id}": Op("partner_tenant", "ben", "/partners/{loc}"),
    "GET /partners/{location_id}/users": Op("partner_users", "ben", "/partners/{loc}/users"),
    "POST /partners/{location_id}/users": Op(
        "register_partner_user",
        "anna",
        "/partners/{loc}/users",
        {"passport_id": "new{n}@{loc}"},
        ok=201,
    ),
    "POST /partners/{location_id}/accreditation": Op(
        "accredit_service_partner",
        "ops",
        "/partners/{loc}/accreditation",
        {"csdp_account": "CSDP-{n}"},
        denied="anna",
        tenant=False,
    ),
    "POST /partners/{location_id}/certifications": Op(
        "certify_partner",
        "ops",
        "/partners/LOC-3/certifications",  # a spare partner of the world, not yet certified
        {"programme": "resell_view_monitor"},
        ok=201,
        denied="anna",
        tenant=False,
    ),
    "POST /partners/{location_id}/missing-device-requests": Op(
        "report_missing_devices",
        "ben",
        "/partners/{loc}/missing-device-requests",
        {"request_id": "R2", "serials": ["PCY{n}"]},
        ok=201,
    ),
    "POST /partners/{location_id}/missing-device-requests/{request_id}/resolution": Op(
        "resolve_missing_devices",
        "ops",
        "/partners/{loc}/missing-device-requests/R1/resolution",
        {"resolution": "found in e2Open"},
        denied="anna",
        tenant=False,
    ),
    # --- customer groups, child groups, favourites, the default view (R-FAV-*, R-GRP-*) ---
    "GET /partners/{location_id}/customer-groups": Op(
        "list_customers", "ben", "/partners/{loc}/customer-groups"
    ),
    "GET /partners/{location_id}/customer-groups/{group_id}": Op(
        "customer_dashboard", "ben", "/partners/{loc}/customer-groups/{group}"
    ),
    "DELETE /partners/{location_id}/customer-groups/{group_id}": Op(
        "delete_customer_group", "anna", "/partners/{loc}/customer-groups/{empty_group}", ok=204
    ),
    "POST /partners/{location_id}/customer-groups/{group_id}/child-groups": Op(
        "create_child_group",
        "anna",
        "/partners/{loc}/customer-groups/{group}/child-groups",
        {"child_id": "new", "name": "New racks"},
        ok=201,
    ),
    "POST /partners/{location_id}/customer-groups/{group_id}/child-groups/{child_id}/shares": Op(
        "share_child_group",
        "anna",
        "/partners/{loc}/customer-groups/{group}/child-groups/g/shares",
        {"passport_id": "cleo@LOC-1"},
        ok=201,
    ),
    "DELETE /partners/{location_id}/customer-groups/{group_id}/child-groups/{child_id}": Op(
        "delete_child_group",
        "anna",
        "/partners/{loc}/customer-groups/{group}/child-groups/g",
        ok=204,
    ),
    "POST /partners/{location_id}/customer-groups/{group_id}/admins": Op(
        "add_group_admin",
        "anna",
        "/partners/{loc}/customer-groups/{group}/admins",
        {"passport_id": "{user}"},
        ok=201,
    ),
    "POST /customers/{customer_id}/customer-groups/{group_id}/child-groups": Op(
        "create_customer_child_group",
        "c1",
        "/customers/{customer}/customer-groups/{group}/child-groups",
        {"child_id": "lab", "name": "Lab"},
        ok=201,
        denied="anna",
    ),
    "GET /partners/{location_id}/me": Op("partner_user", "ben", "/partners/{loc}/me"),
    "POST /partners/{location_id}/me/favourites": Op(
        "add_favourite",
        "ben",
        "/partners/{loc}/me/favourites",
        {"group_id": "{empty_group}"},
        ok=201,
    ),
    "DELETE /partners/{location_id}/me/favourites/{group_id}": Op(
        "remove_favourite", "ben", "/partners/{loc}/me/favourites/{group}", ok=204
    ),
    "PUT /partners/{location_id}/me/default-view": Op(
        "choose_default_view",
        "ben",
        "/partners/{loc}/me/default-view",
        {"view": "favorites_only"},
    ),
    # --- a customer's devices, links and consent (R-LNK-*, R-CON-*, R-PAR-2, R-PAR-3) ---
    "POST /customers/{customer_id}/devices": Op(
        "register_devices",
        "c1",
        "/customers/{customer}/devices",
        {"devices": [{"serial": "NEW{n}", "connection": "direct_connect"}]},
        ok=201,
        denied="anna",
    ),
    "GET /customers/{customer_id}/devices": Op(
        "my_it_environment", "c1", "/customers/{customer}/devices", denied="anna"
    ),
    "GET /customers/{customer_id}/devices/{serial}": Op(
        "environment_device", "c1", "/customers/{customer}/devices/{S}", denied="anna"
    ),
    "GET /customers/{customer_id}/devices/{serial}/consent-history": Op(
        "history", "c1", "/customers/{customer}/devices/{S}/consent-history", denied="anna"
    ),
    "GET /customers/{customer_id}/consent-history": Op(
        "history", "c1", "/customers/{customer}/consent-history", denied="anna"
    ),
    "GET /customers/{customer_id}/consent-history/export": Op(
        "consent_export", "c1", "/customers/{customer}/consent-history/export", denied="anna"
    ),
    "POST /customers/{customer_id}/links": Op(
        "link_devices",
        "c1",
        "/customers/{customer}/links",
        {"serials": ["{SN}"], "partner": {"location_id": "{loc}"}},
        denied="anna",
    ),
    "POST /customers/{customer_id}/link-removals": Op(
        "unlink_devices",
        "c1",
        "/customers/{customer}/link-removals",
        {"serials": ["{S}"]},
        denied="anna",
    ),
    "PUT /customers/{customer_id}/hosting-devices/{host_serial}/partner": Op(
        "set_hosting_partner",
        "c1",
        "/customers/{customer}/hosting-devices/{H}/partner",
        {"partner": {"location_id": "LOC-3"}},
        denied="anna",
    ),
    "POST /customers/{customer_id}/consent-grants": Op(
        "grant_consent",
        "c1",
        "/customers/{customer}/consent-grants",
        {"serials": ["{SN}"]},
        denied="anna",
    ),
    "POST /customers/{customer_id}/consent-withdrawals": Op(
        "withdraw_consent",
        "c1",
        "/customers/{customer}/consent-withdrawals",
        {"serials": ["{S}"]},
        denied="anna",
    ),
    "PUT /customers/{customer_id}/hosting-devices/{host_serial}/consent": Op(
        "grant_consent_on_host",
        "c1",
        "/customers/{customer}/hosting-devices/{H}/consent",
        {},
        denied="anna",
    ),
    "DELETE /customers/{customer_id}/hosting-devices/{host_serial}/consent": Op(
        "withdraw_consent_on_host",
        "c1",
        "/customers/{customer}/hosting-devices/{HC}/consent",
        ok=204,
        denied="anna",
    ),
    "PUT /customers/{customer_id}/insight-rs-case-routing": Op(
        "choose_insight_rs_case_routing",
        "c1",
        "/customers/{customer}/insight-rs-case-routing",
        {"serials": ["{S}"], "to_service_partner": True},
        denied="anna",
    ),
    # --- configuration, service events and levels (R-CON-2, R-SVC-*) ---
    "PUT /devices/{serial}/configuration": Op(
        "collect_configuration",
        "feed",
        "/devices/{S}/configuration",
        {"data": {"bios": "1.2"}},
        denied="anna",
        tenant=False,
    ),
    "GET /partners/{location_id}/devices/{serial}/configuration": Op(
        "configuration_for",
        "ben",
        "/partners/{loc}/devices/{S}/configuration",
        given=_configuration,
    ),
    "POST /devices/{serial}/service-events": Op(
        "record_service_event",
        "feed",
        "/devices/{S}/service-events",
        {"event_id": "E1", "severity": "critical", "summary": "Disk failed"},
        ok=201,
        denied="anna",
        tenant=False,
    ),
    "POST /devices/{serial}/service-levels": Op(
        "add_service_level",
        "feed",
        "/devices/{S}/service-levels",
        {"kind": "care_pack", "name": "CP", "starts": "2026-01-01", "ends": "2026-12-31"},
        ok=201,
        denied="anna",
        tenant=False,
    ),
    "GET /partners/{location_id}/service-events": Op(
        "service_events", "ben", "/partners/{loc}/service-events", given=_service
    ),
    "GET /partners/{location_id}/service-summary": Op(
        "service_summary", "ben", "/partners/{loc}/service-summary", given=_service
    ),
    "GET /partners/{location_id}/devices/{serial}/service-levels": Op(
        "service_levels",
        "ben",
        "/partners/{loc}/devices/{S}/service-levels",
        given=_service,
    ),
    # --- holding tenant, dashboards, transfers, cPIN (R-HLD-*, R-ALR-4) ---
    "GET /partners/{location_id}/holding-tenant/pcs": Op(
        "unassigned_devices", "ben", "/partners/{loc}/holding-tenant/pcs"
    ),
    "POST /partners/{location_id}/dashboards": Op(
        "create_customer_dashboard",
        "ben",
        "/partners/{loc}/dashboards",
        {"customer_id": "C-NEW{n}", "customer_name": "New", "cpin": CPIN},
        ok=201,
    ),
    "GET /partners/{location_id}/dashboards/{dashboard_id}": Op(
        "customer_dashboard", "ben", "/partners/{loc}/dashboards/{group}"
    ),
    "PUT /partners/{location_id}/dashboards/{dashboard_id}/self-service-notifications": Op(
        "switch_self_service_notifications",
        "ben",
        "/partners/{loc}/dashboards/{group}/self-service-notifications",
        {"on": False},
    ),
    "POST /partners/{location_id}/transfers": Op(
        "transfer_devices",
        "ben",
        "/partners/{loc}/transfers",
        {
            "transfer_id": "t1",
            "serials": ["{PT}"],
            "source_id": "{holding}",
            "target_id": "{group}",
        },
        ok=201,
    ),
    "POST /customers/{customer_id}/dashboards/{dashboard_id}/pcs": Op(
        "enrol_with_cpin",
        "c1",
        "/customers/{customer}/dashboards/{group}/pcs",
        {"cpin": CPIN, "serial": "PE{n}"},
        ok=201,
        denied="anna",
    ),
    "GET /partners/{location_id}/missing-device-requests": Op(
        "open_missing_device_requests", "ben", "/partners/{loc}/missing-device-requests"
    ),
    "GET /operations/missing-device-requests": Op(
        "open_missing_device_requests",
        "ops",
        "/operations/missing-device-requests",
        denied="anna",
        tenant=False,
    ),
    # --- intake over HTTP (R-HLD-1, R-ALR-1) ---
    "POST /intake/e2open/batches": Op(
        "receive_e2open_batch",
        "feed",
        "/intake/e2open/batches",
        {"batch_id": "b-new", "reports": [report("PN1", "LOC-1")]},
        denied="anna",
        tenant=False,
    ),
    "POST /intake/alerts/batches": Op(
        "receive_alert_batch",
        "feed",
        "/intake/alerts/batches",
        {
            "batch_id": "a-new",
            "alerts": [{"serial": "{S}", "alert_id": "B1", "severity": "info", "message": "Fan"}],
        },
        denied="anna",
        tenant=False,
    ),
    "GET /intake/e2open/rejected-reports": Op(
        "rejected_reports", "ops", "/intake/e2open/rejected-reports", denied="anna", tenant=False
    ),
    # --- alerts, repair cases and queues (R-ALR-1, R-ALR-2) ---
    "POST /devices/{serial}/alerts": Op(
        "raise_alert",
        "feed",
        "/devices/{S}/alerts",
        {"alert_id": "A2", "severity": "warning", "message": "Fan"},
        ok=201,
        denied="anna",
        tenant=False,
    ),
    "POST /devices/{serial}/repair-cases": Op(
        "submit_repair_case",
        "eu1",
        "/devices/{PCC}/repair-cases",
        {"alert_id": "A1", "case_id": "K1"},
        ok=201,
        denied="anna",
    ),
    "GET /partners/{location_id}/alerts": Op(
        "alert_notifications", "ben", "/partners/{loc}/alerts"
    ),
    "GET /partners/{location_id}/csdp-queue": Op(
        "csdp_queue", "ben", "/partners/{loc}/csdp-queue", given=_service
    ),
    "GET /operations/repair-queues/{destination}": Op(
        "repair_queue",
        "ops",
        "/operations/repair-queues/hp_customer_support",
        denied="anna",
        tenant=False,
    ),
    "GET /operations/repair-cases/unrouted": Op(
        "unrouted_repair_cases",
        "ops",
        "/operations/repair-cases/unrouted",
        denied="anna",
        tenant=False,
    ),
    "GET /operations/alerts": Op(
        "alert_notifications", "ops", "/operations/alerts", denied="anna", tenant=False
    ),
    # --- consent audit (R-CON-3, R-CON-4) and operations ---
    "GET /audit/consent-history": Op(
        "history",
        "auditor",
        "/audit/consent-history",
        denied="anna",
        tenant=False,
        query={"serial": "S1"},
    ),
    "GET /audit/consent-history/export": Op(
        "consent_export",
        "auditor",
        "/audit/consent-history/export",
        denied="anna",
        tenant=False,
        query={"serial": "S1"},
    ),
    "GET /audit/consent-in-effect": Op(
        "consent_in_effect",
        "auditor",
        "/audit/consent-in-effect",
        denied="anna",
        tenant=False,
        query={"serial": "S1", "partner": "LOC-1", "at": "2100-01-01T00:00:00Z"},
    ),
    "POST /audit/devices/{serial}/consent-corrections": Op(
        "correct_consent_record",
        "auditor",
        "/audit/devices/{S}/consent-corrections",
        {"corrects_version": "{consent_version}", "reason": "signed on paper"},
        ok=201,
        denied="anna",
        tenant=False,
    ),
    "POST /operations/key-claims": Op(
        "claim_stored_keys", "ops", "/operations/key-claims", denied="anna", tenant=False
    ),
    "GET /.well-known/jwks.json": Op(
        PUBLIC, None, "/.well-known/jwks.json", ok=404, denied=None, tenant=False
    ),
}
