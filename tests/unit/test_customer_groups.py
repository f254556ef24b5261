"""Customer groups, child device groups and their admins: R-GRP-1 to R-GRP-3."""

from __future__ import annotations

from uuid import UUID

import pytest

from domain import CustomerGroup, DeletionRefusedError, NotAllowedError, NotFoundError
from domain.customer_group import CustomerGroupError
from domain.group_support import GroupDeletedError
from handlers import PartnerFleet
from tests.actors import customer
from tests.unit.conftest import (
    ANNA,
    BEN,
    CUSTOMER,
    CUSTOMER_ID,
    OPS,
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
def group(app: PartnerFleet, linked_group: UUID) -> UUID:
    """LOC-1's group for C1 with S1, S2 linked; Anna and Ben are its admins."""
    app.add_group_admin(ANNA, linked_group, BEN.principal)
    return linked_group


@pytest.fixture
def empty_group(app: PartnerFleet, group: UUID) -> UUID:
    """The same group after the customer unlinked both servers."""
    app.unlink_devices(CUSTOMER, CUSTOMER_ID, ["S1", "S2"])
    return group


# --- R-GRP-1: child device groups, shared or not, and the customer's own -----------------


def test_r_grp_1_a_partner_admin_creates_a_child_device_group(
    app: PartnerFleet, group: UUID
) -> None:
    position = event_count(app)

    app.create_child_group(ANNA, group, "racks", " Rack servers ")

    created = of_type(events_since(app, position), CustomerGroup.ChildGroupCreated)
    assert [(e.child_id, e.name, e.by_partner, e.principal) for e in created] == [
        ("racks", "Rack servers", True, ANNA.principal)
    ]
    assert set(app.customer_group(group).child_groups_visible_to(ANNA.principal)) == {"racks"}


def test_r_grp_1_an_unshared_child_group_is_invisible_to_the_other_admins(
    app: PartnerFleet, group: UUID
) -> None:
    app.create_child_group(ANNA, group, "racks", "Rack servers")

    assert app.customer_group(group).child_groups_visible_to(BEN.principal) == {}
    with refused(app, CustomerGroupError, f"{BEN.principal} has no visible child group racks"):
        app.delete_child_group(BEN, group, "racks")


def test_r_grp_1_sharing_a_child_group_makes_it_visible_to_that_admin(
    app: PartnerFleet, group: UUID
) -> None:
    app.create_child_group(ANNA, group, "racks", "Rack servers")
    position = event_count(app)

    app.share_child_group(ANNA, group, "racks", BEN.principal)

    shared = of_type(events_since(app, position), CustomerGroup.ChildGroupShared)
    assert [(e.child_id, e.with_admin) for e in shared] == [("racks", BEN.principal)]
    assert set(app.customer_group(group).child_groups_visible_to(BEN.principal)) == {"racks"}


def test_r_grp_1_an_admin_it_is_shared_with_may_delete_the_child_group(
    app: PartnerFleet, group: UUID
) -> None:
    app.create_child_group(ANNA, group, "racks", "Rack servers")
    app.share_child_group(ANNA, group, "racks", BEN.principal)

    app.delete_child_group(BEN, group, "racks")

    assert names(events_of(app, group))[-1] == "CustomerGroup.ChildGroupDeleted"
    assert app.customer_group(group).child_groups == {}


def test_r_grp_1_only_the_creator_shares_a_child_group(app: PartnerFleet, group: UUID) -> None:
    app.create_child_group(ANNA, group, "racks", "Rack servers")
    app.share_child_group(ANNA, group, "racks", BEN.principal)

    with refused(app, NotAllowedError, f"Only {ANNA.principal} can share child group"):
        app.share_child_group(BEN, group, "racks", ANNA.principal)


def test_r_grp_1_a_child_group_is_shared_only_with_admins_of_the_customer_group(
    app: PartnerFleet, linked_group: UUID
) -> None:
    app.create_child_group(ANNA, linked_group, "racks", "Rack servers")

    with refused(app, NotAllowedError, f"{BEN.principal} is not an admin of customer group"):
        app.share_child_group(ANNA, linked_group, "racks", BEN.principal)


def test_r_grp_1_sharing_with_an_admin_who_already_sees_it_is_refused(
    app: PartnerFleet, group: UUID
) -> None:
    app.create_child_group(ANNA, group, "racks", "Rack servers")
    app.share_child_group(ANNA, group, "racks", BEN.principal)

    with refused(app, CustomerGroupError, f"already visible to {BEN.principal}"):
        app.share_child_group(ANNA, group, "racks", BEN.principal)


def test_r_grp_1_a_child_group_the_customer_created_is_invisible_to_every_partner_admin(
    app: PartnerFleet, group: UUID
) -> None:
    app.create_customer_child_group(CUSTOMER, CUSTOMER_ID, group, "lab", "Lab machines")

    recorded = app.customer_group(group)
    assert not recorded.child_groups["lab"].by_partner
    assert recorded.child_groups_visible_to(ANNA.principal) == {}
    assert recorded.child_groups_visible_to(BEN.principal) == {}
    with refused(app, CustomerGroupError, "has no visible child group lab"):
        app.delete_child_group(ANNA, group, "lab")


def test_r_grp_1_a_customer_creates_subgroups_only_in_its_own_customer_group(
    app: PartnerFleet, group: UUID
) -> None:
    with refused(app, NotFoundError, "No customer group"):
        app.create_customer_child_group(customer("C9"), "C9", group, "lab", "Lab machines")


def test_r_grp_1_a_child_group_id_is_used_once(app: PartnerFleet, group: UUID) -> None:
    app.create_child_group(ANNA, group, "racks", "Rack servers")

    with refused(app, CustomerGroupError, "Child group racks already exists"):
        app.create_child_group(BEN, group, "racks", "Other racks")


# --- R-GRP-2: deletion only when empty; a refusal says why and whom to contact -----------


def test_r_grp_2_an_empty_customer_group_is_deleted(app: PartnerFleet, empty_group: UUID) -> None:
    position = event_count(app)

    app.delete_customer_group(ANNA, empty_group)

    deleted = of_type(events_since(app, position), CustomerGroup.Deleted)
    assert [(e.originator_id, e.principal) for e in deleted] == [(empty_group, ANNA.principal)]
    assert app.customer_group(empty_group).deleted


def test_r_grp_2_deleting_a_group_with_linked_devices_is_refused_naming_its_admins(
    app: PartnerFleet, group: UUID
) -> None:
    with refused(app, DeletionRefusedError, "2 device\\(s\\) are still linked") as refusal:
        app.delete_customer_group(ANNA, group)

    assert refusal.value.admins == [ANNA.principal, BEN.principal]
    assert f"Contact the group's admins to resolve this: {ANNA.principal}, {BEN.principal}" in str(
        refusal.value
    )
    assert not app.customer_group(group).deleted


def test_r_grp_2_a_partner_child_group_the_deleting_admin_cannot_see_blocks_deletion(
    app: PartnerFleet, empty_group: UUID
) -> None:
    app.create_child_group(BEN, empty_group, "bens", "Ben's racks")

    with refused(app, DeletionRefusedError, "1 of them not shared with you") as refusal:
        app.delete_customer_group(ANNA, empty_group)

    assert refusal.value.reasons == [
        "1 partner-created child group(s) remain, 1 of them not shared with you"
    ]
    assert refusal.value.admins == [ANNA.principal, BEN.principal]


def test_r_grp_2_a_refusal_lists_every_reason(app: PartnerFleet, group: UUID) -> None:
    app.create_child_group(ANNA, group, "racks", "Rack servers")

    with refused(app, DeletionRefusedError, "still linked") as refusal:
        app.delete_customer_group(ANNA, group)

    assert refusal.value.reasons == [
        "2 device(s) are still linked to it",
        "1 partner-created child group(s) remain, 0 of them not shared with you",
    ]


def test_r_grp_2_customer_created_subgroups_do_not_block_deletion(
    app: PartnerFleet, empty_group: UUID
) -> None:
    app.create_customer_child_group(CUSTOMER, CUSTOMER_ID, empty_group, "lab", "Lab machines")

    app.delete_customer_group(ANNA, empty_group)

    assert app.customer_group(empty_group).deleted


def test_r_grp_2_the_group_is_deleted_once_its_child_groups_are_gone(
    app: PartnerFleet, empty_group: UUID
) -> None:
    app.create_child_group(BEN, empty_group, "bens", "Ben's racks")
    app.delete_child_group(BEN, empty_group, "bens")

    app.delete_customer_group(ANNA, empty_group)

    assert app.customer_group(empty_group).deleted


def test_r_grp_2_only_an_admin_of_the_group_deletes_it(
    app: PartnerFleet, linked_group: UUID
) -> None:
    app.unlink_devices(CUSTOMER, CUSTOMER_ID, ["S1", "S2"])

    with refused(app, NotAllowedError, f"{BEN.principal} is not an admin of customer group"):
        app.delete_customer_group(BEN, linked_group)


def test_r_grp_2_deleting_a_deleted_group_is_refused(app: PartnerFleet, empty_group: UUID) -> None:
    app.delete_customer_group(ANNA, empty_group)

    with refused(app, GroupDeletedError, "this customer group was deleted"):
        app.delete_customer_group(ANNA, empty_group)


def test_r_grp_2_an_empty_group_linked_before_the_partner_had_users_can_be_deleted(
    app: PartnerFleet,
) -> None:
    """R-GRP-2: a partner can delete a group with no devices and no partner child groups.

    The customer linked a device before the partner registered its first user (its admin),
    then unlinked it. The group is empty, so the partner's admin must be able to delete it.
    """
    app.register_partner(OPS, "LOC-1", "Partner One")
    app.register_devices(CUSTOMER, CUSTOMER_ID, servers("S1"), to("LOC-1"))
    app.unlink_devices(CUSTOMER, CUSTOMER_ID, ["S1"])
    app.register_partner_user(OPS, "LOC-1", ANNA.principal)
    group_id = CustomerGroup.id_for("LOC-1", CUSTOMER_ID)

    app.delete_customer_group(ANNA, group_id)

    assert app.customer_group(group_id).deleted


# --- R-GRP-3: the group's admins, and only they, create child groups ---------------------


def test_r_grp_3_the_partners_admins_administer_a_new_customer_group(
    app: PartnerFleet, linked_group: UUID
) -> None:
    assert app.customer_group(linked_group).admins == [ANNA.principal]


def test_r_grp_3_an_admin_makes_another_partner_user_an_admin_of_the_group(
    app: PartnerFleet, linked_group: UUID
) -> None:
    position = event_count(app)

    app.add_group_admin(ANNA, linked_group, BEN.principal)

    added = of_type(events_since(app, position), CustomerGroup.AdminAdded)
    assert [(e.passport_id, e.principal) for e in added] == [(BEN.principal, ANNA.principal)]
    assert app.customer_group(linked_group).admins == [ANNA.principal, BEN.principal]


def test_r_grp_3_a_partner_user_who_is_no_group_admin_cannot_create_a_child_group(
    app: PartnerFleet, linked_group: UUID
) -> None:
    with refused(app, NotAllowedError, f"{BEN.principal} is not an admin of customer group"):
        app.create_child_group(BEN, linked_group, "bens", "Ben's racks")


def test_r_grp_3_a_new_group_admin_may_create_child_groups(app: PartnerFleet, group: UUID) -> None:
    app.create_child_group(BEN, group, "bens", "Ben's racks")

    assert set(app.customer_group(group).child_groups_visible_to(BEN.principal)) == {"bens"}


def test_r_grp_3_a_partner_admin_registered_after_the_group_joins_its_admins_when_acting(
    app: PartnerFleet,
) -> None:
    app.register_partner(OPS, "LOC-1", "Partner One")
    app.register_devices(CUSTOMER, CUSTOMER_ID, servers("S1"), to("LOC-1"))
    app.register_partner_user(OPS, "LOC-1", ANNA.principal)
    group_id = CustomerGroup.id_for("LOC-1", CUSTOMER_ID)
    position = event_count(app)

    app.create_child_group(ANNA, group_id, "racks", "Rack servers")

    events = events_since(app, position)
    assert names(events) == ["CustomerGroup.AdminAdded", "CustomerGroup.ChildGroupCreated"]
    assert of_type(events, CustomerGroup.AdminAdded)[0].passport_id == ANNA.principal
    assert app.customer_group(group_id).admins == [ANNA.principal]


def test_r_grp_3_only_a_group_admin_adds_admins(app: PartnerFleet, linked_group: UUID) -> None:
    with refused(app, NotAllowedError, f"{BEN.principal} is not an admin of customer group"):
        app.add_group_admin(BEN, linked_group, BEN.principal)


def test_r_grp_3_a_user_of_another_partner_cannot_become_a_group_admin(
    app: PartnerFleet, linked_group: UUID, other_partner: str
) -> None:
    with refused(app, NotAllowedError, f"{OTTO.principal} is not a user of partner LOC-1"):
        app.add_group_admin(ANNA, linked_group, OTTO.principal)


def test_r_grp_3_adding_an_admin_twice_is_refused(app: PartnerFleet, group: UUID) -> None:
    with refused(app, CustomerGroupError, f"{BEN.principal} is already an admin"):
        app.add_group_admin(ANNA, group, BEN.principal)
