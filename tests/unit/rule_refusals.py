"""The table of rule refusals (issue 9): each one arranged on a fleet, ready to provoke.

A case names the rule it proves (its function is `r_xxx_n_…`), the error expected, and
arranges a small world in memory as the actors of tests/actors.py; it returns the act
that must be refused. Partners, links, consent and favourites here; groups, holding
tenant and alerts in tests/unit/rule_refusals_more.py; tests/unit/test_rule_ids.py runs
both tables.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from domain import CustomerGroup, DomainError
from domain.base import NotAllowedError
from domain.consent import ConsentError
from domain.device_support import DeviceError
from domain.partner import PartnerError
from domain.passport import DeviceQuotaExceededError, FavouriteError
from handlers import PartnerFleet
from handlers.access import Actor, partner_scope
from handlers.devices import NewDevice, PartnerChoice
from projections.base import QueryError
from projections.consent_queries import configuration_for
from projections.customer_queries import list_customers
from projections.customer_queries import partner_user as known_user
from tests.actors import customer, feed, known_partner_user, operator, partner_user
from tests.scenarios import report, servers
from tests.views import memory_runner

Act = Callable[[], object]
Arrange = Callable[[PartnerFleet], Act]
OPS = operator()
C1 = customer("C1")


@dataclass(frozen=True)
class Case:
    """One refusal: the rule that makes it, the error it is and what its message says
    (a regular expression), how to provoke it."""

    rule: str
    error: type[DomainError]
    match: str
    arrange: Arrange

    def __str__(self) -> str:
        return self.arrange.__name__


class Table(list[Case]):
    """Cases in the order they are declared."""

    def case(self, rule: str, error: type[DomainError], match: str) -> Callable[[Arrange], Arrange]:
        """Add the decorated arrangement, refused under `rule` with `error` saying `match`."""

        def register(arrange: Arrange) -> Arrange:
            self.append(Case(rule, error, match, arrange))
            return arrange

        return register


CASES = Table()
case = CASES.case


# --- small worlds ------------------------------------------------------------------------


def partner(fleet: PartnerFleet, loc: str = "LOC-1", *, certified: bool = False) -> Actor:
    """A reseller with admin anna@loc and user ben@loc; returns its admin."""
    fleet.register_partner(OPS, loc, f"Partner {loc}")
    for user in (f"anna@{loc}", f"ben@{loc}"):
        fleet.register_partner_user(OPS, loc, user)
    if certified:
        fleet.certify_partner(OPS, loc, "resell_view_monitor")
    return partner_user(fleet, loc, f"anna@{loc}")


def ben(fleet: PartnerFleet) -> Actor:
    """LOC-1's plain user."""
    return partner_user(fleet, "LOC-1", "ben@LOC-1")


def linked(
    fleet: PartnerFleet, customer_id: str = "C1", serial: str = "S1", loc: str = "LOC-1"
) -> UUID:
    """The customer's server linked to `loc`; returns the partner's group for the customer."""
    choice = PartnerChoice(location_id=loc)
    fleet.register_devices(customer(customer_id), customer_id, servers(serial), choice)
    return CustomerGroup.id_for(loc, customer_id)


def pcs(fleet: PartnerFleet, customer_id: str, *serials: str) -> None:
    """The customer registers PCs of its own."""
    new = [NewDevice(serial=s, connection="pc_agent") for s in serials]
    fleet.register_devices(customer(customer_id), customer_id, new)


def holding(fleet: PartnerFleet) -> tuple[Actor, UUID, UUID]:
    """Certified LOC-1 with PC1 in its holding tenant and C1's dashboard (cPIN 1234):
    (anna, holding tenant id, dashboard id)."""
    anna = partner(fleet, certified=True)
    fleet.receive_e2open_batch(feed(), "B1", [report("PC1")])
    dashboard = fleet.create_customer_dashboard(anna, "LOC-1", "C1", "Customer One", "1234")
    tenant = fleet.partner("LOC-1").holding_tenant_id
    assert tenant is not None
    return anna, tenant, dashboard


def alerted(fleet: PartnerFleet) -> None:
    """PC1 in LOC-1's holding tenant with alert A1."""
    holding(fleet)
    fleet.raise_alert(feed(), "PC1", "A1", "critical", "Disk failing")


# --- partners and users ------------------------------------------------------------------


@case("R-PAR-1", DomainError, "already a user of partner LOC-1")
def r_par_1_a_passport_id_joins_one_partner_only(fleet: PartnerFleet) -> Act:
    partner(fleet)
    fleet.register_partner(OPS, "LOC-2", "Partner LOC-2")
    return lambda: fleet.register_partner_user(OPS, "LOC-2", "anna@LOC-1")


@case("R-PAR-1", NotAllowedError, "not an admin of partner LOC-1")
def r_par_1_a_plain_user_is_no_partner_admin(fleet: PartnerFleet) -> Act:
    partner(fleet)
    return lambda: fleet.partner("LOC-1").require_admin("ben@LOC-1")


@case("R-PAR-2", NotAllowedError, "not a user of partner LOC-2")
def r_par_2_a_favourite_only_among_its_own_partners_groups(fleet: PartnerFleet) -> Act:
    partner(fleet)
    partner(fleet, "LOC-2")
    group = linked(fleet, loc="LOC-2")
    forged = known_partner_user("LOC-2", "anna@LOC-1", admin=True)  # anna is LOC-1's
    return lambda: fleet.add_favourite(forged, group)


@case("R-PAR-2", NotAllowedError, "ghost@LOC-1 is not recognised as a partner user")
def r_par_2_an_unknown_passport_has_no_default_view(fleet: PartnerFleet) -> Act:
    partner(fleet)
    ghost = known_partner_user("LOC-1", "ghost@LOC-1", admin=False)
    return lambda: fleet.choose_default_view(ghost, "all_customers")


@case("R-PAR-2", NotAllowedError, "ghost@LOC-1 is not recognised as a partner user")
def r_par_2_my_customers_only_for_a_user_the_view_knows(fleet: PartnerFleet) -> Act:
    partner(fleet)
    scope = partner_scope(known_partner_user("LOC-1", "ghost@LOC-1", admin=False), "LOC-1")
    return read(fleet, lambda tx: known_user(tx, scope))


@case("R-PAR-3", DeviceQuotaExceededError, "limit of 1,500 devices")
def r_par_3_the_1501st_device_of_a_passport_id(fleet: PartnerFleet) -> Act:
    many = servers(*(f"Q{n}" for n in range(1_501)))
    return lambda: fleet.register_devices(C1, "C1", many)


@case("R-PAR-4", PartnerError, "must be accredited as service partner")
def r_par_4_service_delivery_needs_a_service_partner(fleet: PartnerFleet) -> Act:
    partner(fleet)
    return lambda: fleet.certify_partner(OPS, "LOC-1", "service_delivery")


@case("R-PAR-4", PartnerError, "has no holding tenant")
def r_par_4_no_missing_device_request_without_holding_tenant(fleet: PartnerFleet) -> Act:
    anna = partner(fleet)
    return lambda: fleet.report_missing_devices(anna, "LOC-1", "REQ-1", ["PC1"])


@case("R-PAR-4", PartnerError, "has no holding tenant")
def r_par_4_no_customer_dashboard_without_holding_tenant(fleet: PartnerFleet) -> Act:
    anna = partner(fleet)
    return lambda: fleet.create_customer_dashboard(anna, "LOC-1", "C1", "One", "1234")


# --- links and consent -------------------------------------------------------------------


@case("R-LNK-4", DeviceError, "not an accredited service partner")
def r_lnk_4_only_a_service_partner_is_linked_as_one(fleet: PartnerFleet) -> Act:
    partner(fleet)
    linked(fleet)
    as_service = PartnerChoice(location_id="LOC-1", role="service_partner")
    return lambda: fleet.link_devices(C1, "C1", ["S1"], as_service)


@case("R-CON-1", ConsentError, "central-connect: set consent once")
def r_con_1_a_central_connect_device_follows_its_host(fleet: PartnerFleet) -> Act:
    host = NewDevice(serial="H1", connection="direct_connect", is_hosting_device=True)
    hosted = NewDevice(serial="CC1", connection="central_connect", hosting_serial="H1")
    fleet.register_devices(C1, "C1", [host, hosted])
    return lambda: fleet.grant_consent(C1, "C1", ["CC1"])


@case("R-CON-2", ConsentError, "has not granted consent")
def r_con_2_no_configuration_data_without_consent(fleet: PartnerFleet) -> Act:
    partner(fleet)
    linked(fleet)
    return lambda: fleet.collect_configuration(feed(), "S1", {"cpus": 2})


@case("R-CON-2", ConsentError, "no partner is linked")
def r_con_2_no_configuration_data_without_a_partner(fleet: PartnerFleet) -> Act:
    fleet.register_devices(C1, "C1", servers("S1"))
    fleet.grant_consent(C1, "C1", ["S1"])
    return lambda: fleet.collect_configuration(feed(), "S1", {"cpus": 2})


@case("R-CON-2", NotAllowedError, "has not granted consent")
def r_con_2_a_partner_reads_no_configuration_without_consent(fleet: PartnerFleet) -> Act:
    anna = partner(fleet)
    linked(fleet)
    scope = partner_scope(anna, "LOC-1")
    return read(fleet, lambda tx: configuration_for(tx, scope, "S1"))


@case("R-CON-4", ConsentError, "must say why")
def r_con_4_a_correction_says_why(fleet: PartnerFleet) -> Act:
    fleet.register_devices(C1, "C1", servers("S1"))
    fleet.grant_consent(C1, "C1", ["S1"])
    version = fleet.device("S1").consent_versions[0]
    return lambda: fleet.correct_consent_record(OPS, "S1", version, "  ", None)


def read(fleet: PartnerFleet, query: Callable[..., object]) -> Act:
    """The act of running `query(tx)` on every view, caught up with `fleet` now."""
    runner = memory_runner(fleet)
    runner.catch_up()

    def act() -> object:
        with runner.db.transaction() as tx:
            return query(tx)

    return act


# --- favourites --------------------------------------------------------------------------


@case("R-FAV-2", FavouriteError, "already have 25 favourites")
def r_fav_2_the_26th_favourite(fleet: PartnerFleet) -> Act:
    anna = partner(fleet)
    groups = [linked(fleet, f"C{n}", f"S{n}") for n in range(26)]
    for group in groups[:25]:
        fleet.add_favourite(anna, group)
    return lambda: fleet.add_favourite(anna, groups[25])


@case("R-FAV-3", FavouriteError, "at least one favourite")
def r_fav_3_no_favorites_only_without_a_favourite(fleet: PartnerFleet) -> Act:
    anna = partner(fleet)
    return lambda: fleet.choose_default_view(anna, "favorites_only")


@case("R-FAV-3", QueryError, "at least one favourite")
def r_fav_3_no_favorites_only_list_without_a_favourite(fleet: PartnerFleet) -> Act:
    scope = partner_scope(partner(fleet), "LOC-1")
    return read(fleet, lambda tx: list_customers(tx, scope, view="favorites_only"))
