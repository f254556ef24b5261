"""Self-service notifications of customer dashboards: R-ALR-3 and R-ALR-4."""

from __future__ import annotations

from uuid import UUID

import pytest

from domain import CustomerGroup, NotFoundError
from domain.customer_group import CustomerGroupError
from handlers import PartnerFleet
from tests.unit.conftest import (
    ANNA,
    CUSTOMER,
    CUSTOMER_ID,
    OPS,
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

CPIN = "4711-C1"
SWITCHED = "CustomerGroup.SelfServiceNotificationsSwitched"


@pytest.fixture
def dashboard(app: PartnerFleet, partner: str, holding_tenant: UUID) -> UUID:
    """LOC-1's empty customer dashboard for C1; PC1, PC2 wait in the holding tenant."""
    app.receive_e2open_batch(OPS, "batch-1", [e2open_report("PC1"), e2open_report("PC2")])
    return app.create_customer_dashboard(ANNA, partner, CUSTOMER_ID, "Customer One", CPIN)


@pytest.fixture
def premium_dashboard(
    app: PartnerFleet, partner: str, holding_tenant: UUID, dashboard: UUID
) -> UUID:
    """The dashboard after Premium PC1 was transferred into it."""
    app.transfer_devices(ANNA, partner, ["PC1"], holding_tenant, dashboard, "T-1")
    return dashboard


def notifications_on(app: PartnerFleet, group_id: UUID) -> bool:
    """Whether the group's end users get self-service pop-ups now."""
    return app.customer_group(group_id).self_service_notifications


# --- R-ALR-3: switched on automatically with the dashboard's first device ----------------


def test_r_alr_3_a_new_dashboard_has_self_service_notifications_off(
    app: PartnerFleet, dashboard: UUID
) -> None:
    assert not notifications_on(app, dashboard)
    assert SWITCHED not in names(events_of(app, dashboard))


def test_r_alr_3_the_first_pc_transferred_in_switches_notifications_on(
    app: PartnerFleet, partner: str, holding_tenant: UUID, dashboard: UUID
) -> None:
    position = event_count(app)

    app.transfer_devices(ANNA, partner, ["PC1"], holding_tenant, dashboard, "T-1")

    group_events = [e for e in events_since(app, position) if e.originator_id == dashboard]
    assert names(group_events) == ["CustomerGroup.DeviceAdded", SWITCHED]
    switched = of_type(group_events, CustomerGroup.SelfServiceNotificationsSwitched)[0]
    assert (switched.on, switched.principal) == (True, ANNA.principal)
    assert notifications_on(app, dashboard)


def test_r_alr_3_the_first_pc_enrolled_by_cpin_switches_notifications_on(
    app: PartnerFleet, dashboard: UUID
) -> None:
    position = event_count(app)

    app.enrol_with_cpin(CUSTOMER, CUSTOMER_ID, dashboard, CPIN, "PC7", care_plan="premium")

    switched = of_type(events_since(app, position), CustomerGroup.SelfServiceNotificationsSwitched)
    assert [(e.originator_id, e.on) for e in switched] == [(dashboard, True)]


def test_r_alr_3_later_pcs_do_not_switch_notifications_again(
    app: PartnerFleet, partner: str, holding_tenant: UUID, premium_dashboard: UUID
) -> None:
    position = event_count(app)

    app.transfer_devices(ANNA, partner, ["PC2"], holding_tenant, premium_dashboard, "T-2")

    assert SWITCHED not in names(events_since(app, position))
    assert notifications_on(app, premium_dashboard)


def test_r_alr_3_linking_servers_to_a_plain_customer_group_switches_nothing(
    app: PartnerFleet, linked_group: UUID, partner: str
) -> None:
    app.register_devices(CUSTOMER, CUSTOMER_ID, servers("S3"), to(partner))

    assert SWITCHED not in names(events_of(app, linked_group))
    assert not notifications_on(app, linked_group)


# --- R-ALR-4: off only for a dashboard holding a Premium/Premium+ PC ---------------------


def test_r_alr_4_notifications_are_switched_off_for_a_dashboard_with_a_premium_pc(
    app: PartnerFleet, partner: str, premium_dashboard: UUID
) -> None:
    position = event_count(app)

    app.switch_self_service_notifications(ANNA, partner, premium_dashboard, on=False)

    switched = of_type(events_since(app, position), CustomerGroup.SelfServiceNotificationsSwitched)
    assert [(e.originator_id, e.on) for e in switched] == [(premium_dashboard, False)]
    assert not notifications_on(app, premium_dashboard)


def test_r_alr_4_notifications_can_be_switched_back_on(
    app: PartnerFleet, partner: str, premium_dashboard: UUID
) -> None:
    app.switch_self_service_notifications(ANNA, partner, premium_dashboard, on=False)

    app.switch_self_service_notifications(ANNA, partner, premium_dashboard, on=True)

    assert notifications_on(app, premium_dashboard)
    switches = of_type(
        events_of(app, premium_dashboard), CustomerGroup.SelfServiceNotificationsSwitched
    )
    assert [e.on for e in switches] == [True, False, True]


def test_r_alr_4_switching_to_the_current_setting_records_nothing(
    app: PartnerFleet, partner: str, premium_dashboard: UUID
) -> None:
    position = event_count(app)

    app.switch_self_service_notifications(ANNA, partner, premium_dashboard, on=True)

    assert event_count(app) == position


def test_r_alr_4_notifications_of_the_holding_tenant_cannot_be_switched_off(
    app: PartnerFleet, partner: str, holding_tenant: UUID, dashboard: UUID
) -> None:
    with refused(app, CustomerGroupError, "of the holding tenant cannot be switched off"):
        app.switch_self_service_notifications(ANNA, partner, holding_tenant, on=False)


def test_r_alr_4_an_empty_dashboard_cannot_switch_notifications_off(
    app: PartnerFleet, partner: str, dashboard: UUID
) -> None:
    with refused(app, CustomerGroupError, "only once at least one HP Premium/Premium\\+ PC"):
        app.switch_self_service_notifications(ANNA, partner, dashboard, on=False)


def test_r_alr_4_a_dashboard_with_only_pcs_without_care_plan_cannot_switch_off(
    app: PartnerFleet, partner: str, dashboard: UUID
) -> None:
    app.enrol_with_cpin(CUSTOMER, CUSTOMER_ID, dashboard, CPIN, "PC7")
    assert notifications_on(app, dashboard)

    with refused(app, CustomerGroupError, "HP Premium/Premium\\+ PC is in the customer dashboard"):
        app.switch_self_service_notifications(ANNA, partner, dashboard, on=False)

    assert notifications_on(app, dashboard)


def test_r_alr_4_a_customer_group_without_dashboard_has_no_notifications_to_switch(
    app: PartnerFleet, linked_group: UUID, partner: str, holding_tenant: UUID
) -> None:
    with refused(app, CustomerGroupError, "has no customer dashboard yet"):
        app.switch_self_service_notifications(ANNA, partner, linked_group, on=False)


def test_r_alr_4_only_the_partners_users_switch_its_dashboards_notifications(
    app: PartnerFleet, partner: str, other_partner: str, premium_dashboard: UUID
) -> None:
    """R-ALR-4, issue 9: another partner's Location ID and dashboard are not found (404)."""
    with refused(app, NotFoundError, f"No partner with Location ID '{partner}' found"):
        app.switch_self_service_notifications(OTTO, partner, premium_dashboard, on=False)
    with refused(app, NotFoundError, f"Partner {other_partner} has no tenant"):
        app.switch_self_service_notifications(OTTO, other_partner, premium_dashboard, on=False)


def test_r_alr_3_a_partners_off_survives_emptying_and_refilling_the_dashboard(
    app: PartnerFleet, partner: str, holding_tenant: UUID, premium_dashboard: UUID
) -> None:
    """R-ALR-3: only the very first PC switches notifications on; a later 'off' stays off."""
    app.switch_self_service_notifications(ANNA, partner, premium_dashboard, on=False)
    app.transfer_devices(ANNA, partner, ["PC1"], premium_dashboard, holding_tenant, "T-out")
    position = event_count(app)

    app.transfer_devices(ANNA, partner, ["PC1"], holding_tenant, premium_dashboard, "T-back")

    assert SWITCHED not in names(events_since(app, position))
    assert not notifications_on(app, premium_dashboard)
