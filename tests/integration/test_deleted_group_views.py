"""The customers view after a group is deleted and re-opened, on PostgreSQL and SQLite.

R-GRP-2, R-FAV-2, R-FAV-3, R-LNK-5: live and rebuilt from the history, the view agrees with
the aggregates: the deleted group is nobody's favourite, Favorites Only falls back, and the
re-opened group shows nothing of the deleted one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from domain import CustomerGroup
from handlers import PartnerFleet
from handlers.devices import PartnerChoice
from infra.bootstrap import build_fleet, build_view_runner
from infra.follow.view_runner import ViewRunner
from infra.settings import Settings
from projections.customer_queries import (
    QueryError,
    customer_dashboard,
    list_customers,
    partner_user,
)
from tests.actors import customer, known_partner_user
from tests.scenarios import CUSTOMER, partner, servers
from tests.scopes import partner_of
from tests.views import assert_rebuild_equals_live

ANNA = known_partner_user("LOC-1", "anna@LOC-1", admin=True, correlation_id="c-anna")
BEN = known_partner_user("LOC-1", "ben@LOC-1", admin=False, correlation_id="c-ben")
G1, G2 = CustomerGroup.id_for("LOC-1", "C1"), CustomerGroup.id_for("LOC-1", "C2")
LOC_1 = PartnerChoice(location_id="LOC-1")


@pytest.fixture
def world(stored_settings: Settings, tmp_path: Path) -> Iterator[tuple[PartnerFleet, ViewRunner]]:
    """A fleet and its views on this backend (views in the schema, or in a SQLite file)."""
    settings = stored_settings.model_copy(update={"views_sqlite_path": tmp_path / "views.db"})
    fleet = build_fleet(settings)
    runner = build_view_runner(settings, fleet)
    runner.batch_size = 4  # deletion and its unstarring may straddle batches
    yield fleet, runner
    runner.db.close()
    fleet.close()


def given_input(fleet: PartnerFleet) -> None:
    """Anna and Ben star C1's group (Ben also C2's), both choose Favorites Only; C1 deleted."""
    partner(fleet, "LOC-1")
    fleet.register_devices(CUSTOMER, "C1", servers("S1"), LOC_1, customer_name="Customer One")
    fleet.register_devices(customer("C2"), "C2", servers("S2"), LOC_1, customer_name="Customer Two")
    fleet.add_group_admin(ANNA, G1, BEN.principal)
    fleet.create_customer_child_group(CUSTOMER, "C1", G1, "lab", "Lab")
    for who, groups in ((ANNA, [G1]), (BEN, [G1, G2])):
        for group in groups:
            fleet.add_favourite(who, group)
        fleet.choose_default_view(who, "favorites_only")
    fleet.unlink_devices(CUSTOMER, "C1", ["S1"])
    fleet.delete_customer_group(ANNA, G1)


def assert_deleted_is_nobodys_favourite(runner: ViewRunner) -> None:
    """R-FAV-2, R-FAV-3: Anna falls back to All Customers; Ben keeps Favorites Only with C2."""
    with runner.db.transaction() as tx:
        anna, ben = (
            partner_user(tx, partner_of(runner.fleet, ANNA.principal)),
            partner_user(tx, partner_of(runner.fleet, BEN.principal)),
        )
        annas, bens = (
            list_customers(tx, partner_of(runner.fleet, ANNA.principal)),
            list_customers(tx, partner_of(runner.fleet, BEN.principal)),
        )
        with pytest.raises(QueryError, match="at least one favourite"):
            list_customers(tx, partner_of(runner.fleet, ANNA.principal), view="favorites_only")
        stars = tx.query("SELECT count(*) FROM pf_c_favourites WHERE group_id = ?", (str(G1),))
    assert (anna.favourites, anna.default_view) == (0, "all_customers")
    assert (annas.view, annas.favorites_only_available) == ("all_customers", False)
    assert [(r.name, r.favourite) for r in annas.rows] == [("Customer Two", False)]
    assert (ben.favourites, ben.default_view, bens.view) == (1, "favorites_only", "favorites_only")
    assert [r.name for r in bens.rows] == ["Customer Two"]
    assert stars == [(0,)]


def test_r_grp_2_r_fav_3_given_input_the_view_unstars_the_deleted_group_live_and_rebuilt(
    world: tuple[PartnerFleet, ViewRunner],
) -> None:
    fleet, runner = world
    given_input(fleet)

    runner.catch_up()
    assert_deleted_is_nobodys_favourite(runner)
    assert_rebuild_equals_live(runner)

    assert_deleted_is_nobodys_favourite(runner)


def assert_reopened_clean(runner: ViewRunner) -> None:
    """R-LNK-5: the re-opened group is listed under its new name, with nothing of the old one."""
    with runner.db.transaction() as tx:
        annas = list_customers(tx, partner_of(runner.fleet, ANNA.principal))
        dashboard = customer_dashboard(tx, partner_of(runner.fleet, ANNA.principal), str(G1))
        children = tx.query("SELECT child_id FROM pf_c_children WHERE group_id = ?", (str(G1),))
        flags = tx.query(
            "SELECT is_dashboard, notifications FROM pf_c_groups WHERE group_id = ?", (str(G1),)
        )
    assert [(r.name, r.favourite) for r in annas.rows] == [
        ("C One AG", False),
        ("Customer Two", False),
    ]
    assert (dashboard.name, dashboard.admins, dashboard.child_groups) == (
        "C One AG",
        [ANNA.principal],
        [],
    )
    assert [d.serial for d in dashboard.devices] == ["S1"]
    assert (children, flags) == ([], [(0, 0)])


def test_r_lnk_5_a_reopened_group_shows_nothing_of_the_deleted_one_live_and_rebuilt(
    world: tuple[PartnerFleet, ViewRunner],
) -> None:
    fleet, runner = world
    given_input(fleet)
    runner.catch_up()

    fleet.link_devices(CUSTOMER, "C1", ["S1"], LOC_1, customer_name="C One AG")

    runner.catch_up()
    assert_reopened_clean(runner)
    assert_rebuild_equals_live(runner)
    assert_reopened_clean(runner)
