"""Policies: decisions that follow the event store, never the HTTP path (R-ALR-1, -2, -4).

A policy reads the notification log after its own tracked position, only the topics it
handles, and decides in a command of its own. The decision's events and the policy's
tracking record are saved in one transaction (`FleetApplication._execute(tracking=...)`),
so a notification is decided exactly once: a crash before the commit leaves the position
where it was, and a second runner that decided the same notification first makes the save
conflict on the tracking record, which counts as done.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import structlog
from eventsourcing.persistence import Notification, RecordConflictError, Tracking
from eventsourcing.utils import get_topic

from domain.base import Cause, DomainError, FleetAggregate
from domain.customer_group import CustomerGroup
from domain.device import Device
from domain.device_support import VENDOR_SUPPORT
from domain.partner import PartnerTenant
from handlers.base import AlreadyProcessedError, FleetApplication, Working
from handlers.partners import load_partner

log = structlog.get_logger("partnerfleet.policies")


@dataclass(frozen=True)
class Decision:
    """Where an alert or a repair case goes, the partner concerned, and why."""

    to: str
    location_id: str | None
    reason: str


class Policy(ABC):
    """Decides on events of some types by issuing a command on the fleet."""

    name: ClassVar[str]  # also the tracking record's name: one position per policy
    command: ClassVar[str]
    follows: ClassVar[tuple[type[FleetAggregate.Event], ...]]

    @classmethod
    def topics(cls) -> list[str]:
        """The stored-event topics this policy reads."""
        return sorted(get_topic(event_class) for event_class in cls.follows)

    def cause(self, event: FleetAggregate.Event) -> Cause:
        """The policy acts in the name of itself, under the triggering event's correlation id."""
        return Cause(f"policy:{self.name}", event.correlation_id)

    @abstractmethod
    def decide(self, w: Working, cause: Cause, event: Any) -> None:
        """Record the decision on the aggregates in `w` (or nothing)."""


def load_device_by_id(w: Working, event: FleetAggregate.Event) -> Device:
    """The device an event happened to."""
    return w.load(Device, event.originator_id, f"No device {event.originator_id}.")


class AlertsPolicy(Policy):
    """R-ALR-1, R-ALR-4: who hears of an alert: the PC's end user, or the partner only."""

    name = "partnerfleet.policy.alerts"
    command = "notify_alert"
    follows = (Device.AlertRaised,)

    def decide(self, w: Working, cause: Cause, event: Device.AlertRaised) -> None:
        device = load_device_by_id(w, event)
        decision = alert_audience(w, device)
        device.notify_alert(
            cause, event.alert_id, decision.to, decision.reason, decision.location_id
        )


def alert_audience(w: Working, device: Device) -> Decision:
    """R-ALR-1, R-ALR-4: a placed PC's end user unless its dashboard switched that off."""
    owner = device.placement_owner
    if device.placement is None or owner is None:
        return _unplaced_audience(device)
    where = f"PC {device.serial}"
    if device.placement == PartnerTenant.holding_tenant_id_for(owner):
        reason = f"R-ALR-1: {where} is in partner {owner}'s holding tenant"
        return Decision("end_user", None, f"{reason}; its end user gets a self-service pop-up.")
    group = w.load(CustomerGroup, device.placement, f"No customer dashboard for {where}.")
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


class RepairRoutingPolicy(Policy):
    """R-ALR-2: a submitted repair case goes to HP/HPE support or the partner's CSDP account."""

    name = "partnerfleet.policy.repair-routing"
    command = "route_repair_case"
    follows = (Device.RepairCaseSubmitted,)

    def decide(self, w: Working, cause: Cause, event: Device.RepairCaseSubmitted) -> None:
        device = load_device_by_id(w, event)
        route = repair_route(w, device, event.source)
        device.route_repair_case(cause, event.case_id, route.to, route.reason, route.location_id)


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


def all_policies() -> list[Policy]:
    """A fresh instance of every policy."""
    return [AlertsPolicy(), RepairRoutingPolicy()]


class PolicyStuckError(Exception):
    """A policy failed on a notification (not a refusal); it stays before it and retries."""

    def __init__(self, policy: str, notification: Notification, error: Exception) -> None:
        text = " ".join(str(error).split())
        super().__init__(
            f"policy {policy} is stuck at notification {notification.id}"
            f" ({notification.topic}): {type(error).__name__}: {text}"
        )
        self.detail = {"notification_id": notification.id, "topic": notification.topic}


class PolicyRunner:
    """Reads the fleet's notification log for each policy; one tracked position per policy.

    `infra.loops` runs it live (`infra.bootstrap.follow_policies`), each policy on its
    own, so one failing policy does not stop the other.
    """

    def __init__(
        self,
        fleet: FleetApplication,
        policies: Sequence[Policy] | None = None,
        batch_size: int = 500,
    ) -> None:
        self.fleet = fleet
        self.policies = list(all_policies() if policies is None else policies)
        self.batch_size = batch_size

    def position(self, policy: Policy) -> int:
        """The notification id up to which `policy` has decided."""
        return self.fleet.recorder.max_tracking_id(policy.name) or 0

    def head(self) -> int:
        """The last notification id in the event store."""
        return self.fleet.recorder.max_notification_id() or 0

    def lag(self) -> dict[str, int]:
        """Per policy: notifications stored but not yet considered."""
        head = self.head()
        return {policy.name: head - self.position(policy) for policy in self.policies}

    def catch_up(self) -> int:
        """Decide on everything stored so far; returns the decisions this runner recorded.

        Raises PolicyStuckError on a notification a policy cannot decide on (not a
        refusal: an unforeseen error), its position left just before it.
        """
        return sum(self.catch_up_policy(policy) for policy in self.policies)

    def catch_up_policy(self, policy: Policy) -> int:
        """`catch_up` for one policy (so a follower can run each on its own)."""
        head, decided = self.head(), 0
        position = self.position(policy)
        while position < head:
            notifications = self.fleet.recorder.select_notifications(
                start=position + 1, limit=self.batch_size, stop=head, topics=policy.topics()
            )
            for notification in notifications:
                if notification.id <= position:
                    continue  # another runner decided it meanwhile
                if self._process_or_stuck(policy, notification):
                    decided, position = decided + 1, notification.id
                else:
                    position = max(notification.id, self.position(policy))
            reached = notifications[-1].id if len(notifications) == self.batch_size else head
            if position < reached:
                # Nothing of the policy's topics up to `reached`: record that it was seen.
                self._track(Tracking(policy.name, reached))
            position = max(reached, self.position(policy))
        return decided

    def _process_or_stuck(self, policy: Policy, notification: Notification) -> bool:
        try:
            return self._process(policy, notification)
        except Exception as error:
            raise PolicyStuckError(policy.name, notification, error) from error

    def _process(self, policy: Policy, notification: Notification) -> bool:
        event = self.fleet.mapper.to_domain_event(notification)
        assert isinstance(event, FleetAggregate.Event)
        cause, tracking = policy.cause(event), Tracking(policy.name, notification.id)
        try:
            return self._save(
                policy.command, cause, lambda w: policy.decide(w, cause, event), tracking
            )
        except DomainError as refused:
            # Refused because a rival runner decided it first: its tracking record says so.
            # Refused otherwise (say, decided by hand): record the position, say why, go on.
            if self._save(policy.command, cause, lambda _w: None, tracking):
                log.warning(
                    "policy_decided_nothing",
                    policy=policy.name,
                    notification_id=notification.id,
                    reason=str(refused),
                )
            return False

    def _save(
        self, command: str, cause: Cause, work: Callable[[Working], None], tracking: Tracking
    ) -> bool:
        try:
            self.fleet._execute(command, cause, work, tracking)
        except AlreadyProcessedError:
            return False
        return True

    def _track(self, tracking: Tracking) -> None:
        # A conflict means another runner has moved the position as far already.
        with contextlib.suppress(RecordConflictError):
            self.fleet.recorder.insert_tracking(tracking)
