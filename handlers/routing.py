"""The policies' decisions, as commands of their own (R-ALR-1, R-ALR-2, R-ALR-4).

`notify_alert` and `route_repair_case` are declared for the policy role only: the
policies (handlers/policies.py) call them as any caller calls a command, each inside
`fleet.tracked(...)` so the decision and the policy's position are one transaction. The
decision is made in the command's body, on the state it loaded: a retry after a conflict
decides again on fresh state.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from domain.base import Msg
from domain.customer_group import CustomerGroup
from domain.device import Device
from domain.device_support import VENDOR_SUPPORT
from domain.partner import PartnerTenant
from handlers.access import Actor, Role
from handlers.base import FleetApplication, Working, command
from handlers.partners import load_partner


@dataclass(frozen=True)
class Decision:
    """Where an alert or a repair case goes, the partner concerned, and why."""

    to: str
    location_id: str | None
    reason: str


def load_device_by_id(w: Working, device_id: UUID) -> Device:
    """The device with this id (the originator of the event a policy follows)."""
    return w.load(Device, device_id, Msg("No device {device_id}.", device_id=device_id))


def alert_audience(w: Working, device: Device) -> Decision:
    """R-ALR-1, R-ALR-4: a placed PC's end user unless its dashboard switched that off."""
    owner = device.placement_owner
    if device.placement is None or owner is None:
        return _unplaced_audience(device)
    where = f"PC {device.serial}"
    if device.placement == PartnerTenant.holding_tenant_id_for(owner):
        reason = f"R-ALR-1: {where} is in partner {owner}'s holding tenant"
        return Decision("end_user", None, f"{reason}; its end user gets a self-service pop-up.")
    group = w.load(
        CustomerGroup,
        device.placement,
        Msg("No customer dashboard for PC {serial}.", serial=device.serial),
    )
    dashboard = f"customer dashboard {group.customer_name}"
    if group.self_service_notifications:
        reason = f"R-ALR-1: {where} is in {dashboard}, with self-service notifications on"
        return Decision("end_user", None, f"{reason}; its end user gets a self-service pop-up.")
    reason = f"R-ALR-4: self-service notifications are off in {dashboard}"
    return Decision("partner", owner, f"{reason}; the alert goes to partner {owner} only.")


def _unplaced_audience(device: Device) -> Decision:
    # A server (or a PC in no tenant) has no self-service end user: its partner hears of it.
    partner = device.links.get("service_partner") or device.links.get("reseller")
    if partner is not None:
        reason = f"Device {device.serial} is in no holding tenant or dashboard, so has no pop-up"
        return Decision("partner", partner, f"{reason}; the alert goes to its partner {partner}.")
    support = device.vendor_support
    reason = f"Device {device.serial} has no self-service end user and no partner"
    return Decision(support, None, f"{reason}; the alert goes to {VENDOR_SUPPORT[support]}.")


def repair_route(w: Working, device: Device, source: str) -> Decision:
    """R-ALR-2: by the device's partner: service partner, else reseller, else placement owner."""
    if source == "insight_rs":
        return _insight_rs_route(w, device)
    links = device.links
    location_id = links.get("service_partner") or links.get("reseller") or device.placement_owner
    support = device.vendor_support
    if location_id is None:
        reason = f"R-ALR-2: device {device.serial} has no partner"
        return Decision(support, None, f"{reason}; the case goes to {VENDOR_SUPPORT[support]}.")
    partner = load_partner(w, location_id)
    if partner.partner_type == "service_partner":
        return _to_csdp(partner, "R-ALR-2: the device's partner is a service partner")
    reason = f"R-ALR-2: partner {location_id} is a reseller"
    return Decision(support, None, f"{reason}; {VENDOR_SUPPORT[support]} schedules the repair.")


def _insight_rs_route(w: Working, device: Device) -> Decision:
    # Insight RS opens cases with HPE unless the customer chose to send them to its partner.
    service_partner = device.links.get("service_partner")
    chose = device.insight_rs_cases_to_service_partner
    if chose and service_partner is not None:
        reason = "R-ALR-2: Insight RS case; the customer chose its service partner for these"
        return _to_csdp(load_partner(w, service_partner), reason)
    if chose:
        why = "the customer chose its service partner for these, but none is linked"
    else:
        why = "the customer has not chosen to send these to its service partner"
    support = device.vendor_support
    reason = f"R-ALR-2: Insight RS case; {why}"
    return Decision(support, None, f"{reason}; it goes to {VENDOR_SUPPORT[support]}.")


def _to_csdp(partner: PartnerTenant, reason: str) -> Decision:
    account = partner.csdp_account
    assert account is not None  # accreditation as service partner always names the account
    text = f"{reason}; the case goes to partner {partner.location_id}'s CSDP account {account}."
    return Decision(f"csdp:{account}", partner.location_id, text)


def case_source(device: Device, case_id: str) -> str:
    """Where the device's repair case came from; "self_service" for one it does not have
    (the domain then refuses to route it)."""
    sources = (a.case_source for a in device.alerts.values() if a.repair_case_id == case_id)
    return next(sources, None) or "self_service"


class RoutingCommands(FleetApplication):
    """The policies' decisions: who hears of an alert, where a repair case goes."""

    @command(Role.POLICY)
    def notify_alert(self, w: Working, actor: Actor, device_id: UUID, alert_id: str) -> None:
        """R-ALR-1, R-ALR-4: record who hears of the device's alert, and why; once."""
        device = load_device_by_id(w, device_id)
        decision = alert_audience(w, device)
        device.notify_alert(actor, alert_id, decision.to, decision.reason, decision.location_id)

    @command(Role.POLICY)
    def route_repair_case(self, w: Working, actor: Actor, device_id: UUID, case_id: str) -> None:
        """R-ALR-2: record where the device's submitted repair case goes, and why; once."""
        device = load_device_by_id(w, device_id)
        route = repair_route(w, device, case_source(device, case_id))
        device.route_repair_case(actor, case_id, route.to, route.reason, route.location_id)
