"""The My Customers read model: All Customers / Favorites Only pages and group dashboards."""

from __future__ import annotations

import base64
from typing import Any
from uuid import UUID

import pytest

from domain import NotFoundError
from handlers import PartnerFleet
from handlers.access import (
    Actor,
    AuthenticationError,
    Claims,
    ForbiddenError,
    Role,
    authenticate,
    partner_scope,
)
from handlers.devices import NewDevice, PartnerChoice
from projections.base import Tx
from projections.customer_queries import (
    CustomerPage,
    CustomerRow,
    QueryError,
    customer_dashboard,
    list_customers,
    partner_user,
)
from tests.actors import customer
from tests.scenarios import report
from tests.scopes import customer_actor, partner_of
from tests.unit.views_support import (
    CUSTOMER,
    LOC,
    OPS,
    OTHER_LOC,
    SERVICE_LOC,
    Reader,
    admin,
    db,
    fleet,
    group_id,
    group_of,
    link_new_servers,
    new_partner,
    read,
    runner,
    servers,
    user,
)

__all__ = ["db", "fleet", "read", "runner"]

ANNA, BEN = admin(LOC), user(LOC)
SAM = admin(SERVICE_LOC)


def names(page: CustomerPage) -> list[str]:
    """The customer names on a page, in page order."""
    return [row.name for row in page.rows]


def row_of(page: CustomerPage, customer_id: str) -> CustomerRow:
    """The page's row of one customer."""
    [row] = [r for r in page.rows if r.customer_id == customer_id]
    return row


def serials_in(
    fleet: PartnerFleet, tx: Tx, who: Actor, location_id: str, customer_id: str
) -> list[str]:
    """The devices the partner user sees on the customer's dashboard."""
    dashboard = customer_dashboard(
        tx, partner_of(fleet, who.principal), group_of(location_id, customer_id)
    )
    return [device.serial for device in dashboard.devices]


def children_seen(fleet: PartnerFleet, tx: Tx, who: Actor, customer_id: str) -> list[str]:
    """The child groups of LOC-1's group for the customer that this admin sees."""
    dashboard = customer_dashboard(tx, partner_of(fleet, who.principal), group_of(LOC, customer_id))
    return [child["child_id"] for child in dashboard.child_groups]


def favourite(fleet: PartnerFleet, who: Actor, *customer_ids: str) -> None:
    """The user marks LOC-1's groups of these customers as favourites."""
    for customer_id in customer_ids:
        fleet.add_favourite(who, group_id(LOC, customer_id))


@pytest.fixture
def two_partners(fleet: PartnerFleet) -> None:
    """Resellers LOC-1 and LOC-2, each with admin Anna and user Ben."""
    new_partner(fleet, LOC)
    new_partner(fleet, OTHER_LOC)


@pytest.fixture
def customers(fleet: PartnerFleet, two_partners: None) -> None:
    """C1 with three servers and C2 with one, linked to LOC-1; C3 with one, linked to LOC-2."""
    link_new_servers(fleet, "C1", "S1", "S2", "S3", to=LOC, name="Customer One")
    link_new_servers(fleet, "C2", "S4", to=LOC, name="Customer Two")
    link_new_servers(fleet, "C3", "S5", to=OTHER_LOC, name="Customer Three")


# --- R-FAV-1: All Customers lists customer groups; a group lists its devices -------------


def test_r_fav_1_all_customers_lists_one_row_per_customer_group_not_per_device(
    fleet: PartnerFleet, read: Reader, customers: None
) -> None:
    with read() as tx:
        page = list_customers(tx, partner_of(fleet, ANNA.principal))

    assert [(r.customer_id, r.name) for r in page.rows] == [
        ("C1", "Customer One"),
        ("C2", "Customer Two"),
    ]
    assert row_of(page, "C1").group_id == group_of(LOC, "C1")
    assert row_of(page, "C1").devices == {"central_connect": 0, "direct_connect": 3, "pc_agent": 0}
    assert row_of(page, "C2").devices == {"central_connect": 0, "direct_connect": 1, "pc_agent": 0}
    assert page.next_cursor is None


def test_r_fav_1_all_customers_lists_only_the_partners_own_customer_groups(
    fleet: PartnerFleet, read: Reader, customers: None
) -> None:
    with read() as tx:
        seen_by_ben = names(list_customers(tx, partner_of(fleet, BEN.principal)))
        seen_by_loc_2 = names(list_customers(tx, partner_of(fleet, admin(OTHER_LOC).principal)))

    assert seen_by_ben == ["Customer One", "Customer Two"]
    assert seen_by_loc_2 == ["Customer Three"]


def test_r_fav_1_a_group_lists_only_the_devices_linked_to_this_partner(
    fleet: PartnerFleet, read: Reader, customers: None
) -> None:
    fleet.link_devices(CUSTOMER, "C1", ["S3"], PartnerChoice(location_id=OTHER_LOC))

    with read() as tx:
        dashboard = customer_dashboard(tx, partner_of(fleet, ANNA.principal), group_of(LOC, "C1"))
        seen_by_loc_2 = serials_in(fleet, tx, admin(OTHER_LOC), OTHER_LOC, "C1")

    assert [(d.serial, d.connection, d.model, d.reasons) for d in dashboard.devices] == [
        ("S1", "direct_connect", "DL380", ["reseller"]),
        ("S2", "direct_connect", "DL380", ["reseller"]),
    ]
    assert dashboard.name == "Customer One"
    assert seen_by_loc_2 == ["S3"]


def test_r_fav_1_a_group_of_another_partner_cannot_be_opened(
    fleet: PartnerFleet, read: Reader, customers: None
) -> None:
    """R-FAV-1, R-LNK-1: another partner's group is "not found", as an unknown id is."""
    foreign, unknown = group_of(OTHER_LOC, "C3"), group_of(LOC, "C-NOBODY")
    with read() as tx:
        with pytest.raises(NotFoundError) as other:
            customer_dashboard(tx, partner_of(fleet, ANNA.principal), foreign)
        with pytest.raises(NotFoundError) as missing:
            customer_dashboard(tx, partner_of(fleet, ANNA.principal), unknown)

    assert str(other.value) == f"No customer group {foreign}."
    assert str(missing.value) == f"No customer group {unknown}."


def test_r_fav_1_device_counts_are_kept_per_connection_type(
    fleet: PartnerFleet, read: Reader, two_partners: None
) -> None:
    host = NewDevice(serial="H1", connection="direct_connect", is_hosting_device=True)
    managed = [
        NewDevice(serial=s, connection="central_connect", hosting_serial="H1") for s in ("M1", "M2")
    ]
    fleet.register_devices(CUSTOMER, "C1", [host, *managed], PartnerChoice(location_id=LOC))
    fleet.receive_e2open_batch(OPS, "b1", [report("PC1"), report("PC2")])
    holding = fleet.partner(LOC).require_holding_tenant()
    dashboard = fleet.create_customer_dashboard(ANNA, LOC, "C1", "Customer One", "4711")
    fleet.transfer_devices(ANNA, LOC, ["PC1"], holding, dashboard, "t1")

    with read() as tx:
        page = list_customers(tx, partner_of(fleet, ANNA.principal))

    assert row_of(page, "C1").devices == {"central_connect": 2, "direct_connect": 1, "pc_agent": 1}


# --- R-FAV-1: keyset paging over All Customers -------------------------------------------


def walk(
    fleet: PartnerFleet, tx: Tx, passport: str, limit: int, **filters: Any
) -> tuple[list[str], list[int]]:
    """Every group id of every page, following next_cursor; and the size of each page."""
    group_ids: list[str] = []
    sizes: list[int] = []
    cursor: str | None = None
    while True:
        page = list_customers(
            tx, partner_of(fleet, passport), cursor=cursor, limit=limit, **filters
        )
        group_ids += [row.group_id for row in page.rows]
        sizes.append(len(page.rows))
        cursor = page.next_cursor
        if cursor is None:
            return group_ids, sizes
        assert len(sizes) <= 100, "next_cursor never ends"


def many_customers(fleet: PartnerFleet, count: int) -> list[str]:
    """`count` customers of LOC-1 whose names repeat and mix case; their group ids in order."""
    spelled = ["beta", "Alpha", "ALPHA", "gamma", "Beta", "alpha", "Delta"]
    groups = []
    for n in range(count):
        name = spelled[n % len(spelled)]
        link_new_servers(fleet, f"C{n}", f"S{n}", to=LOC, name=name)
        groups.append((name.casefold(), group_of(LOC, f"C{n}")))
    return [gid for _, gid in sorted(groups)]


@pytest.mark.parametrize(
    ("count", "limit", "sizes"),
    [(23, 5, [5, 5, 5, 5, 3]), (10, 5, [5, 5]), (3, 1, [1, 1, 1]), (7, 200, [7])],
)
def test_r_fav_1_walking_every_page_returns_each_group_exactly_once_in_name_order(
    fleet: PartnerFleet, read: Reader, count: int, limit: int, sizes: list[int]
) -> None:
    new_partner(fleet, LOC)
    expected = many_customers(fleet, count)

    with read() as tx:
        walked, page_sizes = walk(fleet, tx, ANNA.principal, limit)

    assert walked == expected
    assert page_sizes == sizes


def test_r_fav_1_paging_stays_in_order_when_groups_are_added_between_pages(
    fleet: PartnerFleet, read: Reader
) -> None:
    new_partner(fleet, LOC)
    for n, name in enumerate(["b", "d", "f", "h"]):
        link_new_servers(fleet, f"C{n}", f"S{n}", to=LOC, name=name)
    with read() as tx:
        first = list_customers(tx, partner_of(fleet, ANNA.principal), limit=2)

    for n, name in enumerate(["a", "e"], start=10):
        link_new_servers(fleet, f"C{n}", f"S{n}", to=LOC, name=name)

    with read() as tx:
        rest = list_customers(
            tx, partner_of(fleet, ANNA.principal), cursor=first.next_cursor, limit=10
        )
    assert names(first) == ["b", "d"]
    assert names(rest) == ["e", "f", "h"]  # "a" sorts before the cursor: no repeats, no gaps


def test_r_fav_1_a_page_ends_with_no_cursor_when_nothing_follows(
    fleet: PartnerFleet, read: Reader
) -> None:
    new_partner(fleet, LOC)

    with read() as tx:
        empty = list_customers(tx, partner_of(fleet, ANNA.principal))

    assert empty.rows == []
    assert empty.next_cursor is None


def forged(text: str) -> str:
    """A cursor built outside the service from `text`."""
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    ["not-a-cursor", "%%%", forged("[1]"), forged("42"), forged("null"), forged('["a","b","c"]')],
)
def test_r_fav_1_a_cursor_the_service_did_not_issue_is_refused(
    fleet: PartnerFleet, read: Reader, cursor: str
) -> None:
    new_partner(fleet, LOC)
    many_customers(fleet, 3)

    with read() as tx, pytest.raises(QueryError, match="cursor"):
        list_customers(tx, partner_of(fleet, ANNA.principal), cursor=cursor, limit=1)


@pytest.mark.parametrize("limit", [0, -1, 201, 10_000])
def test_r_fav_1_a_page_size_outside_1_to_200_is_refused(
    fleet: PartnerFleet, read: Reader, limit: int
) -> None:
    new_partner(fleet, LOC)

    with read() as tx, pytest.raises(QueryError, match=str(limit)):
        list_customers(tx, partner_of(fleet, ANNA.principal), limit=limit)


# --- R-FAV-2: favourites are flagged per user --------------------------------------------


def test_r_fav_2_a_favourite_is_flagged_for_the_user_who_marked_it_only(
    fleet: PartnerFleet, read: Reader, customers: None
) -> None:
    favourite(fleet, ANNA, "C2")

    with read() as tx:
        annas = list_customers(tx, partner_of(fleet, ANNA.principal))
        bens = list_customers(tx, partner_of(fleet, BEN.principal))

    assert [(r.customer_id, r.favourite) for r in annas.rows] == [("C1", False), ("C2", True)]
    assert [(r.customer_id, r.favourite) for r in bens.rows] == [("C1", False), ("C2", False)]


def test_r_fav_2_an_unmarked_favourite_is_no_longer_flagged(
    fleet: PartnerFleet, read: Reader, customers: None
) -> None:
    favourite(fleet, ANNA, "C1", "C2")
    with read() as tx:
        before = list_customers(tx, partner_of(fleet, ANNA.principal))

    fleet.remove_favourite(ANNA, group_id(LOC, "C1"))

    with read() as tx:
        after = list_customers(tx, partner_of(fleet, ANNA.principal))
    assert [r.favourite for r in before.rows] == [True, True]
    assert [r.favourite for r in after.rows] == [False, True]


# --- R-FAV-3: Favorites Only needs a favourite -------------------------------------------


def test_r_fav_3_favorites_only_is_available_only_while_the_user_has_a_favourite(
    fleet: PartnerFleet, read: Reader, customers: None
) -> None:
    with read() as tx:
        without = list_customers(tx, partner_of(fleet, ANNA.principal))
    favourite(fleet, ANNA, "C1")
    with read() as tx:
        with_one = list_customers(tx, partner_of(fleet, ANNA.principal))
        bens = list_customers(tx, partner_of(fleet, BEN.principal))

    assert not without.favorites_only_available
    assert with_one.favorites_only_available
    assert not bens.favorites_only_available


def test_r_fav_3_favorites_only_lists_only_the_users_favourites(
    fleet: PartnerFleet, read: Reader, customers: None
) -> None:
    favourite(fleet, ANNA, "C2")

    with read() as tx:
        page = list_customers(tx, partner_of(fleet, ANNA.principal), view="favorites_only")

    assert page.view == "favorites_only"
    assert names(page) == ["Customer Two"]
    assert all(r.favourite for r in page.rows)


def test_r_fav_3_asking_for_favorites_only_without_favourites_is_refused(
    fleet: PartnerFleet, read: Reader, customers: None
) -> None:
    with read() as tx, pytest.raises(QueryError, match="at least one favourite"):
        list_customers(tx, partner_of(fleet, BEN.principal), view="favorites_only")


def test_r_fav_3_removing_the_last_favourite_falls_back_to_all_customers(
    fleet: PartnerFleet, read: Reader, customers: None
) -> None:
    favourite(fleet, ANNA, "C1")
    fleet.choose_default_view(ANNA, "favorites_only")
    with read() as tx:
        before = list_customers(tx, partner_of(fleet, ANNA.principal))

    fleet.remove_favourite(ANNA, group_id(LOC, "C1"))

    with read() as tx:
        after = list_customers(tx, partner_of(fleet, ANNA.principal))
        default = partner_user(tx, partner_of(fleet, ANNA.principal)).default_view
    assert (before.view, names(before)) == ("favorites_only", ["Customer One"])
    assert (after.view, names(after)) == ("all_customers", ["Customer One", "Customer Two"])
    assert not after.favorites_only_available
    assert default == "all_customers"


# --- R-FAV-4: the default view is remembered per user ------------------------------------


def test_r_fav_4_the_initial_default_view_is_all_customers(
    fleet: PartnerFleet, read: Reader, customers: None
) -> None:
    with read() as tx:
        default = partner_user(tx, partner_of(fleet, ANNA.principal)).default_view
        page = list_customers(tx, partner_of(fleet, ANNA.principal))

    assert default == "all_customers"
    assert page.view == "all_customers"


def test_r_fav_4_the_users_default_view_is_shown_when_no_view_is_asked_for(
    fleet: PartnerFleet, read: Reader, customers: None
) -> None:
    favourite(fleet, ANNA, "C2")
    fleet.choose_default_view(ANNA, "favorites_only")

    with read() as tx:
        page = list_customers(tx, partner_of(fleet, ANNA.principal))
        default = partner_user(tx, partner_of(fleet, ANNA.principal)).default_view

    assert default == "favorites_only"
    assert (page.view, names(page)) == ("favorites_only", ["Customer Two"])


def test_r_fav_4_asking_for_a_view_once_leaves_the_default_unchanged(
    fleet: PartnerFleet, read: Reader, customers: None
) -> None:
    favourite(fleet, ANNA, "C2")
    fleet.choose_default_view(ANNA, "favorites_only")

    with read() as tx:
        asked = list_customers(tx, partner_of(fleet, ANNA.principal), view="all_customers")
        default = list_customers(tx, partner_of(fleet, ANNA.principal))

    assert (asked.view, names(asked)) == ("all_customers", ["Customer One", "Customer Two"])
    assert (default.view, names(default)) == ("favorites_only", ["Customer Two"])


def test_r_fav_4_one_users_default_view_is_not_another_users(
    fleet: PartnerFleet, read: Reader, customers: None
) -> None:
    favourite(fleet, ANNA, "C2")
    favourite(fleet, BEN, "C1")
    fleet.choose_default_view(ANNA, "favorites_only")

    with read() as tx:
        bens = list_customers(tx, partner_of(fleet, BEN.principal))

    assert (bens.view, names(bens)) == ("all_customers", ["Customer One", "Customer Two"])


def test_r_fav_4_an_unknown_view_is_refused(
    fleet: PartnerFleet, read: Reader, customers: None
) -> None:
    with read() as tx, pytest.raises(QueryError, match="favourites_list"):
        list_customers(tx, partner_of(fleet, ANNA.principal), view="favourites_list")


# --- R-FAV-5: search and filters apply to the set being shown ----------------------------

NAMED = {
    "N1": "Acme GmbH",
    "N2": "ACME Corp",
    "N3": "Beta AG",
    "N4": "100% Solar",
    "N5": "100 Solar",
    "N6": "snake_case Ltd",
    "N7": "snakeXcase Ltd",
    "N8": "Wow! Inc",
    "N9": "Straße Bau",
}


@pytest.fixture
def named(fleet: PartnerFleet, two_partners: None) -> None:
    """LOC-1's customers with names that test search; LOC-2 has an Acme of its own."""
    for n, (customer_id, name) in enumerate(NAMED.items()):
        link_new_servers(fleet, customer_id, f"S{n}", to=LOC, name=name)
    link_new_servers(fleet, "X1", "X1", to=OTHER_LOC, name="Acme Elsewhere")


def searched(fleet: PartnerFleet, tx: Tx, term: str, view: str | None = None) -> list[str]:
    """The names Anna sees when searching for `term`."""
    return names(list_customers(tx, partner_of(fleet, ANNA.principal), view=view, search=term))


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("acme", ["ACME Corp", "Acme GmbH"]),
        ("ACME", ["ACME Corp", "Acme GmbH"]),
        ("me g", ["Acme GmbH"]),
        ("  cOrP ", ["ACME Corp"]),
        ("solar", ["100 Solar", "100% Solar"]),
        ("STRASSE", ["Straße Bau"]),
        ("straße", ["Straße Bau"]),
        ("nothing like it", []),
    ],
)
def test_r_fav_5_search_is_case_insensitive_and_partial(
    fleet: PartnerFleet, read: Reader, named: None, term: str, expected: list[str]
) -> None:
    with read() as tx:
        assert searched(fleet, tx, term) == expected


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("100%", ["100% Solar"]),
        ("%", ["100% Solar"]),
        ("0% s", ["100% Solar"]),
        ("e_c", ["snake_case Ltd"]),
        ("_", ["snake_case Ltd"]),
        ("wow!", ["Wow! Inc"]),
        ("!", ["Wow! Inc"]),
    ],
)
def test_r_fav_5_search_treats_percent_underscore_and_escape_characters_literally(
    fleet: PartnerFleet, read: Reader, named: None, term: str, expected: list[str]
) -> None:
    with read() as tx:
        assert searched(fleet, tx, term) == expected


def test_r_fav_5_search_applies_to_favourites_only_when_favourites_are_shown(
    fleet: PartnerFleet, read: Reader, named: None
) -> None:
    favourite(fleet, ANNA, "N1", "N3")

    with read() as tx:
        in_favourites = searched(fleet, tx, "acme", view="favorites_only")
        in_all = searched(fleet, tx, "acme", view="all_customers")

    assert in_favourites == ["Acme GmbH"]
    assert in_all == ["ACME Corp", "Acme GmbH"]


def test_r_fav_5_search_applies_to_the_users_default_view(
    fleet: PartnerFleet, read: Reader, named: None
) -> None:
    favourite(fleet, ANNA, "N2", "N4")
    fleet.choose_default_view(ANNA, "favorites_only")

    with read() as tx:
        assert searched(fleet, tx, "acme") == ["ACME Corp"]


@pytest.fixture
def connections(fleet: PartnerFleet, two_partners: None) -> None:
    """LOC-1: K1 and K2 with central-connect devices, D1 and D2 with direct-connect only."""
    for customer_id in ("K1", "K2"):
        host = NewDevice(
            serial=f"H{customer_id}", connection="direct_connect", is_hosting_device=True
        )
        hosted = NewDevice(
            serial=f"M{customer_id}", connection="central_connect", hosting_serial=host.serial
        )
        choice = PartnerChoice(location_id=LOC)
        fleet.register_devices(customer(customer_id), customer_id, [host, hosted], choice)
    for customer_id in ("D1", "D2"):
        link_new_servers(fleet, customer_id, f"S{customer_id}", to=LOC)


def test_r_fav_5_the_connection_filter_applies_to_the_set_being_shown(
    fleet: PartnerFleet, read: Reader, connections: None
) -> None:
    favourite(fleet, ANNA, "K2", "D1")

    def shown(view: str, connection: str) -> list[str]:
        page = list_customers(
            tx, partner_of(fleet, ANNA.principal), view=view, connection=connection
        )
        return [row.customer_id for row in page.rows]

    with read() as tx:
        assert shown("all_customers", "central_connect") == ["K1", "K2"]
        assert shown("favorites_only", "central_connect") == ["K2"]
        assert shown("all_customers", "direct_connect") == ["D1", "D2", "K1", "K2"]
        assert shown("favorites_only", "direct_connect") == ["D1", "K2"]
        assert shown("all_customers", "pc_agent") == []


def test_r_fav_5_an_unknown_connection_type_is_refused(
    fleet: PartnerFleet, read: Reader, connections: None
) -> None:
    with read() as tx, pytest.raises(QueryError, match="satellite"):
        list_customers(tx, partner_of(fleet, ANNA.principal), connection="satellite")


@pytest.fixture
def service_world(fleet: PartnerFleet) -> None:
    """Service partner LOC-S: E1 and E3 have a critical event, E2 a warning, E4 none."""
    new_partner(fleet, SERVICE_LOC, service=True)
    for n, severity in enumerate(["critical", "warning", "critical", None], start=1):
        link_new_servers(fleet, f"E{n}", f"SE{n}", to=SERVICE_LOC, role="service_partner")
        if severity is not None:
            fleet.record_service_event(OPS, f"SE{n}", f"EV{n}", severity, "Fan degraded")


def test_r_fav_5_the_critical_filter_applies_to_the_set_being_shown(
    fleet: PartnerFleet, read: Reader, service_world: None
) -> None:
    for customer_id in ("E1", "E2"):
        fleet.add_favourite(SAM, group_id(SERVICE_LOC, customer_id))

    def shown(view: str, has_critical: bool) -> list[str]:
        page = list_customers(
            tx, partner_of(fleet, SAM.principal), view=view, has_critical=has_critical
        )
        return [row.customer_id for row in page.rows]

    with read() as tx:
        assert shown("all_customers", True) == ["E1", "E3"]
        assert shown("favorites_only", True) == ["E1"]
        assert shown("all_customers", False) == ["E2", "E4"]
        assert shown("favorites_only", False) == ["E2"]


def test_r_fav_5_pages_of_a_filtered_set_hold_only_that_set(
    fleet: PartnerFleet, read: Reader
) -> None:
    new_partner(fleet, LOC)
    groups = many_customers(fleet, 23)
    favourites = groups[::2]
    for favourite_id in favourites:
        fleet.add_favourite(ANNA, UUID(favourite_id))

    with read() as tx:
        walked, sizes = walk(fleet, tx, ANNA.principal, 5, view="favorites_only")
        alphas, _ = walk(fleet, tx, ANNA.principal, 2, search="ALPH")

    assert walked == favourites
    assert sizes == [5, 5, 2]
    assert len(alphas) == 10  # "Alpha", "ALPHA" and "alpha" are 3 of every 7 names


# --- R-PAR-2: My Customers is for partner users only -------------------------------------


@pytest.mark.parametrize("principal", [CUSTOMER.principal, "nobody@example.com", OPS.principal])
def test_r_par_2_a_customer_or_unknown_principal_is_refused_my_customers(
    fleet: PartnerFleet, customers: None, principal: str
) -> None:
    """R-PAR-2: a principal the store does not know as a user of the partner gets no
    partner scope, so no My Customers query can be asked for it."""
    claims = Claims(principal, Role.PARTNER_USER.value, LOC)

    with pytest.raises(AuthenticationError, match="not a user registered under"):
        authenticate(fleet, claims)


def test_r_par_2_a_customer_admin_gets_no_partner_scope(customers: None) -> None:
    """R-PAR-2: customers never see My Customers: their role may not read partner data."""
    with pytest.raises(ForbiddenError, match="customer_admin may not"):
        partner_scope(customer_actor("C1"), LOC)


def test_r_par_2_every_user_of_the_partner_is_recognised(
    fleet: PartnerFleet, read: Reader, customers: None
) -> None:
    with read() as tx:
        anna = partner_user(tx, partner_of(fleet, ANNA.principal))
        ben = partner_user(tx, partner_of(fleet, BEN.principal))

    assert (anna.partner, anna.partner_type, anna.favourites) == (LOC, "reseller", 0)
    assert (ben.partner, ben.partner_type) == (LOC, "reseller")


# --- R-LNK-5, R-LNK-6: groups appear with the first link; devices leave at once ----------


def test_r_lnk_5_the_first_link_for_a_customer_creates_the_partners_group_row(
    fleet: PartnerFleet, read: Reader, two_partners: None
) -> None:
    fleet.register_devices(CUSTOMER, "C1", servers("S1", "S2"))
    with read() as tx:
        before = list_customers(tx, partner_of(fleet, ANNA.principal))

    fleet.link_devices(CUSTOMER, "C1", ["S1"], PartnerChoice(location_id=LOC), "Customer One")
    with read() as tx:
        first = list_customers(tx, partner_of(fleet, ANNA.principal))
    fleet.link_devices(CUSTOMER, "C1", ["S2"], PartnerChoice(location_id=LOC))
    with read() as tx:
        second = list_customers(tx, partner_of(fleet, ANNA.principal))

    assert before.rows == []
    assert [(r.group_id, r.name, r.devices["direct_connect"]) for r in first.rows] == [
        (group_of(LOC, "C1"), "Customer One", 1)
    ]
    assert [(r.name, r.devices["direct_connect"]) for r in second.rows] == [("Customer One", 2)]


def test_r_lnk_5_a_group_created_without_a_name_is_listed_under_the_customer_id(
    fleet: PartnerFleet, read: Reader, two_partners: None
) -> None:
    link_new_servers(fleet, "C7", "S1", to=LOC)

    with read() as tx:
        assert names(list_customers(tx, partner_of(fleet, ANNA.principal))) == ["C7"]


def test_r_lnk_6_after_a_relink_the_old_partner_loses_the_device_from_dashboard_and_counts(
    fleet: PartnerFleet, read: Reader, customers: None
) -> None:
    with read() as tx:
        assert serials_in(fleet, tx, ANNA, LOC, "C1") == ["S1", "S2", "S3"]

    fleet.link_devices(CUSTOMER, "C1", ["S1"], PartnerChoice(location_id=OTHER_LOC))

    with read() as tx:
        old_row = row_of(list_customers(tx, partner_of(fleet, ANNA.principal)), "C1")
        new_row = row_of(list_customers(tx, partner_of(fleet, admin(OTHER_LOC).principal)), "C1")
        old_devices = serials_in(fleet, tx, ANNA, LOC, "C1")
        new_devices = serials_in(fleet, tx, admin(OTHER_LOC), OTHER_LOC, "C1")
    assert (old_row.devices["direct_connect"], old_devices) == (2, ["S2", "S3"])
    assert (new_row.devices["direct_connect"], new_devices) == (1, ["S1"])


def test_r_lnk_6_after_an_unlink_the_old_partner_loses_the_device_from_dashboard_and_counts(
    fleet: PartnerFleet, read: Reader, customers: None
) -> None:
    with read() as tx:
        assert (
            row_of(list_customers(tx, partner_of(fleet, ANNA.principal)), "C1").devices[
                "direct_connect"
            ]
            == 3
        )

    fleet.unlink_devices(CUSTOMER, "C1", ["S2", "S3"])

    with read() as tx:
        row = row_of(list_customers(tx, partner_of(fleet, ANNA.principal)), "C1")
        devices = serials_in(fleet, tx, ANNA, LOC, "C1")
    assert (row.devices["direct_connect"], devices) == (1, ["S1"])


def test_r_lnk_6_a_group_whose_devices_are_all_unlinked_stays_listed_with_no_devices(
    fleet: PartnerFleet, read: Reader, customers: None
) -> None:
    fleet.unlink_devices(customer("C2"), "C2", ["S4"])

    with read() as tx:
        row = row_of(list_customers(tx, partner_of(fleet, ANNA.principal)), "C2")
        devices = serials_in(fleet, tx, ANNA, LOC, "C2")

    assert row.devices == {"central_connect": 0, "direct_connect": 0, "pc_agent": 0}
    assert devices == []


# --- R-GRP-2: deleted groups are gone from the views -------------------------------------


def test_r_grp_2_a_deleted_customer_group_is_neither_listed_nor_opened(
    fleet: PartnerFleet, read: Reader, customers: None
) -> None:
    fleet.unlink_devices(customer("C2"), "C2", ["S4"])
    fleet.delete_customer_group(ANNA, group_id(LOC, "C2"))

    with read() as tx:
        listed = names(list_customers(tx, partner_of(fleet, ANNA.principal)))
        with pytest.raises(NotFoundError):
            customer_dashboard(tx, partner_of(fleet, ANNA.principal), group_of(LOC, "C2"))

    assert listed == ["Customer One"]


def test_r_lnk_5_a_deleted_group_is_listed_again_when_the_customer_links_a_device_again(
    fleet: PartnerFleet, read: Reader, customers: None
) -> None:
    fleet.unlink_devices(customer("C2"), "C2", ["S4"])
    fleet.delete_customer_group(ANNA, group_id(LOC, "C2"))
    with read() as tx:
        assert names(list_customers(tx, partner_of(fleet, ANNA.principal))) == ["Customer One"]

    fleet.link_devices(customer("C2"), "C2", ["S4"], PartnerChoice(location_id=LOC))

    with read() as tx:
        assert names(list_customers(tx, partner_of(fleet, ANNA.principal))) == [
            "Customer One",
            "Customer Two",
        ]
        assert serials_in(fleet, tx, ANNA, LOC, "C2") == ["S4"]


# --- R-GRP-1, R-GRP-3: child groups and admins on the dashboard --------------------------


@pytest.fixture
def two_admins(fleet: PartnerFleet, customers: None) -> None:
    """Anna makes Ben an admin of LOC-1's group for C1."""
    fleet.add_group_admin(ANNA, group_id(LOC, "C1"), BEN.principal)


def test_r_grp_1_an_unshared_child_group_is_visible_only_to_its_creator(
    fleet: PartnerFleet, read: Reader, two_admins: None
) -> None:
    fleet.create_child_group(BEN, group_id(LOC, "C1"), "g1", "Ben's racks")

    with read() as tx:
        dashboard = customer_dashboard(tx, partner_of(fleet, BEN.principal), group_of(LOC, "C1"))
        annas = children_seen(fleet, tx, ANNA, "C1")

    assert dashboard.child_groups == [
        {"child_id": "g1", "name": "Ben's racks", "created_by": BEN.principal}
    ]
    assert annas == []


def test_r_grp_1_a_shared_child_group_is_visible_to_the_admin_it_was_shared_with(
    fleet: PartnerFleet, read: Reader, two_admins: None
) -> None:
    gid = group_id(LOC, "C1")
    fleet.create_child_group(BEN, gid, "g1", "Ben's racks")
    fleet.create_child_group(BEN, gid, "g2", "Ben's private racks")
    fleet.share_child_group(BEN, gid, "g1", ANNA.principal)

    with read() as tx:
        annas = children_seen(fleet, tx, ANNA, "C1")
        bens = children_seen(fleet, tx, BEN, "C1")

    assert annas == ["g1"]
    assert bens == ["g2", "g1"]  # by name: "Ben's private racks" < "Ben's racks"


def test_r_grp_1_child_groups_the_customer_created_are_invisible_to_every_partner_user(
    fleet: PartnerFleet, read: Reader, two_admins: None
) -> None:
    gid = group_id(LOC, "C1")
    fleet.create_customer_child_group(CUSTOMER, "C1", gid, "k1", "Customer's own")
    fleet.create_child_group(ANNA, gid, "g1", "Anna's racks")

    with read() as tx:
        annas = children_seen(fleet, tx, ANNA, "C1")
        bens = children_seen(fleet, tx, BEN, "C1")

    assert annas == ["g1"]
    assert bens == []


def test_r_grp_1_a_deleted_child_group_is_no_longer_shown(
    fleet: PartnerFleet, read: Reader, two_admins: None
) -> None:
    gid = group_id(LOC, "C1")
    fleet.create_child_group(ANNA, gid, "g1", "Anna's racks")
    with read() as tx:
        assert children_seen(fleet, tx, ANNA, "C1") == ["g1"]

    fleet.delete_child_group(ANNA, gid, "g1")

    with read() as tx:
        assert children_seen(fleet, tx, ANNA, "C1") == []


def test_r_grp_3_the_dashboard_lists_the_admins_of_the_customer_group(
    fleet: PartnerFleet, read: Reader, customers: None
) -> None:
    with read() as tx:
        before = customer_dashboard(
            tx, partner_of(fleet, ANNA.principal), group_of(LOC, "C1")
        ).admins

    fleet.add_group_admin(ANNA, group_id(LOC, "C1"), BEN.principal)

    with read() as tx:
        after = customer_dashboard(
            tx, partner_of(fleet, ANNA.principal), group_of(LOC, "C1")
        ).admins
        other_group = customer_dashboard(
            tx, partner_of(fleet, ANNA.principal), group_of(LOC, "C2")
        ).admins
    assert before == [ANNA.principal]
    assert after == [ANNA.principal, BEN.principal]
    assert other_group == [ANNA.principal]


def test_r_grp_3_a_partner_user_who_is_not_an_admin_of_the_group_does_not_see_its_admins(
    fleet: PartnerFleet, read: Reader, customers: None
) -> None:
    """R-GRP-3: the admins of a customer group are visible to its admins only."""
    with read() as tx:
        dashboard = customer_dashboard(tx, partner_of(fleet, BEN.principal), group_of(LOC, "C1"))
    assert dashboard.admins is None
    assert dashboard.name


# --- R-SVC-1, R-SVC-2: service-event counts on All Customers -----------------------------


def test_r_svc_1_a_service_partner_counts_events_only_of_devices_linked_to_it_as_such(
    fleet: PartnerFleet, read: Reader
) -> None:
    new_partner(fleet, SERVICE_LOC, service=True)
    link_new_servers(fleet, "C1", "S1", to=SERVICE_LOC, role="service_partner")
    fleet.link_devices(CUSTOMER, "C1", ["S1"], PartnerChoice(location_id=SERVICE_LOC))
    link_new_servers(fleet, "C1", "S2", to=SERVICE_LOC)  # as reseller only
    fleet.record_service_event(OPS, "S1", "EV1", "critical", "Disk failed")
    fleet.record_service_event(OPS, "S1", "EV2", "warning", "Fan degraded")
    fleet.record_service_event(OPS, "S2", "EV3", "critical", "PSU failed")

    with read() as tx:
        row = row_of(list_customers(tx, partner_of(fleet, SAM.principal)), "C1")

    assert (row.service_events, row.critical_events) == (2, 1)
    assert row.devices["direct_connect"] == 2


def test_r_svc_1_a_reseller_sees_no_service_event_counts(
    fleet: PartnerFleet, read: Reader, customers: None
) -> None:
    fleet.record_service_event(OPS, "S1", "EV1", "critical", "Disk failed")

    with read() as tx:
        page = list_customers(tx, partner_of(fleet, ANNA.principal))

    assert [(r.service_events, r.critical_events) for r in page.rows] == [(None, None)] * 2


def test_r_svc_2_critical_events_are_counted_separately_per_customer_group(
    fleet: PartnerFleet, read: Reader
) -> None:
    new_partner(fleet, SERVICE_LOC, service=True)
    link_new_servers(fleet, "C1", "S1", "S2", to=SERVICE_LOC, role="service_partner")
    link_new_servers(fleet, "C2", "S3", to=SERVICE_LOC, role="service_partner")
    for serial, event_id, severity in [
        ("S1", "EV1", "critical"),
        ("S2", "EV2", "critical"),
        ("S2", "EV3", "info"),
        ("S3", "EV4", "warning"),
    ]:
        fleet.record_service_event(OPS, serial, event_id, severity, "Reported by Insight RS")

    with read() as tx:
        page = list_customers(tx, partner_of(fleet, SAM.principal))

    assert [(r.customer_id, r.service_events, r.critical_events) for r in page.rows] == [
        ("C1", 3, 2),
        ("C2", 1, 0),
    ]


def test_r_svc_1_event_counts_follow_new_events_and_the_service_partner_link(
    fleet: PartnerFleet, read: Reader
) -> None:
    new_partner(fleet, SERVICE_LOC, service=True)
    link_new_servers(fleet, "C1", "S1", "S2", to=SERVICE_LOC, role="service_partner")
    fleet.record_service_event(OPS, "S1", "EV1", "critical", "Disk failed")

    def counts() -> tuple[int | None, int | None]:
        with read() as tx:
            row = row_of(list_customers(tx, partner_of(fleet, SAM.principal)), "C1")
        return row.service_events, row.critical_events

    assert counts() == (1, 1)
    fleet.record_service_event(OPS, "S2", "EV2", "critical", "PSU failed")
    assert counts() == (2, 2)
    fleet.unlink_devices(CUSTOMER, "C1", ["S1"], role="service_partner")
    assert counts() == (1, 1)
    fleet.unlink_devices(CUSTOMER, "C1", ["S2"], role="service_partner")
    assert counts() == (0, 0)
    fleet.link_devices(
        CUSTOMER, "C1", ["S1"], PartnerChoice(location_id=SERVICE_LOC, role="service_partner")
    )
    assert counts() == (1, 1)


def test_r_svc_1_a_reseller_accredited_later_as_service_partner_gets_event_counts(
    fleet: PartnerFleet, read: Reader, customers: None
) -> None:
    fleet.record_service_event(OPS, "S1", "EV1", "critical", "Disk failed")
    with read() as tx:
        as_reseller = row_of(list_customers(tx, partner_of(fleet, ANNA.principal)), "C1")

    fleet.accredit_service_partner(OPS, LOC, "CSDP-1")
    with read() as tx:
        accredited = row_of(list_customers(tx, partner_of(fleet, ANNA.principal)), "C1")
    choice = PartnerChoice(location_id=LOC, role="service_partner")
    fleet.link_devices(CUSTOMER, "C1", ["S1"], choice)
    with read() as tx:
        servicing = row_of(list_customers(tx, partner_of(fleet, ANNA.principal)), "C1")

    assert (as_reseller.service_events, as_reseller.critical_events) == (None, None)
    assert (accredited.service_events, accredited.critical_events) == (0, 0)
    assert (servicing.service_events, servicing.critical_events) == (1, 1)
