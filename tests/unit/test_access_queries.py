"""The query access matrix (issue 9): every query x every role x own / other tenant / other
tenant's resource, with the exact outcome, at the access layer, in memory.

A query is asked the way every entry point asks it: the access layer makes the scope the
query takes for the actor (`handlers.access`), then the query runs with it. Outcomes:
"ok", 403 (`ForbiddenError`: the role may never do this, on any tenant) or 404
(`NotFoundError`: another tenant's, in the words for a missing one). The table this test
proves is in docs/decisions.md, "Query scopes (issue 9)".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pytest

from domain import CustomerGroup, NotFoundError
from domain.service_level import ServiceLevel
from handlers import PartnerFleet, PolicyRunner, partner_queries
from handlers.access import (
    PARTNER_ROLES,
    Actor,
    AuditScope,
    CustomerScope,
    EndUserScope,
    ForbiddenError,
    OperatorScope,
    PartnerScope,
    Role,
    audit_scope,
    customer_scope,
    end_user_scope,
    operator_scope,
    partner_scope,
    policy_actor,
)
from handlers.devices import PartnerChoice
from infra.follow.view_runner import ViewRunner
from projections import (
    consent_export,
    consent_queries,
    customer_queries,
    dashboards,
    environment,
    holding,
    partners,
    repair_queues,
    service,
)
from projections.base import Tx
from projections.consent_queries import Selection
from tests.actors import case_submitter, partner_user
from tests.actors import customer as customer_admin
from tests.scenarios import OPS, in_memory_fleet, partner, report, servers
from tests.scopes import AUDITOR, FEED, OPERATOR, customer_actor, end_user_actor, partner_actor
from tests.views import memory_runner

SERVICE, OTHER_SERVICE, RESELLER, OTHER_RESELLER = "LOC-S", "LOC-T", "LOC-1", "LOC-2"
OTHERS = {SERVICE: OTHER_SERVICE, RESELLER: OTHER_RESELLER, "C1": "C2"}
NOW = datetime(2100, 1, 1, tzinfo=UTC)


def build_world(fleet: PartnerFleet) -> None:
    """C1's S1: reseller LOC-1, service partner LOC-S, consent, data, an event, a level, an
    alert told to LOC-S with a case in its CSDP queue. C2's S2: LOC-2 and LOC-T. PC1 and
    PC2 wait in LOC-1's and LOC-2's holding tenants; each partner opened a request."""
    for location in (RESELLER, OTHER_RESELLER):
        partner(fleet, location)
    for location in (SERVICE, OTHER_SERVICE):
        partner(fleet, location, service=True)
    for customer, serial, reseller, service_partner in (
        ("C1", "S1", RESELLER, SERVICE),
        ("C2", "S2", OTHER_RESELLER, OTHER_SERVICE),
    ):
        fleet.register_devices(
            customer_admin(customer), customer, servers(serial), PartnerChoice(location_id=reseller)
        )
        choice = PartnerChoice(location_id=service_partner, role="service_partner")
        fleet.link_devices(customer_admin(customer), customer, [serial], choice)
        fleet.grant_consent(customer_admin(customer), customer, [serial])
        fleet.collect_configuration(OPS, serial, {"bios": "1.2"})
        fleet.record_service_event(OPS, serial, f"E-{serial}", "critical", "PSU failed")
        level = ServiceLevel("warranty", "Base", date(2020, 1, 1), date(2099, 1, 1))
        fleet.add_service_level(OPS, serial, level)
        fleet.raise_alert(OPS, serial, f"A-{serial}", "critical", "Failure predicted")
        fleet.submit_repair_case(
            case_submitter(fleet, serial), serial, f"A-{serial}", f"K-{serial}"
        )
    fleet.receive_e2open_batch(OPS, "b1", [report("PC1", RESELLER), report("PC2", OTHER_RESELLER)])
    fleet.receive_e2open_batch(OPS, "b2", [report("PC3", "LOC-404")])  # rejected
    for location in (RESELLER, SERVICE, OTHER_RESELLER):
        fleet.report_missing_devices(
            partner_user(fleet, location, f"anna@{location}"), location, "R1", ["PC9"]
        )
    PolicyRunner(fleet).catch_up()


@dataclass(frozen=True)
class World:
    fleet: PartnerFleet
    runner: ViewRunner

    @contextmanager
    def read(self) -> Iterator[Tx]:
        with self.runner.db.transaction() as tx:
            yield tx


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    fleet = in_memory_fleet()
    build_world(fleet)
    runner = memory_runner(fleet)
    runner.catch_up()
    yield World(fleet, runner)
    runner.db.close()


# --- who asks ----------------------------------------------------------------------------

ActorMaker = Callable[[PartnerFleet], Actor]
ACTORS: dict[str, ActorMaker] = {
    "partner_user": lambda f: partner_actor(f, f"ben@{SERVICE}", SERVICE),
    "partner_admin": lambda f: partner_actor(f, f"anna@{SERVICE}", SERVICE),
    "reseller_user": lambda f: partner_actor(f, f"ben@{RESELLER}", RESELLER),
    "customer_admin": lambda _: customer_actor("C1"),
    "end_user": lambda _: end_user_actor("C1", "S1"),
    "auditor": lambda _: AUDITOR,
    "operator": lambda _: OPERATOR,
    "feed": lambda _: FEED,
    "policy": lambda _: policy_actor("alerts", "corr"),
}
CASES = ("own", "other tenant", "other's resource")


# --- what is asked -----------------------------------------------------------------------

Call = Callable[[Any, Any, str], object]  # (tx, or the fleet for a store query; scope; resource)


@dataclass(frozen=True)
class Query:
    """A query: the scopes it takes (in the order an entry point tries them), the call
    (tx, scope, resource), and the resource each tenant names as its own (None: none)."""

    takes: tuple[type, ...]
    call: Call
    resource: Callable[[str], str] | None = None  # tenant -> its own resource
    service: bool = False  # R-SVC-1: a reseller is refused (403)
    store: bool = False  # reads the event store (handlers), given the fleet for the tx


def serial_of(tenant: str) -> str:
    """The device of this partner's or customer's own: S1 of C1 (LOC-1, LOC-S), else S2."""
    return "S1" if tenant in (SERVICE, RESELLER, "C1") else "S2"


def group_of(tenant: str) -> str:
    customer = "C1" if tenant in (SERVICE, RESELLER) else "C2"
    return str(CustomerGroup.id_for(tenant, customer))


QUERIES: dict[str, Query] = {
    "partner_tenant": Query(
        (PartnerScope,), lambda f, s, _: partner_queries.partner_tenant(f, s), store=True
    ),
    "partner_users": Query(
        (PartnerScope,), lambda f, s, _: partner_queries.partner_users(f, s), store=True
    ),
    "partner_user": Query((PartnerScope,), lambda tx, s, _: customer_queries.partner_user(tx, s)),
    "list_customers": Query(
        (PartnerScope,), lambda tx, s, _: customer_queries.list_customers(tx, s)
    ),
    "customer_dashboard": Query((PartnerScope,), customer_queries.customer_dashboard, group_of),
    "customer_row": Query((PartnerScope,), customer_queries.customer_row, group_of),
    "partner_device": Query((PartnerScope,), customer_queries.partner_device, serial_of),
    "configuration_for": Query((PartnerScope,), consent_queries.configuration_for, serial_of),
    "unassigned_devices": Query(
        (PartnerScope,), lambda tx, s, _: holding.unassigned_devices(tx, s)
    ),
    "customer_dashboards": Query(
        (PartnerScope,), lambda tx, s, _: dashboards.customer_dashboards(tx, s)
    ),
    "dashboard_pcs": Query((PartnerScope,), lambda tx, s, _: dashboards.dashboard_pcs(tx, s, [])),
    "transfers": Query((PartnerScope,), lambda tx, s, _: dashboards.transfers(tx, s)),
    "open_missing_device_requests": Query(
        (PartnerScope, OperatorScope), lambda tx, s, _: holding.open_missing_device_requests(tx, s)
    ),
    "alert_notifications": Query(
        (PartnerScope, OperatorScope), lambda tx, s, _: repair_queues.alert_notifications(tx, s)
    ),
    "csdp_queue": Query(
        (PartnerScope,), lambda tx, s, _: repair_queues.csdp_queue(tx, s), service=True
    ),
    "service_events": Query(
        (PartnerScope,),
        lambda tx, s, d: service.service_events(tx, s, serial=d),
        serial_of,
        service=True,
    ),
    "service_summary": Query(
        (PartnerScope,), lambda tx, s, _: service.service_summary(tx, s), service=True
    ),
    "service_levels": Query(
        (PartnerScope,),
        lambda tx, s, d: service.service_levels(tx, s, d, date(2026, 1, 1)),
        serial_of,
        service=True,
    ),
    "history": Query(
        (CustomerScope, AuditScope),
        lambda tx, s, d: consent_queries.history(tx, s, Selection(serial=d)),
        serial_of,
    ),
    "consent_export": Query(
        (CustomerScope, AuditScope),
        lambda tx, s, d: list(consent_export.consent_export(tx, s, Selection(serial=d))),
        serial_of,
    ),
    "export_batches": Query(
        (CustomerScope, AuditScope),
        lambda tx, s, d: list(consent_export.export_batches(tx, s, Selection(serial=d))),
        serial_of,
    ),
    "history_statement": Query(
        (CustomerScope, AuditScope),
        lambda tx, s, d: consent_queries.history_statement(tx, s, Selection(serial=d)),
        serial_of,
    ),
    "count_export": Query(
        (CustomerScope, AuditScope),
        lambda tx, s, d: consent_export.count_export(tx, s, Selection(serial=d)),
        serial_of,
    ),
    "consent_in_effect": Query(
        (AuditScope,), lambda tx, s, _: consent_queries.consent_in_effect(tx, s, "S1", SERVICE, NOW)
    ),
    "rejected_reports": Query((OperatorScope,), lambda tx, s, _: holding.rejected_reports(tx, s)),
    "partners_overview": Query(
        (OperatorScope,), lambda tx, s, _: partners.partners_overview(tx, s)
    ),
    "partner_overview": Query(
        (OperatorScope,), lambda tx, s, _: partners.partner_overview(tx, s, RESELLER)
    ),
    "users_of_partner": Query(
        (OperatorScope,), lambda tx, s, _: partners.users_of_partner(tx, s, RESELLER)
    ),
    "repair_queue": Query(
        (OperatorScope,), lambda tx, s, _: repair_queues.repair_queue(tx, s, "hpe_support")
    ),
    "unrouted_repair_cases": Query(
        (OperatorScope,), lambda tx, s, _: repair_queues.unrouted_repair_cases(tx, s)
    ),
    "my_it_environment": Query(
        (CustomerScope,), lambda tx, s, _: environment.my_it_environment(tx, s)
    ),
    "environment_device": Query((CustomerScope,), environment.environment_device, serial_of),
    "end_user_pcs": Query((EndUserScope,), lambda tx, s, _: repair_queues.end_user_pcs(tx, s)),
}

# The matrix: which roles a query answers (any other role: 403, on any tenant).
PARTNERS = {"partner_user", "partner_admin", "reseller_user"}
ALLOWED: dict[str, set[str]] = {
    "partner_tenant": PARTNERS,
    "partner_users": PARTNERS,
    "partner_user": PARTNERS,
    "list_customers": PARTNERS,
    "customer_dashboard": PARTNERS,
    "customer_row": PARTNERS,
    "partner_device": PARTNERS,
    "configuration_for": PARTNERS,
    "unassigned_devices": PARTNERS,
    "customer_dashboards": PARTNERS,
    "dashboard_pcs": PARTNERS,
    "transfers": PARTNERS,
    "open_missing_device_requests": PARTNERS | {"operator"},
    "alert_notifications": PARTNERS | {"operator"},
    "csdp_queue": PARTNERS,
    "service_events": PARTNERS,
    "service_summary": PARTNERS,
    "service_levels": PARTNERS,
    "history": {"customer_admin", "auditor", "operator"},
    "consent_export": {"customer_admin", "auditor", "operator"},
    "count_export": {"customer_admin", "auditor", "operator"},
    "export_batches": {"customer_admin", "auditor", "operator"},
    "history_statement": {"customer_admin", "auditor", "operator"},
    "consent_in_effect": {"auditor", "operator"},
    "rejected_reports": {"operator"},
    "partners_overview": {"operator"},
    "partner_overview": {"operator"},
    "users_of_partner": {"operator"},
    "repair_queue": {"operator"},
    "unrouted_repair_cases": {"operator"},
    "my_it_environment": {"customer_admin"},
    "environment_device": {"customer_admin"},
    "end_user_pcs": {"end_user"},
}
TENANT_BOUND = PARTNERS | {"customer_admin", "end_user"}


def expected(query: str, role: str, case: str) -> str:
    """The outcome the matrix promises."""
    if role not in ALLOWED[query]:
        return "403"
    bound = role in TENANT_BOUND
    if bound and case == "other tenant":
        return "404"  # the scope is refused before anything else is looked at
    if QUERIES[query].service and role == "reseller_user":
        return "403"  # R-SVC-1: refused on its own tenant, whatever device it names
    if bound and case == "other's resource" and QUERIES[query].resource is not None:
        return "404"
    return "ok"


def scope_for(actor: Actor, takes: tuple[type, ...], tenant: str) -> object:
    """The scope an entry point asks the access layer for: the one of `takes` the role
    has, else the first (which refuses the role)."""
    if actor.role in PARTNER_ROLES and PartnerScope in takes:
        return partner_scope(actor, tenant)
    if actor.role is Role.CUSTOMER_ADMIN and CustomerScope in takes:
        return customer_scope(actor, tenant)
    if actor.role is Role.OPERATOR and OperatorScope in takes:
        return operator_scope(actor)
    if actor.role in (Role.AUDITOR, Role.OPERATOR) and AuditScope in takes:
        return audit_scope(actor)
    if actor.role is Role.END_USER and EndUserScope in takes:
        return end_user_scope(actor, tenant)
    makers: dict[type, Callable[[], object]] = {
        PartnerScope: lambda: partner_scope(actor, tenant),
        CustomerScope: lambda: customer_scope(actor, tenant),
        AuditScope: lambda: audit_scope(actor),
        OperatorScope: lambda: operator_scope(actor),
        EndUserScope: lambda: end_user_scope(actor, tenant),
    }
    return makers[takes[0]]()


def outcome(world: World, query: str, role: str, case: str) -> str:
    actor = ACTORS[role](world.fleet)
    own = actor.tenant or SERVICE  # unbound roles name resources of C1 / LOC-S
    tenant = OTHERS.get(own, own) if case == "other tenant" else own
    asked = QUERIES[query]
    owner = OTHERS.get(own, own) if case != "own" else own
    resource = "" if asked.resource is None else asked.resource(owner)
    try:
        with world.read() as tx:
            asked.call(
                world.fleet if asked.store else tx, scope_for(actor, asked.takes, tenant), resource
            )
    except ForbiddenError:
        return "403"
    except NotFoundError:
        return "404"
    return "ok"


MATRIX = [(q, r, c) for q in QUERIES for r in ACTORS for c in CASES]


@pytest.mark.parametrize(("query", "role", "case"), MATRIX, ids=["/".join(m) for m in MATRIX])
def test_issue_9_every_query_answers_every_role_as_the_matrix_says(
    world: World, query: str, role: str, case: str
) -> None:
    """R-PAR-2, R-LNK-1, R-CON-2…4, R-SVC-1, R-HLD-*, R-ALR-*: the exact outcome."""
    assert outcome(world, query, role, case) == expected(query, role, case)


def test_issue_9_the_matrix_lists_every_query_function_of_projections() -> None:
    """A new public query function must be added to the matrix (and to the decisions)."""
    modules = (
        partner_queries,
        consent_export,
        consent_queries,
        customer_queries,
        dashboards,
        environment,
        holding,
        partners,
        repair_queues,
        service,
    )
    scoped = {
        name
        for module in modules
        for name, value in vars(module).items()
        if callable(value)
        and getattr(value, "__module__", "") == module.__name__
        and not name.startswith("_")
        and _takes_a_scope(value)
    }
    assert scoped == set(QUERIES)


def _takes_a_scope(function: Callable[..., object]) -> bool:
    return "Scope" in str(getattr(function, "__annotations__", {}).get("scope", ""))


def test_issue_9_a_query_given_a_string_for_a_scope_is_a_type_error_for_mypy() -> None:
    """The scope parameters are annotated with the scope classes (mypy strict refuses a
    str there); at run time a scope cannot be made outside handlers.access."""
    with pytest.raises(TypeError, match=r"made only by handlers\.access"):
        PartnerScope("LOC-1", "anna@LOC-1", True, "reseller")
    annotation = customer_queries.list_customers.__annotations__["scope"]
    assert annotation == "PartnerScope"
