"""Another tenant's customer group or device is "not found" (R-PAR-2, R-LNK-1, R-GRP-3).

A partner user naming a customer group of another partner, or a customer naming a device
of another customer, is told exactly what it is told for an id that does not exist: no
customer name, no owning Location ID, no "not yours" that would show the thing exists.
Group ids are derived from (Location ID, customer id), so a difference would let one
partner enumerate another partner's customers.
"""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

import pytest

from domain import CustomerGroup, NotFoundError
from handlers import PartnerFleet
from handlers.access import Actor
from tests.actors import customer, known_partner_user
from tests.unit.conftest import (
    ANNA,
    CUSTOMER,
    CUSTOMER_ID,
    LOC,
    OPS,
    OTHER_LOC,
    OTTO,
    e2open_report,
    event_count,
    refused,
    register_partner,
    to,
)

# a plain user of the other partner
THIRD_LOC = "LOC-3"
OTTOS_USER = known_partner_user(OTHER_LOC, f"ute@{OTHER_LOC}", admin=False, correlation_id="u")
# the admin of a third partner with no customer groups at all
STRANGER = known_partner_user(THIRD_LOC, f"tom@{THIRD_LOC}", admin=True, correlation_id="t")
NOBODYS = CustomerGroup.id_for(LOC, "C-NOBODY")  # a group id that was never created

GroupCommand = Callable[[PartnerFleet, Actor, UUID], object]
GROUP_COMMANDS: dict[str, GroupCommand] = {
    "create_child_group": lambda app, c, g: app.create_child_group(c, g, "x", "X"),
    "share_child_group": lambda app, c, g: app.share_child_group(c, g, "racks", ANNA.principal),
    "delete_child_group": lambda app, c, g: app.delete_child_group(c, g, "racks"),
    "add_group_admin": lambda app, c, g: app.add_group_admin(c, g, OTTO.principal),
    "delete_customer_group": lambda app, c, g: app.delete_customer_group(c, g),
    "add_favourite": lambda app, c, g: app.add_favourite(c, g),
    # a customer's command: another customer (whoever the partner actor is) names the group
    "create_customer_child_group": lambda app, _c, g: app.create_customer_child_group(
        customer("C-OTHER"), "C-OTHER", g, "y", "Y"
    ),
}


@pytest.fixture
def groups(app: PartnerFleet, linked_group: UUID, other_partner: str) -> UUID:
    """LOC-1's group for C1 with a child group, LOC-2 registered with Otto and Ute, LOC-3
    with Tom."""
    app.register_partner_user(OPS, other_partner, OTTOS_USER.principal)
    register_partner(app, THIRD_LOC, STRANGER.principal)
    app.create_child_group(ANNA, linked_group, "racks", "Racks")
    return linked_group


def refusal(app: PartnerFleet, command: GroupCommand, cause: Actor, group: UUID) -> str:
    """The message of the refusal, with the group id replaced by a placeholder."""
    before = event_count(app)
    with pytest.raises(NotFoundError) as info:
        command(app, cause, group)
    assert event_count(app) == before, "a refused command must record nothing"
    return str(info.value).replace(str(group), "<id>")


@pytest.mark.parametrize("command", sorted(GROUP_COMMANDS))
@pytest.mark.parametrize("cause", [OTTO, OTTOS_USER, STRANGER], ids=["admin", "user", "nobody"])
def test_r_par_2_another_partners_customer_group_is_not_found(
    app: PartnerFleet, groups: UUID, command: str, cause: Actor
) -> None:
    """R-PAR-2, R-GRP-3: the refusal for another partner's group is that for a missing one."""
    run = GROUP_COMMANDS[command]
    told = refusal(app, run, cause, groups)
    assert told == refusal(app, run, cause, NOBODYS)
    assert "Customer One" not in told
    assert LOC not in told


@pytest.mark.parametrize("command", sorted(GROUP_COMMANDS))
def test_r_grp_2_another_partners_deleted_group_is_not_found_either(
    app: PartnerFleet, groups: UUID, command: str
) -> None:
    """R-GRP-2: that a group of another partner was deleted is not told to it either."""
    app.delete_child_group(ANNA, groups, "racks")
    app.unlink_devices(CUSTOMER, CUSTOMER_ID, ["S1", "S2"])
    app.delete_customer_group(ANNA, groups)
    run = GROUP_COMMANDS[command]
    assert refusal(app, run, OTTO, groups) == refusal(app, run, OTTO, NOBODYS)


DeviceCommand = Callable[[PartnerFleet, str], object]
DEVICE_COMMANDS: dict[str, DeviceCommand] = {
    "link_devices": lambda app, s: app.link_devices(customer("C9"), "C9", [s], to(LOC)),
    "unlink_devices": lambda app, s: app.unlink_devices(customer("C9"), "C9", [s]),
    "grant_consent": lambda app, s: app.grant_consent(customer("C9"), "C9", [s]),
    "withdraw_consent": lambda app, s: app.withdraw_consent(customer("C9"), "C9", [s]),
    "grant_consent_on_host": lambda app, s: app.grant_consent_on_host(customer("C9"), "C9", s),
    "withdraw_consent_on_host": lambda app, s: app.withdraw_consent_on_host(
        customer("C9"), "C9", s
    ),
    "set_hosting_partner": lambda app, s: app.set_hosting_partner(customer("C9"), "C9", s, to(LOC)),
    "choose_insight_rs_case_routing": lambda app, s: app.choose_insight_rs_case_routing(
        customer("C9"), "C9", [s], True
    ),
}


@pytest.mark.parametrize("command", sorted(DEVICE_COMMANDS))
def test_r_lnk_1_another_customers_device_is_not_found(
    app: PartnerFleet, linked_group: UUID, command: str
) -> None:
    """R-LNK-1, R-CON-1: customer C9 naming C1's S1 is told what it is told for no device."""
    run = DEVICE_COMMANDS[command]
    with refused(app, NotFoundError, "No device with serial number") as theirs:
        run(app, "S1")
    with refused(app, NotFoundError, "No device with serial number") as missing:
        run(app, "S404")
    assert str(theirs.value).replace("S1", "<serial>") == str(missing.value).replace(
        "S404", "<serial>"
    )


def test_r_hld_3_another_partners_pc_is_not_found_for_a_transfer(
    app: PartnerFleet, holding_tenant: UUID, other_partner: str
) -> None:
    """R-HLD-3: only PCs the partner can see are transferred; the others do not exist for it."""
    app.receive_e2open_batch(OPS, "b1", [e2open_report("PC1", LOC)])
    others = app.certify_partner(OPS, other_partner, "resell_view_monitor")
    dashboard = app.create_customer_dashboard(OTTO, other_partner, "C7", "Seven", "1234")
    told = []
    for serial in ("PC1", "PC404"):
        with refused(app, NotFoundError, "No device with serial number") as info:
            app.transfer_devices(OTTO, other_partner, [serial], others, dashboard, "t1")
        told.append(str(info.value).replace(serial, "<serial>"))
    assert told[0] == told[1]
