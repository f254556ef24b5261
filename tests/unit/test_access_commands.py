"""The access matrix of every command (issue 9; docs/decisions.md, "Access matrix").

Every command in `COMMANDS` x every role x (own tenant, another tenant) -> the exact outcome:
accepted, `ForbiddenError` (403: the role may never do it), `NotFoundError` (404: another
tenant's resource, told as a missing one), or a named domain refusal. A role a row does not
list must be forbidden on both columns. Each case runs on its own copy of one world, in
memory: two partners (LOC-1 is the partner roles' own, LOC-2 another) and two customers (C1
is the customer roles' own, C2 another), each side with the same kinds of things.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent

from domain import CustomerGroup, Device, NotAllowedError, NotFoundError, PartnerTenant
from domain.consent import ConsentError
from domain.customer_group import CustomerGroupError
from domain.service_level import ServiceLevel
from handlers import PartnerFleet
from handlers.access import Actor, ForbiddenError, Role
from handlers.base import COMMANDS, FleetApplication, Working, command
from handlers.devices import NewDevice, PartnerChoice
from tests.actors import (
    auditor,
    customer,
    end_user,
    feed,
    operator,
    partner_user,
    policy,
)
from tests.scenarios import event_count, in_memory_fleet, report, servers
from tests.unit.conftest import ANNA, BEN, OTTO, hosted_fleet

CPIN = "4711-C"
OPS = operator()


@dataclass(frozen=True)
class Side:
    """One tenant's things: a partner with its users, a customer with its devices."""

    n: int  # 1: the actors' own tenant, 2: another tenant
    loc: str
    customer: str
    admin: str  # the partner's first user, so its admin
    user: str  # a plain partner user

    @property
    def group(self) -> UUID:
        """The partner's customer group (and dashboard) for the customer."""
        return CustomerGroup.id_for(self.loc, self.customer)

    @property
    def holding(self) -> UUID:
        """The partner's holding tenant."""
        return PartnerTenant.holding_tenant_id_for(self.loc)

    def s(self, name: str) -> str:
        """This side's serial or id `name` (S -> S1 on the own side, S2 on the other)."""
        return f"{name}{self.n}"


OWN = Side(1, "LOC-1", "C1", "anna@LOC-1", "ben@LOC-1")
OTHER = Side(2, "LOC-2", "C2", "otto@LOC-2", "ute@LOC-2")
EMPTY_GROUP = CustomerGroup.id_for(OWN.loc, "C3")  # LOC-1's group of C3, emptied


@cache
def world_events() -> tuple[StoredEvent, ...]:
    """The world's stored events, recorded once; each case starts from a copy of them."""
    fleet = in_memory_fleet()
    for side in (OWN, OTHER):
        fleet.register_partner(OPS, side.loc, f"Partner {side.loc}")
    for spare in ("LOC-3", "LOC-4"):  # registered, not certified
        fleet.register_partner(OPS, spare, f"Partner {spare}")
    fleet.register_partner_user(OPS, OWN.loc, OWN.admin)
    fleet.register_partner_user(OPS, OWN.loc, OWN.user)
    fleet.register_partner_user(OPS, OWN.loc, "cleo@LOC-1")
    fleet.register_partner_user(OPS, OTHER.loc, OTHER.admin)
    fleet.register_partner_user(OPS, OTHER.loc, OTHER.user)
    for side in (OWN, OTHER):
        build_side(fleet, side)
    anna = partner_user(fleet, OWN.loc, OWN.admin)
    fleet.add_group_admin(anna, OWN.group, "cleo@LOC-1")
    c3 = customer("C3")
    fleet.register_devices(c3, "C3", servers("S7"), PartnerChoice(location_id=OWN.loc))
    fleet.unlink_devices(c3, "C3", ["S7"])
    notifications = fleet.recorder.select_notifications(start=1, limit=100_000)
    return tuple(
        StoredEvent(n.originator_id, n.originator_version, n.topic, n.state) for n in notifications
    )


def build_side(fleet: PartnerFleet, side: Side) -> None:
    """One side, its partner's users registered: certified; the customer's servers (S with
    consent, SN without), hosts (H without consent, HC with), a PC (PCC); alerts A1 (open)
    and A9 (with case K9) on S, A1 on PCC; a child group g; the customer's dashboard holding
    PD; PT unassigned in the holding tenant; missing-PC request R1; the group a favourite of
    both users."""
    fleet.certify_partner(OPS, side.loc, "resell_view_monitor")
    admin = partner_user(fleet, side.loc, side.admin)
    owner = customer(side.customer)
    devices = [
        *servers(side.s("S"), side.s("SN")),
        *hosted_fleet(side.s("H"), side.s("CC")),
        *hosted_fleet(side.s("HC"), side.s("CCC")),
        NewDevice(serial=side.s("PCC"), connection="pc_agent"),
    ]
    fleet.register_devices(owner, side.customer, devices, PartnerChoice(location_id=side.loc))
    fleet.grant_consent(owner, side.customer, [side.s("S")])
    fleet.grant_consent_on_host(owner, side.customer, side.s("HC"))
    for serial, alert in ((side.s("S"), "A1"), (side.s("S"), "A9"), (side.s("PCC"), "A1")):
        fleet.raise_alert(OPS, serial, alert, "critical", "Failure predicted")
    fleet.submit_repair_case(owner, side.s("S"), "A9", "K9")
    fleet.create_child_group(admin, side.group, "g", "Racks")
    fleet.create_customer_dashboard(admin, side.loc, side.customer, "Customer", CPIN)
    fleet.receive_e2open_batch(OPS, side.s("b"), [report(side.s("PT"), side.loc)])
    fleet.receive_e2open_batch(OPS, side.s("bd"), [report(side.s("PD"), side.loc)])
    fleet.transfer_devices(admin, side.loc, [side.s("PD")], side.holding, side.group, "t0")
    fleet.report_missing_devices(admin, side.loc, "R1", ["PCX"])
    for passport in (side.admin, side.user):
        fleet.add_favourite(partner_user(fleet, side.loc, passport), side.group)


def world() -> PartnerFleet:
    """A fresh copy of the world, in memory."""
    fleet = in_memory_fleet()
    fleet.recorder.insert_events(list(world_events()))
    return fleet


# --- the actors: one per role, each of the own side ----------------------------------------


def actor_for(fleet: PartnerFleet, role: Role) -> Actor:
    """The own side's actor in `role`; partner users are authenticated against the store."""
    actors: dict[Role, Callable[[], Actor]] = {
        Role.PARTNER_ADMIN: lambda: partner_user(fleet, OWN.loc, OWN.admin),
        Role.PARTNER_USER: lambda: partner_user(fleet, OWN.loc, OWN.user),
        Role.CUSTOMER_ADMIN: lambda: customer(OWN.customer),
        Role.END_USER: lambda: end_user(OWN.customer, [OWN.s("PCC")]),
        Role.AUDITOR: auditor,
        Role.OPERATOR: operator,
        Role.FEED: feed,
        Role.POLICY: policy,
    }
    return actors[role]()


# --- the matrix ----------------------------------------------------------------------------

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
    notes: list[str] = field(default_factory=list)


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


def consent_version(fleet: PartnerFleet, side: Side) -> int:
    """The version of the side's first consent record (on S)."""
    return fleet.device(side.s("S")).consent_versions[0]


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


def expected(name: str, role: Role, side: Side) -> Outcome:
    """The matrix's outcome for `role` calling `name` on `side`."""
    outcomes = MATRIX[name].allowed.get(role, (FORBIDDEN, FORBIDDEN))
    return outcomes[0 if side is OWN else 1]


CASES = [
    pytest.param(name, role, side, id=f"{name}-{role.value}-{'own' if side is OWN else 'other'}")
    for name, row in MATRIX.items()
    for role in Role
    for side in ((OWN, OTHER) if row.other else (OWN,))
]


@pytest.mark.parametrize(("name", "role", "side"), CASES)
def test_issue_9_access_matrix_every_command_every_role_own_and_other_tenant(
    name: str, role: Role, side: Side
) -> None:
    """R-PAR-2, R-LNK-1, R-CON-3, R-GRP-1…3, R-HLD-3, R-ALR-1: the exact outcome per cell;
    a refusal records nothing."""
    fleet = world()
    actor, outcome = actor_for(fleet, role), expected(name, role, side)
    before = event_count(fleet)

    if outcome == OK:
        MATRIX[name].call(fleet, actor, side)
        return
    error, says = (
        {
            FORBIDDEN: (ForbiddenError, f"The role {role.value} may not"),
            NOT_FOUND: (NotFoundError, "^No "),
        }.get(outcome, (None, ""))
        if isinstance(outcome, str)
        else (outcome.error, outcome.says)
    )
    assert error is not None
    with pytest.raises(error, match=says) as refused:
        MATRIX[name].call(fleet, actor, side)
    assert type(refused.value) is error  # 403 and 404 are not each other's subclasses
    assert event_count(fleet) == before


def test_issue_9_the_matrix_lists_every_declared_command_and_its_roles() -> None:
    """A command added to COMMANDS without a row here fails; so does a row for no command,
    and a row allowing other roles than the declaration."""
    assert set(MATRIX) == set(COMMANDS)
    for name, row in MATRIX.items():
        assert set(row.allowed) == set(COMMANDS[name].roles), name


def test_r_par_1_the_unit_tests_partner_actors_are_what_the_store_authenticates() -> None:
    """R-PAR-1: ANNA (admin), BEN (user), OTTO (admin) of tests/unit/conftest.py are the
    actors `authenticate` makes once the fixtures registered them."""
    fleet = world()

    for constant in (ANNA, BEN, OTTO):
        checked = partner_user(fleet, constant.tenant, constant.subject)
        assert (checked.role, checked.tenant, checked.subject, checked.partner_type) == (
            constant.role,
            constant.tenant,
            constant.subject,
            constant.partner_type,
        )


# --- details of the model the matrix cannot show ------------------------------------------


def test_r_alr_1_an_end_user_names_only_a_pc_it_works_on_as_a_missing_one() -> None:
    """R-ALR-1: a PC of its own customer that is not in the end user's PCs is not found, in
    the words used for a serial nobody registered."""
    fleet = world()
    someone_else = end_user(OWN.customer, ["PCZ"])

    told = []
    for serial in (OWN.s("PCC"), "PC404"):
        with pytest.raises(NotFoundError) as refused:
            fleet.submit_repair_case(someone_else, serial, "A1", "K1")
        told.append(str(refused.value).replace(serial, "<serial>"))

    assert told[0] == told[1] == "No device with serial number '<serial>'."


def test_r_alr_1_an_unassigned_pc_takes_the_case_of_whoever_works_on_it() -> None:
    """R-ALR-1: a PC in a holding tenant, with no customer recorded yet, takes the repair
    case of the end user working on it (its pop-up went there)."""
    fleet = world()
    fleet.raise_alert(OPS, OWN.s("PT"), "A1", "critical", "Battery swelling")

    fleet.submit_repair_case(end_user("C-ANY", [OWN.s("PT")]), OWN.s("PT"), "A1", "K1")

    assert fleet.device(OWN.s("PT")).alerts["A1"].repair_case_id == "K1"


@pytest.mark.parametrize(
    ("actor", "source"),
    [(customer(OWN.customer), "insight_rs"), (feed(), "self_service")],
    ids=["customer-insight-rs", "feed-self-service"],
)
def test_r_alr_2_insight_rs_cases_come_from_remote_support_self_service_from_the_customer(
    actor: Actor, source: str
) -> None:
    """R-ALR-2: the source of a case goes with who submits it; the other way is 403."""
    fleet = world()

    with pytest.raises(ForbiddenError, match=f"may not submit {source.replace('_', ' ')}"):
        fleet.submit_repair_case(actor, OWN.s("S"), "A1", "K1", source=source)


def test_r_con_4_a_correction_needs_a_reason_whoever_makes_it() -> None:
    """R-CON-4: an auditor's correction without a reason is refused; nothing is recorded."""
    fleet = world()
    before = event_count(fleet)

    with pytest.raises(ConsentError, match="must say why"):
        fleet.correct_consent_record(auditor(), OWN.s("S"), consent_version(fleet, OWN), " ", None)

    assert event_count(fleet) == before


def test_issue_9_an_undeclared_command_cannot_exist() -> None:
    """A public method taking an actor without @command is refused when its class is made."""
    with pytest.raises(TypeError, match=r"Sneaky\.grant_everything takes an actor but is not"):

        class Sneaky(FleetApplication):
            def grant_everything(self, actor: Actor) -> None:
                """Would bypass the access check."""

    class Declared(FleetApplication):
        @command(Role.OPERATOR)
        def noop(self, w: Working, actor: Actor) -> None:
            """Declared: checked."""

    assert Declared.noop.__command__.roles == {Role.OPERATOR}  # type: ignore[attr-defined]


def test_issue_9_a_foreign_tenant_reads_the_same_as_a_missing_one_for_device_commands() -> None:
    """R-LNK-1: the customer admin of C1 naming C2's id is told what it is told for an id
    no one has; a PC of another customer is "no device", as an unknown serial."""
    fleet = world()
    c1 = customer(OWN.customer)

    with pytest.raises(NotFoundError) as theirs:
        fleet.grant_consent(c1, OTHER.customer, [OTHER.s("SN")])
    with pytest.raises(NotFoundError) as nobodys:
        fleet.grant_consent(c1, "C404", [OTHER.s("SN")])

    assert str(theirs.value).replace("C2", "<id>") == str(nobodys.value).replace("C404", "<id>")
    with pytest.raises(NotFoundError, match="No device with serial number 'SN2'"):
        fleet.grant_consent(c1, OWN.customer, [OTHER.s("SN")])
