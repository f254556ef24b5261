"""The customers view and groups deleted before deletions removed favourites (R-FAV-3)."""

from __future__ import annotations

from handlers import PartnerFleet
from projections.customer_queries import list_customers, partner_user
from tests.scopes import partner_of
from tests.unit.views_support import (
    CUSTOMER,
    LOC,
    Reader,
    admin,
    db,
    fleet,
    group_id,
    link_new_servers,
    new_partner,
    read,
    runner,
)

__all__ = ["db", "fleet", "read", "runner"]

ANNA = admin(LOC)


def test_r_fav_3_a_star_on_a_group_deleted_the_old_way_neither_counts_nor_keeps_favorites_only(
    fleet: PartnerFleet, read: Reader
) -> None:
    """Histories from before this release: the Passport kept the star of a deleted group."""
    new_partner(fleet, LOC)
    link_new_servers(fleet, "C1", "S1", to=LOC, name="Customer One")
    link_new_servers(fleet, "C2", "S2", to=LOC, name="Customer Two")
    fleet.add_favourite(ANNA, group_id(LOC, "C1"))
    fleet.choose_default_view(ANNA, "favorites_only")
    fleet.unlink_devices(CUSTOMER, "C1", ["S1"])
    group = fleet.customer_group(group_id(LOC, "C1"))
    group.delete(ANNA)  # as the code before this release did: no FavoriteRemoved
    fleet.save(group)

    with read() as tx:
        user = partner_user(tx, partner_of(fleet, ANNA.principal))
        page = list_customers(tx, partner_of(fleet, ANNA.principal))

    assert fleet.passport(ANNA.principal).favourites == [group.id]
    assert (user.favourites, user.default_view) == (0, "favorites_only")
    assert (page.view, page.favorites_only_available) == ("all_customers", False)
    assert [r.name for r in page.rows] == ["Customer Two"]
