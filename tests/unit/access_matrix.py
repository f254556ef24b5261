"""The access matrix of every command (issue 9; docs/decisions.md, "Access matrix").

Per command: its call on a side (tests/unit/access_world.py) and the outcome per role on
the own side and on the other: accepted, `ForbiddenError` (403: the role may never do it),
`NotFoundError` (404: another tenant's resource, told as a missing one), or a named domain
refusal. A role a row does not list is forbidden on both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from domain import Device, NotAllowedError
from domain.customer_group import CustomerGroupError
from domain.service_level import ServiceLevel
from handlers import PartnerFleet
from handlers.access import Actor, Role
from handlers.devices import PartnerChoice
from tests.scenarios import report, servers
from tests.unit.access_world import CPIN, EMPTY_GROUP, OWN, Side, consent_version

Call = Callable[[PartnerFleet, Actor, Side], object]


@dataclass(frozen=True)
class Refusal:
    """A domain refusal: its class and what its message says."""

    error: type[Exception]
    says: str


OK = "accepted"
FORBIDDEN = "403"
NOT_FOUND = "404"
Outcome = str | Refusal


@dataclass(frozen=True)
class Row:
    """A command's calls (on a side) and the outcome per role: (own side, other side). A
    row without `other` has no tenant to name (n/a). Roles not listed are forbidden."""

    rules: str
    call: Call
    allowed: dict[Role, tuple[Outcome, Outcome]]
    other: bool = True


PARTNERS = (Role.PARTNER_ADMIN, Role.PARTNER_USER)
INTAKE = (Role.FEED, Role.OPERATOR)


def both(outcome: Outcome, *roles: Role) -> dict[Role, tuple[Outcome, Outcome]]:
    """`roles` get `outcome` on either side (roles bound to no tenant)."""
    return dict.fromkeys(roles, (outcome, outcome))


def own_only(*roles: Role) -> dict[Role, tuple[Outcome, Outcome]]:
    """`roles` are accepted on their own tenant; another tenant's is not found."""
    return dict.fromkeys(roles, (OK, NOT_FOUND))


NOT_GROUP_ADMIN = Refusal(NotAllowedError, "ben@LOC-1 is not an admin of customer group")
NOT_VISIBLE = Refusal(CustomerGroupError, "ben@LOC-1 has no visible child group g")
LEVEL = ServiceLevel("care_pack", "CP", date(2026, 1, 1), date(2026, 12, 31))


def case_call(fleet: PartnerFleet, actor: Actor, side: Side) -> object:
    """Self-service on the side's PC for customer roles; Insight RS on S for the others."""
    if actor.role in (Role.FEED, Role.OPERATOR):
        return fleet.submit_repair_case(actor, side.s("S"), "A1", "K1", source="insight_rs")
    return fleet.submit_repair_case(actor, side.s("PCC"), "A1", "K1")


MATRIX: dict[str, Row] = {
    # --- partners and users (R-PAR-1, R-PAR-4, R-HLD-2) ---
    "register_partner": Row(
        "R-PAR-1",
        lambda f, a, s: f.register_partner(a, s.s("LOC-NEW"), "New"),
        both(OK, Role.OPERATOR),
    ),
    "register_partner_user": Row(
        "R-PAR-1",
        lambda f, a, s: f.register_partner_user(a, s.loc, s.s("new@")),
        {Role.OPERATOR: (OK, OK), Role.PARTNER_ADMIN: (OK, NOT_FOUND)},
    ),
    "accredit_service_partner": Row(
        "R-PAR-1, R-LNK-4",
        lambda f, a, s: f.accredit_service_partner(a, s.loc, s.s("CSDP-")),
        both(OK, Role.OPERATOR),
    ),
    "certify_partner": Row(
        "R-PAR-4",
        lambda f, a, s: f.certify_partner(a, f"LOC-{s.n + 2}", "resell_view_monitor"),
        both(OK, Role.OPERATOR),
    ),
    "report_missing_devices": Row(
        "R-HLD-2",
        lambda f, a, s: f.report_missing_devices(a, s.loc, "R2", ["PCY"]),
        own_only(*PARTNERS),
    ),
    "resolve_missing_devices": Row(
        "R-HLD-2",
        lambda f, a, s: f.resolve_missing_devices(a, s.loc, "R1", "found in e2Open"),
        both(OK, Role.OPERATOR),
    ),
    "claim_stored_keys": Row(
        "R-PAR-1, R-PAR-3", lambda f, a, s: f.claim_stored_keys(a), both(OK, Role.OPERATOR), False
    ),
    # --- a customer's devices, links and consent (R-LNK-*, R-CON-*, R-PAR-3) ---
    "register_devices": Row(
        "R-PAR-3, R-LNK-3",
        lambda f, a, s: f.register_devices(a, s.customer, servers(s.s("NEW"))),
        own_only(Role.CUSTOMER_ADMIN),
    ),
    "link_devices": Row(
        "R-LNK-1, R-LNK-3",
        lambda f, a, s: f.link_devices(
            a, s.customer, [s.s("SN")], PartnerChoice(location_id=s.loc)
        ),
        own_only(Role.CUSTOMER_ADMIN),
    ),
    "unlink_devices": Row(
        "R-LNK-6",
        lambda f, a, s: f.unlink_devices(a, s.customer, [s.s("S")]),
        own_only(Role.CUSTOMER_ADMIN),
    ),
    "set_hosting_partner": Row(
        "R-LNK-2",
        lambda f, a, s: f.set_hosting_partner(
            a, s.customer, s.s("H"), PartnerChoice(location_id="LOC-3")
        ),
        own_only(Role.CUSTOMER_ADMIN),
    ),
    "grant_consent": Row(
        "R-CON-1, R-CON-3",
        lambda f, a, s: f.grant_consent(a, s.customer, [s.s("SN")]),
        own_only(Role.CUSTOMER_ADMIN),
    ),
    "withdraw_consent": Row(
        "R-CON-3",
        lambda f, a, s: f.withdraw_consent(a, s.customer, [s.s("S")]),
        own_only(Role.CUSTOMER_ADMIN),
    ),
    "grant_consent_on_host": Row(
        "R-CON-1",
        lambda f, a, s: f.grant_consent_on_host(a, s.customer, s.s("H")),
        own_only(Role.CUSTOMER_ADMIN),
    ),
    "withdraw_consent_on_host": Row(
        "R-CON-1, R-CON-3",
        lambda f, a, s: f.withdraw_consent_on_host(a, s.customer, s.s("HC")),
        own_only(Role.CUSTOMER_ADMIN),
    ),
    "choose_insight_rs_case_routing": Row(
        "R-ALR-2",
        lambda f, a, s: f.choose_insight_rs_case_routing(a, s.customer, [s.s("S")], True),
        own_only(Role.CUSTOMER_ADMIN),
    ),
    "correct_consent_record": Row(
        "R-CON-4",
        lambda f, a, s: f.correct_consent_record(
            a, s.s("S"), consent_version(f, s), "signed on paper", None
        ),
        both(OK, Role.AUDITOR, Role.OPERATOR),
    ),
    # --- what remote support reports (R-CON-2, R-SVC-1, R-SVC-3, R-ALR-1) ---
    "collect_configuration": Row(
        "R-CON-2",
        lambda f, a, s: f.collect_configuration(a, s.s("S"), {"bios": "1.2"}),
        both(OK, *INTAKE),
    ),
    "add_service_level": Row(
        "R-SVC-3", lambda f, a, s: f.add_service_level(a, s.s("S"), LEVEL), both(OK, *INTAKE)
    ),
    "record_service_event": Row(
        "R-SVC-1",
        lambda f, a, s: f.record_service_event(a, s.s("S"), "E1", "critical", "Disk failed"),
        both(OK, *INTAKE),
    ),
    "raise_alert": Row(
        "R-ALR-1",
        lambda f, a, s: f.raise_alert(a, s.s("S"), "A2", "warning", "Fan"),
        both(OK, *INTAKE),
    ),
    "receive_e2open_batch": Row(
        "R-HLD-1",
        lambda f, a, s: f.receive_e2open_batch(a, s.s("b-new"), [report(s.s("PN"), s.loc)]),
        both(OK, *INTAKE),
    ),
    "receive_alert_batch": Row(
        "R-ALR-1",
        lambda f, a, s: f.receive_alert_batch(
            a,
            s.s("a-new"),
            [{"serial": s.s("S"), "alert_id": "B1", "severity": "info", "message": "Fan"}],
        ),
        both(OK, *INTAKE),
    ),
    # --- repair cases and the policies' decisions (R-ALR-1, R-ALR-2, R-ALR-4) ---
    "submit_repair_case": Row(
        "R-ALR-1, R-ALR-2",
        case_call,
        {
            **own_only(Role.CUSTOMER_ADMIN, Role.END_USER),
            **both(OK, Role.FEED, Role.OPERATOR),
        },
    ),
    "notify_alert": Row(
        "R-ALR-1, R-ALR-4",
        lambda f, a, s: f.notify_alert(a, Device.id_for(s.s("S")), "A1"),
        both(OK, Role.POLICY),
    ),
    "route_repair_case": Row(
        "R-ALR-2",
        lambda f, a, s: f.route_repair_case(a, Device.id_for(s.s("S")), "K9"),
        both(OK, Role.POLICY),
    ),
    # --- customer groups, child groups, favourites (R-GRP-*, R-FAV-*) ---
    "create_child_group": Row(
        "R-GRP-1, R-GRP-3",
        lambda f, a, s: f.create_child_group(a, s.group, "new", "New racks"),
        {Role.PARTNER_ADMIN: (OK, NOT_FOUND), Role.PARTNER_USER: (NOT_GROUP_ADMIN, NOT_FOUND)},
    ),
    "create_customer_child_group": Row(
        "R-GRP-1",
        lambda f, a, s: f.create_customer_child_group(a, s.customer, s.group, "lab", "Lab"),
        own_only(Role.CUSTOMER_ADMIN),
    ),
    "share_child_group": Row(
        "R-GRP-1",
        lambda f, a, s: f.share_child_group(a, s.group, "g", "cleo@LOC-1"),
        {Role.PARTNER_ADMIN: (OK, NOT_FOUND), Role.PARTNER_USER: (NOT_VISIBLE, NOT_FOUND)},
    ),
    "delete_child_group": Row(
        "R-GRP-1",
        lambda f, a, s: f.delete_child_group(a, s.group, "g"),
        {Role.PARTNER_ADMIN: (OK, NOT_FOUND), Role.PARTNER_USER: (NOT_VISIBLE, NOT_FOUND)},
    ),
    "add_group_admin": Row(
        "R-GRP-3",
        lambda f, a, s: f.add_group_admin(a, s.group, s.user),
        {Role.PARTNER_ADMIN: (OK, NOT_FOUND), Role.PARTNER_USER: (NOT_GROUP_ADMIN, NOT_FOUND)},
    ),
    "delete_customer_group": Row(
        "R-GRP-2",
        lambda f, a, s: f.delete_customer_group(a, EMPTY_GROUP if s is OWN else s.group),
        {
            Role.PARTNER_ADMIN: (OK, NOT_FOUND),
            Role.PARTNER_USER: (
                Refusal(NotAllowedError, "ben@LOC-1 is not an admin of customer group C3"),
                NOT_FOUND,
            ),
        },
    ),
    "add_favourite": Row(
        "R-FAV-2",
        lambda f, a, s: f.add_favourite(a, EMPTY_GROUP if s is OWN else s.group),
        own_only(*PARTNERS),
    ),
    "remove_favourite": Row(
        "R-FAV-2, R-FAV-3", lambda f, a, s: f.remove_favourite(a, s.group), own_only(*PARTNERS)
    ),
    "choose_default_view": Row(
        "R-FAV-4",
        lambda f, a, s: f.choose_default_view(a, "favorites_only"),
        both(OK, *PARTNERS),
        False,
    ),
    # --- holding tenant, dashboards, transfers, cPIN (R-HLD-3, R-ALR-4) ---
    "create_customer_dashboard": Row(
        "R-HLD-3, R-PAR-4",
        lambda f, a, s: f.create_customer_dashboard(a, s.loc, s.s("C-NEW"), "New", CPIN),
        own_only(*PARTNERS),
    ),
    "transfer_devices": Row(
        "R-HLD-3",
        lambda f, a, s: f.transfer_devices(a, s.loc, [s.s("PT")], s.holding, s.group, "t1"),
        own_only(*PARTNERS),
    ),
    "switch_self_service_notifications": Row(
        "R-ALR-4",
        lambda f, a, s: f.switch_self_service_notifications(a, s.loc, s.group, False),
        own_only(*PARTNERS),
    ),
    "enrol_with_cpin": Row(
        "R-HLD-3",
        lambda f, a, s: f.enrol_with_cpin(a, s.customer, s.group, CPIN, s.s("PE")),
        own_only(Role.CUSTOMER_ADMIN),
    ),
}
