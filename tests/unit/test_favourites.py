"""Favourites and the remembered default view: R-FAV-2 to R-FAV-4."""

from __future__ import annotations

from uuid import UUID

import pytest

from domain import CustomerGroup, NotFoundError, Passport
from domain.passport import FavouriteError
from handlers import PartnerFleet
from handlers.access import Actor, ForbiddenError
from tests.actors import customer
from tests.unit.conftest import (
    ANNA,
    BEN,
    CUSTOMER,
    OTTO,
    event_count,
    events_of,
    events_since,
    names,
    of_type,
    refused,
    servers,
    to,
)


@pytest.fixture
def groups(app: PartnerFleet, partner: str) -> list[UUID]:
    """26 customers, each with one server linked to LOC-1: 26 customer groups of LOC-1."""
    for n in range(26):
        admin = customer(f"C{n}", f"admin@c{n}.example", f"corr-c{n}")
        app.register_devices(admin, f"C{n}", servers(f"S{n}"), to(partner))
    return [CustomerGroup.id_for(partner, f"C{n}") for n in range(26)]


def favourites_of(app: PartnerFleet, actor: Actor) -> list[UUID]:
    """The actor's favourites as recorded now."""
    return app.passport(actor.principal).favourites


# --- R-FAV-2: mark and unmark favourites, at most 25 per user ----------------------------


def test_r_fav_2_a_partner_user_marks_a_customer_group_as_favourite(
    app: PartnerFleet, groups: list[UUID]
) -> None:
    position = event_count(app)

    app.add_favourite(BEN, groups[0])

    added = of_type(events_since(app, position), Passport.FavoriteAdded)
    assert [(e.originator_id, e.customer_group_id) for e in added] == [
        (Passport.id_for(BEN.principal), groups[0])
    ]
    assert favourites_of(app, BEN) == [groups[0]]


def test_r_fav_2_a_partner_user_unmarks_a_favourite(app: PartnerFleet, groups: list[UUID]) -> None:
    app.add_favourite(BEN, groups[0])
    app.add_favourite(BEN, groups[1])
    position = event_count(app)

    app.remove_favourite(BEN, groups[0])

    removed = of_type(events_since(app, position), Passport.FavoriteRemoved)
    assert [e.customer_group_id for e in removed] == [groups[0]]
    assert favourites_of(app, BEN) == [groups[1]]


def test_r_fav_2_a_user_may_have_25_favourites(app: PartnerFleet, groups: list[UUID]) -> None:
    for group_id in groups[:25]:
        app.add_favourite(ANNA, group_id)

    assert favourites_of(app, ANNA) == groups[:25]


def test_r_fav_2_the_26th_favourite_is_refused_with_a_clear_error(
    app: PartnerFleet, groups: list[UUID]
) -> None:
    for group_id in groups[:25]:
        app.add_favourite(ANNA, group_id)

    with refused(app, FavouriteError, "already have 25 favourites, the most allowed; remove one"):
        app.add_favourite(ANNA, groups[25])

    assert len(favourites_of(app, ANNA)) == 25


def test_r_fav_2_after_removing_one_of_25_favourites_another_can_be_added(
    app: PartnerFleet, groups: list[UUID]
) -> None:
    for group_id in groups[:25]:
        app.add_favourite(ANNA, group_id)
    app.remove_favourite(ANNA, groups[0])

    app.add_favourite(ANNA, groups[25])

    assert favourites_of(app, ANNA) == [*groups[1:25], groups[25]]


def test_r_fav_2_the_limit_of_25_counts_per_user(app: PartnerFleet, groups: list[UUID]) -> None:
    for group_id in groups[:25]:
        app.add_favourite(ANNA, group_id)

    app.add_favourite(BEN, groups[25])

    assert favourites_of(app, BEN) == [groups[25]]


def test_r_fav_2_marking_a_favourite_twice_is_refused(
    app: PartnerFleet, groups: list[UUID]
) -> None:
    app.add_favourite(BEN, groups[0])

    with refused(app, FavouriteError, "already one of your favourites"):
        app.add_favourite(BEN, groups[0])


def test_r_fav_2_unmarking_a_group_that_is_no_favourite_is_refused(
    app: PartnerFleet, groups: list[UUID]
) -> None:
    with refused(app, FavouriteError, "not one of your favourites"):
        app.remove_favourite(BEN, groups[0])


def test_r_fav_2_a_user_of_another_partner_cannot_mark_the_group(
    app: PartnerFleet, groups: list[UUID], other_partner: str
) -> None:
    with refused(app, NotFoundError, "No customer group"):
        app.add_favourite(OTTO, groups[0])


def test_r_fav_2_a_customer_cannot_mark_favourites(app: PartnerFleet, groups: list[UUID]) -> None:
    """R-PAR-2: only principals recognised as partner users act in My Customers (issue 9:
    a role that may never do it is forbidden, whatever the group)."""
    with refused(app, ForbiddenError, "customer_admin may not add favourite"):
        app.add_favourite(CUSTOMER, groups[0])


def test_r_fav_2_marking_an_unknown_group_is_refused(app: PartnerFleet, partner: str) -> None:
    unknown = CustomerGroup.id_for(partner, "C-NONE")

    with refused(app, NotFoundError, f"No customer group {unknown}"):
        app.add_favourite(BEN, unknown)


# --- R-FAV-3: Favorites Only needs a favourite; the last removal falls back --------------


def test_r_fav_3_favorites_only_is_unavailable_without_favourites(
    app: PartnerFleet, groups: list[UUID]
) -> None:
    assert not app.passport(BEN.principal).favorites_only_available

    with refused(app, FavouriteError, "available once you have at least one favourite"):
        app.choose_default_view(BEN, "favorites_only")


def test_r_fav_3_favorites_only_becomes_available_with_the_first_favourite(
    app: PartnerFleet, groups: list[UUID]
) -> None:
    app.add_favourite(BEN, groups[0])

    app.choose_default_view(BEN, "favorites_only")

    passport = app.passport(BEN.principal)
    assert passport.favorites_only_available
    assert passport.default_view == "favorites_only"


def test_r_fav_3_removing_the_last_favourite_falls_back_to_all_customers(
    app: PartnerFleet, groups: list[UUID]
) -> None:
    app.add_favourite(BEN, groups[0])
    app.choose_default_view(BEN, "favorites_only")
    position = event_count(app)

    app.remove_favourite(BEN, groups[0])

    events = events_since(app, position)
    assert names(events) == [
        "Passport.FavoriteRemoved",
        "Passport.DefaultViewChanged",
        "CustomerGroup.FavoriteUnmarked",
    ]
    assert of_type(events, Passport.DefaultViewChanged)[0].view == "all_customers"
    passport = app.passport(BEN.principal)
    assert (passport.default_view, passport.favorites_only_available) == ("all_customers", False)


def test_r_fav_3_removing_a_favourite_while_others_remain_keeps_favorites_only(
    app: PartnerFleet, groups: list[UUID]
) -> None:
    app.add_favourite(BEN, groups[0])
    app.add_favourite(BEN, groups[1])
    app.choose_default_view(BEN, "favorites_only")
    position = event_count(app)

    app.remove_favourite(BEN, groups[0])

    assert names(events_since(app, position)) == [
        "Passport.FavoriteRemoved",
        "CustomerGroup.FavoriteUnmarked",
    ]
    assert app.passport(BEN.principal).default_view == "favorites_only"


# --- R-FAV-4: the chosen view is remembered per user; All Customers at first -------------


def test_r_fav_4_the_default_view_is_all_customers_at_first(
    app: PartnerFleet, partner: str
) -> None:
    assert app.passport(BEN.principal).default_view == "all_customers"
    assert "Passport.DefaultViewChanged" not in names(
        events_of(app, Passport.id_for(BEN.principal))
    )


def test_r_fav_4_the_chosen_view_is_remembered_as_the_users_default(
    app: PartnerFleet, groups: list[UUID]
) -> None:
    app.add_favourite(BEN, groups[0])
    position = event_count(app)

    app.choose_default_view(BEN, "favorites_only")

    changed = of_type(events_since(app, position), Passport.DefaultViewChanged)
    assert [(e.originator_id, e.view) for e in changed] == [
        (Passport.id_for(BEN.principal), "favorites_only")
    ]
    assert app.passport(BEN.principal).default_view == "favorites_only"


def test_r_fav_4_the_default_is_remembered_until_changed_back(
    app: PartnerFleet, groups: list[UUID]
) -> None:
    app.add_favourite(BEN, groups[0])
    app.choose_default_view(BEN, "favorites_only")

    app.choose_default_view(BEN, "all_customers")

    passport = app.passport(BEN.principal)
    assert passport.default_view == "all_customers"
    assert passport.favourites == [groups[0]]


def test_r_fav_4_each_user_has_a_default_view_of_their_own(
    app: PartnerFleet, groups: list[UUID]
) -> None:
    app.add_favourite(BEN, groups[0])
    app.add_favourite(ANNA, groups[0])

    app.choose_default_view(BEN, "favorites_only")

    assert app.passport(BEN.principal).default_view == "favorites_only"
    assert app.passport(ANNA.principal).default_view == "all_customers"


def test_r_fav_4_choosing_the_current_default_again_records_nothing(
    app: PartnerFleet, groups: list[UUID]
) -> None:
    position = event_count(app)

    app.choose_default_view(BEN, "all_customers")

    assert event_count(app) == position


def test_r_fav_4_an_unknown_view_is_refused_naming_the_views(
    app: PartnerFleet, partner: str
) -> None:
    with refused(app, FavouriteError, "choose one of all_customers, favorites_only"):
        app.choose_default_view(BEN, "recent_customers")


def test_r_fav_4_a_customer_has_no_partner_view_to_choose(
    app: PartnerFleet, groups: list[UUID]
) -> None:
    with refused(app, ForbiddenError, "customer_admin may not choose default view"):
        app.choose_default_view(CUSTOMER, "all_customers")
