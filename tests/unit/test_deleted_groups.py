"""A deleted customer group refuses what no longer applies, and what pointed at it follows.

R-GRP-2 (deletion), R-FAV-2 / R-FAV-3 (favourites and the fallback of Favorites Only),
R-LNK-5 (a new link re-opens the group, clean), R-HLD-3 (deleted customer dashboards).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from uuid import UUID

import pytest
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import StoredEvent

from domain import CustomerGroup, NotAllowedError, NotFoundError, Passport
from domain.customer_group import PLACED, CustomerGroupError
from domain.group_support import GroupDeletedError
from domain.passport import MAX_FAVOURITES, FavouriteError
from handlers import PartnerFleet
from handlers.access import Actor
from handlers.base import Working
from tests.actors import customer, feed
from tests.unit.conftest import (
    ANNA,
    BEN,
    CUSTOMER,
    CUSTOMER_ID,
    LOC,
    OTTO,
    e2open_report,
    event_count,
    events_of,
    events_since,
    names,
    of_type,
    refused,
    servers,
    to,
)

DELETED = "this customer group was deleted"
CPIN = "4711-C1"


@pytest.fixture
def group(app: PartnerFleet, linked_group: UUID) -> UUID:
    """LOC-1's group for C1: S1 and S2 linked, Ben an extra admin, a customer subgroup."""
    app.add_group_admin(ANNA, linked_group, BEN.principal)
    app.create_customer_child_group(CUSTOMER, CUSTOMER_ID, linked_group, "lab", "Lab")
    return linked_group


@pytest.fixture
def deleted(app: PartnerFleet, group: UUID) -> UUID:
    """The same group, emptied by the customer and deleted by Anna."""
    app.unlink_devices(CUSTOMER, CUSTOMER_ID, ["S1", "S2"])
    app.delete_customer_group(ANNA, group)
    return group


def other_groups(app: PartnerFleet, count: int) -> list[UUID]:
    """`count` more customers, each with one server linked to LOC-1; their groups."""
    for n in range(count):
        admin = customer(f"O{n}", f"admin@o{n}.example", f"corr-o{n}")
        app.register_devices(admin, f"O{n}", servers(f"O{n}"), to(LOC))
    return [CustomerGroup.id_for(LOC, f"O{n}") for n in range(count)]


# --- the given input ------------------------------------------------------------------------


def test_r_grp_2_r_fav_3_given_input_deleted_group_is_nobodys_favourite_and_refuses_stars(
    app: PartnerFleet, group: UUID
) -> None:
    """Anna stars G, chooses Favorites Only; the customer unlinks all; Anna deletes G."""
    app.add_favourite(ANNA, group)
    app.choose_default_view(ANNA, "favorites_only")
    app.unlink_devices(CUSTOMER, CUSTOMER_ID, ["S1", "S2"])
    position = event_count(app)

    app.delete_customer_group(ANNA, group)

    assert names(events_since(app, position)) == [
        "CustomerGroup.Deleted",
        "Passport.FavoriteRemoved",
        "Passport.DefaultViewChanged",
    ]
    passport = app.passport(ANNA.principal)
    assert (passport.favourites, passport.default_view) == ([], "all_customers")
    assert not passport.favorites_only_available
    assert app.customer_group(group).favourite_of == []
    with refused(app, GroupDeletedError, DELETED):
        app.add_favourite(ANNA, group)
    with refused(app, GroupDeletedError, DELETED):
        app.create_child_group(ANNA, group, "racks", "Rack servers")


# --- R-FAV-2, R-FAV-3: what pointed at the group follows its deletion -------------------------


def test_r_fav_2_deleting_a_group_removes_it_from_every_users_favourites_in_one_transaction(
    app: PartnerFleet, group: UUID
) -> None:
    [kept] = other_groups(app, 1)
    app.add_favourite(ANNA, group)
    app.add_favourite(BEN, group)
    app.add_favourite(BEN, kept)
    app.choose_default_view(BEN, "favorites_only")
    app.unlink_devices(CUSTOMER, CUSTOMER_ID, ["S1", "S2"])
    position = event_count(app)

    app.delete_customer_group(ANNA, group)

    removed = of_type(events_since(app, position), Passport.FavoriteRemoved)
    assert {(e.originator_id, e.customer_group_id, e.principal) for e in removed} == {
        (Passport.id_for(ANNA.principal), group, ANNA.principal),
        (Passport.id_for(BEN.principal), group, ANNA.principal),
    }
    assert {e.correlation_id for e in events_since(app, position)} == {ANNA.correlation_id}
    assert app.passport(BEN.principal).favourites == [kept]
    assert app.passport(BEN.principal).default_view == "favorites_only"


def test_r_fav_2_a_deleted_favourite_frees_its_slot_of_the_25(
    app: PartnerFleet, group: UUID
) -> None:
    others = other_groups(app, MAX_FAVOURITES)
    for group_id in [group, *others[:-1]]:
        app.add_favourite(ANNA, group_id)
    app.unlink_devices(CUSTOMER, CUSTOMER_ID, ["S1", "S2"])
    app.delete_customer_group(ANNA, group)

    app.add_favourite(ANNA, others[-1])

    assert app.passport(ANNA.principal).favourites == others


def test_r_fav_2_a_favourite_racing_the_deletion_conflicts_and_is_then_refused(
    app: PartnerFleet, group: UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deletion commits after add_favourite loaded the group: the star must not survive."""
    import handlers.customers as commands

    app.unlink_devices(CUSTOMER, CUSTOMER_ID, ["S1", "S2"])
    passport_and_group = commands.passport_and_group
    interleaved: list[str] = []

    def delete_meanwhile(
        w: Working, actor: Actor, group_id: UUID
    ) -> tuple[Passport, CustomerGroup]:
        loaded = passport_and_group(w, actor, group_id)  # the group, not deleted yet
        if not interleaved:
            interleaved.append("deleted")
            app.delete_customer_group(ANNA, group)
        return loaded

    monkeypatch.setattr(commands, "passport_and_group", delete_meanwhile)

    with pytest.raises(GroupDeletedError, match=DELETED):
        app.add_favourite(BEN, group)

    assert interleaved == ["deleted"]
    assert app.passport(BEN.principal).favourites == []
    assert app.customer_group(group).favourite_of == []


def test_r_fav_2_the_group_knows_who_marked_it_and_forgets_who_unmarked_it(
    app: PartnerFleet, group: UUID
) -> None:
    app.add_favourite(BEN, group)
    app.add_favourite(ANNA, group)
    app.remove_favourite(BEN, group)

    assert app.customer_group(group).favourite_of == [ANNA.principal]


# --- R-GRP-2: a deleted group accepts no group command -----------------------------------------

Command = Callable[[PartnerFleet, UUID], object]
GROUP_COMMANDS: dict[str, Command] = {
    "add_favourite": lambda app, g: app.add_favourite(BEN, g),
    "create_child_group": lambda app, g: app.create_child_group(ANNA, g, "racks", "Racks"),
    "create_customer_child_group": lambda app, g: app.create_customer_child_group(
        CUSTOMER, CUSTOMER_ID, g, "lab2", "Lab 2"
    ),
    "share_child_group": lambda app, g: app.share_child_group(ANNA, g, "lab", BEN.principal),
    "delete_child_group": lambda app, g: app.delete_child_group(ANNA, g, "lab"),
    "add_group_admin": lambda app, g: app.add_group_admin(ANNA, g, BEN.principal),
    "delete_customer_group": lambda app, g: app.delete_customer_group(ANNA, g),
}


@pytest.mark.parametrize("command", GROUP_COMMANDS.values(), ids=list(GROUP_COMMANDS))
def test_r_grp_2_a_deleted_group_refuses_every_group_command_recording_nothing(
    app: PartnerFleet, deleted: UUID, command: Command
) -> None:
    with refused(app, GroupDeletedError, DELETED) as refusal:
        command(app, deleted)

    assert "comes back, empty, when the customer links a device" in str(refusal.value)


def test_r_grp_2_a_user_of_another_partner_is_told_the_group_is_not_found(
    app: PartnerFleet, deleted: UUID, other_partner: str
) -> None:
    """A deleted group of LOC-1 is none of LOC-2's business: neither 'deleted' nor 'not yours'."""
    with refused(app, NotFoundError, f"No customer group {deleted}"):
        app.add_favourite(OTTO, deleted)


# --- R-LNK-5: a new link re-opens the group, and nothing of the deleted one comes back -----


def test_r_lnk_5_a_new_link_reopens_a_deleted_group_clean(app: PartnerFleet, deleted: UUID) -> None:
    position = event_count(app)

    app.link_devices(CUSTOMER, CUSTOMER_ID, ["S1"], to(LOC), customer_name="Customer 1 AG")

    [reopened] = of_type(events_since(app, position), CustomerGroup.Reopened)
    assert (reopened.customer_name, reopened.admins) == ("Customer 1 AG", [ANNA.principal])
    group = app.customer_group(deleted)
    assert not group.deleted
    assert group.admins == [ANNA.principal]  # Ben was an extra admin of the deleted group
    assert group.child_groups == {}  # the customer's subgroup did not block deletion; gone
    assert (group.devices, group.favourite_of) == ({"S1": ["reseller"]}, [])
    assert group.customer_name == "Customer 1 AG"


def test_r_lnk_5_a_link_without_a_name_keeps_the_name_the_group_had(
    app: PartnerFleet, deleted: UUID
) -> None:
    app.link_devices(CUSTOMER, CUSTOMER_ID, ["S1"], to(LOC))

    assert app.customer_group(deleted).customer_name == "Customer One"


def test_r_lnk_5_favourites_of_the_deleted_group_do_not_come_back_with_it(
    app: PartnerFleet, group: UUID
) -> None:
    app.add_favourite(BEN, group)
    app.unlink_devices(CUSTOMER, CUSTOMER_ID, ["S1", "S2"])
    app.delete_customer_group(ANNA, group)

    app.link_devices(CUSTOMER, CUSTOMER_ID, ["S1"], to(LOC))

    assert app.passport(BEN.principal).favourites == []
    app.add_favourite(BEN, group)
    assert app.passport(BEN.principal).favourites == [group]


# --- R-HLD-3: a deleted customer dashboard --------------------------------------------------


@pytest.fixture
def deleted_dashboard(app: PartnerFleet, partner: str, holding_tenant: UUID) -> UUID:
    """LOC-1's dashboard for C1 that held PC1 once (notifications on) and was deleted."""
    app.receive_e2open_batch(feed("e2open", "b"), "b1", [e2open_report("PC1")])
    dashboard = app.create_customer_dashboard(ANNA, partner, CUSTOMER_ID, "Customer One", CPIN)
    app.transfer_devices(ANNA, partner, ["PC1"], holding_tenant, dashboard, "t1")
    app.transfer_devices(ANNA, partner, ["PC1"], dashboard, holding_tenant, "t2")
    app.delete_customer_group(ANNA, dashboard)
    return dashboard


def test_r_hld_3_no_pc_is_transferred_into_a_deleted_dashboard(
    app: PartnerFleet, deleted_dashboard: UUID, holding_tenant: UUID
) -> None:
    with refused(app, GroupDeletedError, "this customer dashboard was deleted"):
        app.transfer_devices(ANNA, LOC, ["PC1"], holding_tenant, deleted_dashboard, "t3")

    assert app.device("PC1").placement == holding_tenant


def test_r_hld_3_no_transfer_names_a_deleted_dashboard_as_its_source(
    app: PartnerFleet, deleted_dashboard: UUID, holding_tenant: UUID
) -> None:
    with refused(app, GroupDeletedError, "this customer dashboard was deleted"):
        app.transfer_devices(ANNA, LOC, ["PC1"], deleted_dashboard, holding_tenant, "t3")


def test_r_hld_3_the_cpin_of_a_deleted_dashboard_enrols_nothing(
    app: PartnerFleet, deleted_dashboard: UUID
) -> None:
    with refused(app, GroupDeletedError, "this customer dashboard was deleted"):
        app.enrol_with_cpin(CUSTOMER, CUSTOMER_ID, deleted_dashboard, CPIN, "PC9")


def test_r_alr_4_self_service_notifications_of_a_deleted_dashboard_stay_as_they_are(
    app: PartnerFleet, deleted_dashboard: UUID
) -> None:
    with refused(app, GroupDeletedError, "this customer dashboard was deleted"):
        app.switch_self_service_notifications(ANNA, LOC, deleted_dashboard, on=False)


def test_r_hld_3_a_new_dashboard_for_the_customer_reopens_the_group_clean(
    app: PartnerFleet, deleted_dashboard: UUID, holding_tenant: UUID
) -> None:
    """The old cPIN opens nothing; R-ALR-3 switches notifications on with the first PC again."""
    again = app.create_customer_dashboard(ANNA, LOC, CUSTOMER_ID, "Customer One", "9999-C1")
    assert again == deleted_dashboard
    assert not app.customer_group(again).self_service_notifications
    with refused(app, NotAllowedError, "The cPIN does not match"):
        app.enrol_with_cpin(CUSTOMER, CUSTOMER_ID, again, CPIN, "PC9")

    app.transfer_devices(ANNA, LOC, ["PC1"], holding_tenant, again, "t3")

    group = app.customer_group(again)
    assert (group.is_dashboard, group.self_service_notifications) == (True, True)
    assert group.devices == {"PC1": [PLACED]}


def test_r_lnk_5_a_link_reopens_a_deleted_dashboard_as_a_plain_customer_group(
    app: PartnerFleet, deleted_dashboard: UUID, holding_tenant: UUID
) -> None:
    app.register_devices(CUSTOMER, CUSTOMER_ID, servers("S7"), to(LOC))

    group = app.customer_group(deleted_dashboard)
    assert (group.is_dashboard, group.cpin_verifier, group.had_pcs) == (False, None, False)
    with refused(app, CustomerGroupError, "has no customer dashboard yet"):
        app.transfer_devices(ANNA, LOC, ["PC1"], holding_tenant, deleted_dashboard, "t3")


# --- groups deleted before deletion removed favourites (older histories) ---------------------


def delete_the_old_way(app: PartnerFleet, group_id: UUID) -> None:
    """Record a deletion as the code before this release did: the Passports keep the star."""
    group = app.customer_group(group_id)
    group.delete(ANNA)
    app.save(group)


def test_r_fav_2_a_full_passport_drops_stars_of_groups_deleted_the_old_way(
    app: PartnerFleet, group: UUID
) -> None:
    others = other_groups(app, MAX_FAVOURITES)
    for group_id in [group, *others[:-1]]:
        app.add_favourite(ANNA, group_id)
    app.unlink_devices(CUSTOMER, CUSTOMER_ID, ["S1", "S2"])
    delete_the_old_way(app, group)
    assert group in app.passport(ANNA.principal).favourites

    app.add_favourite(ANNA, others[-1])

    assert app.passport(ANNA.principal).favourites == others


def test_r_fav_3_favorites_only_is_refused_when_only_groups_deleted_the_old_way_are_starred(
    app: PartnerFleet, group: UUID
) -> None:
    app.add_favourite(ANNA, group)
    app.unlink_devices(CUSTOMER, CUSTOMER_ID, ["S1", "S2"])
    delete_the_old_way(app, group)

    with pytest.raises(FavouriteError, match="at least one favourite"):
        app.choose_default_view(ANNA, "favorites_only")

    assert app.passport(ANNA.principal).favourites == [group]  # a refusal records nothing


def test_r_grp_2_a_version_1_snapshot_of_a_group_loads_with_no_favourite_marks(
    app: PartnerFleet, group: UUID
) -> None:
    """Snapshots taken before CustomerGroup 2 have no `favourite_of`; the upcaster adds it."""
    assert app.snapshots is not None
    taken = Snapshot.take(app.customer_group(group))
    state = {k: v for k, v in taken.state.items() if k not in ("favourite_of", "class_version")}
    app.snapshots.put([replace(taken, state=state)])

    loaded = app.customer_group(group)
    app.add_favourite(BEN, group)

    assert loaded.favourite_of == []
    assert app.customer_group(group).favourite_of == [BEN.principal]


def test_r_lnk_5_a_version_1_reopening_loads_and_keeps_what_the_group_held(
    app: PartnerFleet, deleted: UUID
) -> None:
    """Before version 2 a re-opened group kept its state; its history still replays so."""
    stored = {
        "timestamp": {"_type_": "datetime_iso", "_data_": "2025-03-05T10:00:00+00:00"},
        "principal": CUSTOMER.principal,
        "correlation_id": "corr-2024-link",
    }
    version = app.customer_group(deleted).version + 1
    topic = "domain.customer_group:CustomerGroup.Reopened"
    app.recorder.insert_events([StoredEvent(deleted, version, topic, json.dumps(stored).encode())])

    [reopened] = of_type(events_of(app, deleted), CustomerGroup.Reopened)
    group = app.customer_group(deleted)

    assert (reopened.customer_name, reopened.admins) == (None, None)
    assert not group.deleted
    assert (group.admins, list(group.child_groups)) == ([ANNA.principal, BEN.principal], ["lab"])
