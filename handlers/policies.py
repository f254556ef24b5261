"""Policies: decisions that follow the event store, never the HTTP path (R-ALR-1, -2, -4).

A policy reads the notification log after its own tracked position, only the topics it
handles, and decides in a command of its own. The decision's events and the policy's
tracking record are saved in one transaction (the policy calls its declared command of
handlers/routing.py inside `fleet.tracked(...)`, as the policy actor), so a notification
is decided exactly once: a crash before the commit leaves the position
where it was, and a second runner that decided the same notification first makes the save
conflict on the tracking record, which counts as done.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import structlog
from eventsourcing.persistence import Notification, RecordConflictError, Tracking
from eventsourcing.utils import get_topic

from domain.base import DomainError, FleetAggregate
from domain.device import Device
from handlers.access import Actor, policy_actor
from handlers.base import AlreadyProcessedError
from handlers.routing import RoutingCommands

log = structlog.get_logger("partnerfleet.policies")


class Policy(ABC):
    """Decides on events of some types by calling its declared command on the fleet."""

    name: ClassVar[str]  # also the tracking record's name: one position per policy
    command: ClassVar[str]  # the command it calls (handlers/routing.py), declared for policies
    follows: ClassVar[tuple[type[FleetAggregate.Event], ...]]

    @classmethod
    def topics(cls) -> list[str]:
        """The stored-event topics this policy reads."""
        return sorted(get_topic(event_class) for event_class in cls.follows)

    def actor(self, event: FleetAggregate.Event) -> Actor:
        """The policy acts in the name of itself, under the triggering event's correlation id."""
        return policy_actor(self.name, event.correlation_id)

    @abstractmethod
    def decide(self, fleet: RoutingCommands, actor: Actor, event: Any) -> None:
        """Call the policy's command for `event` (the runner has it tracked)."""


class AlertsPolicy(Policy):
    """R-ALR-1, R-ALR-4: who hears of an alert: the PC's end user, or the partner only."""

    name = "partnerfleet.policy.alerts"
    command = "notify_alert"
    follows = (Device.AlertRaised,)

    def decide(self, fleet: RoutingCommands, actor: Actor, event: Device.AlertRaised) -> None:
        fleet.notify_alert(actor, event.originator_id, event.alert_id)


class RepairRoutingPolicy(Policy):
    """R-ALR-2: a submitted repair case goes to HP/HPE support or the partner's CSDP account."""

    name = "partnerfleet.policy.repair-routing"
    command = "route_repair_case"
    follows = (Device.RepairCaseSubmitted,)

    def decide(
        self, fleet: RoutingCommands, actor: Actor, event: Device.RepairCaseSubmitted
    ) -> None:
        fleet.route_repair_case(actor, event.originator_id, event.case_id)


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
        fleet: RoutingCommands,
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
        tracking = Tracking(policy.name, notification.id)
        try:
            with self.fleet.tracked(tracking):
                policy.decide(self.fleet, policy.actor(event), event)
        except AlreadyProcessedError:
            return False
        except DomainError as refused:
            # Refused because a rival runner decided it first: its tracking record says so.
            # Refused otherwise (say, decided by hand): record the position, say why, go on.
            if self._track(tracking):
                log.warning(
                    "policy_decided_nothing",
                    policy=policy.name,
                    notification_id=notification.id,
                    reason=str(refused),
                )
            return False
        return True

    def _track(self, tracking: Tracking) -> bool:
        """Record the position alone; False when another runner has recorded it already."""
        try:
            self.fleet.recorder.insert_tracking(tracking)
        except RecordConflictError:
            return False
        return True
