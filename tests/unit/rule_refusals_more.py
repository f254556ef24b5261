"""The table of rule refusals, continued: groups, service events, holding tenant, alerts.

As tests/unit/rule_refusals.py: each case arranges a small world and returns the act that
must be refused under its rule.
"""

from __future__ import annotations

from domain.base import NotAllowedError
from domain.device_support import DeviceError
from domain.group_support import CustomerGroupError, DeletionRefusedError, GroupDeletedError
from handlers import PartnerFleet
from handlers.access import ForbiddenError, partner_scope
from tests.actors import end_user, feed
from tests.scenarios import servers
from tests.unit.rule_refusals import (
    C1,
    Act,
    Table,
    alerted,
    ben,
    holding,
    linked,
    partner,
    pcs,
)

CASES = Table()
case = CASES.case


# --- customer groups and child groups ----------------------------------------------------


@case("R-GRP-1", NotAllowedError, "Only anna@LOC-1 can share")
def r_grp_1_only_its_creator_shares_a_child_group(fleet: PartnerFleet) -> Act:
    anna, group = partner(fleet), linked(fleet)
    fleet.create_child_group(anna, group, "K1", "Racks")
    fleet.add_group_admin(anna, group, "ben@LOC-1")
    fleet.share_child_group(anna, group, "K1", "ben@LOC-1")
    return lambda: fleet.share_child_group(ben(fleet), group, "K1", "anna@LOC-1")


@case("R-GRP-1", CustomerGroupError, "no visible child group K1")
def r_grp_1_an_unshared_child_group_is_invisible_to_other_admins(fleet: PartnerFleet) -> Act:
    anna, group = partner(fleet), linked(fleet)
    fleet.create_child_group(anna, group, "K1", "Racks")
    fleet.add_group_admin(anna, group, "ben@LOC-1")
    return lambda: fleet.delete_child_group(ben(fleet), group, "K1")


@case("R-GRP-2", DeletionRefusedError, "cannot be deleted: 1 device")
def r_grp_2_a_group_with_devices_is_not_deleted(fleet: PartnerFleet) -> Act:
    anna, group = partner(fleet), linked(fleet)
    return lambda: fleet.delete_customer_group(anna, group)


@case("R-GRP-2", GroupDeletedError, "was deleted")
def r_grp_2_a_deleted_group_takes_no_command(fleet: PartnerFleet) -> Act:
    anna, group = partner(fleet), linked(fleet)
    fleet.unlink_devices(C1, "C1", ["S1"])
    fleet.delete_customer_group(anna, group)
    return lambda: fleet.create_child_group(anna, group, "K1", "Racks")


@case("R-GRP-3", NotAllowedError, "ben@LOC-1 is not an admin of customer group")
def r_grp_3_only_a_group_admin_creates_a_child_group(fleet: PartnerFleet) -> Act:
    partner(fleet)
    group = linked(fleet)
    return lambda: fleet.create_child_group(ben(fleet), group, "K1", "Racks")


@case("R-GRP-3", NotAllowedError, "ben@LOC-1 is not an admin of customer group")
def r_grp_3_only_a_group_admin_deletes_the_group(fleet: PartnerFleet) -> Act:
    partner(fleet)
    group = linked(fleet)
    fleet.unlink_devices(C1, "C1", ["S1"])
    return lambda: fleet.delete_customer_group(ben(fleet), group)


@case("R-GRP-3", NotAllowedError, "anna@LOC-2 is not a user of partner LOC-1")
def r_grp_3_group_admins_are_users_of_its_partner(fleet: PartnerFleet) -> Act:
    anna, group = partner(fleet), linked(fleet)
    partner(fleet, "LOC-2")
    return lambda: fleet.add_group_admin(anna, group, "anna@LOC-2")


# --- service events ----------------------------------------------------------------------


@case("R-SVC-1", ForbiddenError, "not a service partner")
def r_svc_1_a_reseller_sees_no_service_events(fleet: PartnerFleet) -> Act:
    scope = partner_scope(partner(fleet), "LOC-1")
    return scope.require_service_partner


# --- holding tenant, dashboards, transfers, cPIN ------------------------------------------


@case("R-HLD-3", DeviceError, "target other than its source")
def r_hld_3_a_transfer_has_a_target_other_than_its_source(fleet: PartnerFleet) -> Act:
    anna, tenant, _ = holding(fleet)
    return lambda: fleet.transfer_devices(anna, "LOC-1", ["PC1"], tenant, tenant, "T1")


@case("R-HLD-3", DeviceError, "not in the transfer's source")
def r_hld_3_a_pc_moves_only_from_where_it_is(fleet: PartnerFleet) -> Act:
    anna, tenant, dashboard = holding(fleet)
    return lambda: fleet.transfer_devices(anna, "LOC-1", ["PC1"], dashboard, tenant, "T1")


@case("R-HLD-3", CustomerGroupError, "has no customer dashboard yet")
def r_hld_3_pcs_move_only_into_a_customer_dashboard(fleet: PartnerFleet) -> Act:
    anna, tenant, _ = holding(fleet)
    group = linked(fleet, "C2", "S2")
    return lambda: fleet.transfer_devices(anna, "LOC-1", ["PC1"], tenant, group, "T1")


@case("R-HLD-3", DeviceError, "only PCs are enrolled by cPIN")
def r_hld_3_only_pcs_are_enrolled_by_cpin(fleet: PartnerFleet) -> Act:
    _, _, dashboard = holding(fleet)
    fleet.register_devices(C1, "C1", servers("S1"))
    return lambda: fleet.enrol_with_cpin(C1, "C1", dashboard, "1234", "S1")


@case("R-HLD-3", NotAllowedError, "belongs to another customer")
def r_hld_3_a_customer_enrols_only_its_own_pcs(fleet: PartnerFleet) -> Act:
    _, _, dashboard = holding(fleet)
    pcs(fleet, "C2", "PC2")
    return lambda: fleet.enrol_with_cpin(C1, "C1", dashboard, "1234", "PC2")


@case("R-HLD-3", DeviceError, "already in a tenant")
def r_hld_3_a_pc_in_a_tenant_is_transferred_not_enrolled(fleet: PartnerFleet) -> Act:
    _, _, dashboard = holding(fleet)
    return lambda: fleet.enrol_with_cpin(C1, "C1", dashboard, "1234", "PC1")


@case("R-HLD-3", NotAllowedError, "cPIN does not match")
def r_hld_3_a_pc_is_enrolled_only_with_the_dashboards_cpin(fleet: PartnerFleet) -> Act:
    _, _, dashboard = holding(fleet)
    return lambda: fleet.enrol_with_cpin(C1, "C1", dashboard, "9999", "PC7")


# --- alerts and repair cases -------------------------------------------------------------


@case("R-ALR-1", ForbiddenError, "may not submit self service cases")
def r_alr_1_self_service_cases_come_from_the_end_user(fleet: PartnerFleet) -> Act:
    alerted(fleet)
    return lambda: fleet.submit_repair_case(feed(), "PC1", "A1", "CASE-1", "self_service")


@case("R-ALR-2", ForbiddenError, "may not submit insight rs cases")
def r_alr_2_insight_rs_cases_come_from_remote_support(fleet: PartnerFleet) -> Act:
    alerted(fleet)
    user = end_user("C1", ["PC1"])
    return lambda: fleet.submit_repair_case(user, "PC1", "A1", "CASE-1", "insight_rs")


@case("R-ALR-2", DeviceError, "not monitored by Insight RS")
def r_alr_2_a_pc_has_no_insight_rs_cases(fleet: PartnerFleet) -> Act:
    alerted(fleet)
    rs = feed("feed:insight-rs")
    return lambda: fleet.submit_repair_case(rs, "PC1", "A1", "CASE-1", "insight_rs")


@case("R-ALR-2", DeviceError, "not monitored by Insight RS")
def r_alr_2_a_pc_has_no_insight_rs_case_routing(fleet: PartnerFleet) -> Act:
    pcs(fleet, "C1", "PC9")
    return lambda: fleet.choose_insight_rs_case_routing(C1, "C1", ["PC9"], True)


@case("R-ALR-4", CustomerGroupError, "of the holding tenant cannot be switched off")
def r_alr_4_the_holding_tenants_pop_ups_stay_on(fleet: PartnerFleet) -> Act:
    anna, tenant, _ = holding(fleet)
    return lambda: fleet.switch_self_service_notifications(anna, "LOC-1", tenant, False)


@case("R-ALR-4", CustomerGroupError, "has no customer dashboard yet")
def r_alr_4_pop_ups_are_switched_only_for_a_dashboard(fleet: PartnerFleet) -> Act:
    anna, _, _ = holding(fleet)
    group = linked(fleet, "C2", "S2")
    return lambda: fleet.switch_self_service_notifications(anna, "LOC-1", group, False)


@case("R-ALR-4", CustomerGroupError, r"at least one HP Premium/Premium\+ PC")
def r_alr_4_pop_ups_stay_on_until_a_premium_pc_is_in(fleet: PartnerFleet) -> Act:
    anna, _, dashboard = holding(fleet)
    return lambda: fleet.switch_self_service_notifications(anna, "LOC-1", dashboard, False)


@case("R-ALR-4", CustomerGroupError, "belong to customer dashboards")
def r_alr_4_a_group_without_dashboard_has_no_pop_ups(fleet: PartnerFleet) -> Act:
    anna = partner(fleet)
    group = linked(fleet)
    return lambda: fleet.customer_group(group).switch_self_service_notifications(anna, False)
