"""A device's support side: alerts, repair cases, service levels, service events.

A mixin of Device, kept apart so each module stays readable; its events are Device's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from domain.base import Cause, DomainError, FleetAggregate, Msg
from domain.service_level import ServiceLevel, active_levels, highest_level

# Who hears of an alert (R-ALR-1, R-ALR-4): the PC's end user, the partner, or HP/HPE support.
AUDIENCES: tuple[str, ...] = ("end_user", "partner", "hp_customer_support", "hpe_support")
# The vendors' own support desks, by the queue name repair cases are routed to (R-ALR-2).
VENDOR_SUPPORT: dict[str, str] = {
    "hp_customer_support": "HP customer support",
    "hpe_support": "HPE support",
}
# Where a repair case comes from: the end user's self-service pop-up, or Insight RS (R-ALR-2).
CASE_SOURCES: tuple[str, ...] = ("self_service", "insight_rs")


class DeviceError(DomainError):
    """A device command was refused."""


@dataclass
class Alert:
    """An alert raised for the device, who was told of it, and its repair case, if any.

    Fields added later have defaults, so snapshots taken before them still load.
    """

    severity: str
    message: str
    repair_case_id: str | None = None
    case_source: str | None = None
    notified: str | None = None  # audience the alert went to (R-ALR-1, R-ALR-4)
    case_routed_to: str | None = None  # destination of the repair case (R-ALR-2)


class DeviceSupport:
    """Alerts and repair cases (R-ALR-*), service levels (R-SVC-3), service events (R-SVC-1)."""

    serial: str
    connection: str
    alerts: dict[str, Alert]
    # A class default, so devices (and snapshots) from before the choice existed read False.
    insight_rs_cases_to_service_partner: bool = False
    service_levels: list[ServiceLevel]
    service_events: dict[str, str]  # event id -> severity

    if TYPE_CHECKING:

        def _record(
            self, event_class: type[FleetAggregate.Event], cause: Cause, **fields: Any
        ) -> None: ...

    class AlertRaised(FleetAggregate.Event):
        alert_id: str
        severity: str
        message: str

        def apply(self, aggregate: DeviceSupport) -> None:
            aggregate.alerts[self.alert_id] = Alert(self.severity, self.message)

    def raise_alert(self, cause: Cause, alert_id: str, severity: str, message: str) -> None:
        """R-ALR-1: record an alert for the device, once per alert id."""
        if alert_id in self.alerts:
            raise DeviceError(
                Msg(
                    "Alert {alert_id} was already raised for device {serial}.",
                    alert_id=alert_id,
                    serial=self.serial,
                )
            )
        if not message.strip():
            raise DeviceError(Msg("An alert needs a message."))
        self._record(self.AlertRaised, cause, alert_id=alert_id, severity=severity, message=message)

    class AlertNotified(FleetAggregate.Event):
        alert_id: str
        audience: str
        location_id: str | None  # the partner told, when the audience is "partner"
        reason: str

        def apply(self, aggregate: DeviceSupport) -> None:
            aggregate.alerts[self.alert_id].notified = self.audience

    @property
    def vendor_support(self) -> str:
        """R-ALR-2: HP customer support serves PCs; HPE support servers and storage."""
        return "hp_customer_support" if self.connection == "pc_agent" else "hpe_support"

    def notify_alert(
        self, cause: Cause, alert_id: str, audience: str, reason: str, location_id: str | None
    ) -> None:
        """R-ALR-1, R-ALR-4: record who an alert went to, once per alert."""
        alert = self._alert(alert_id)
        if audience not in AUDIENCES:
            raise DeviceError(
                Msg(
                    "Unknown alert audience {audience!r}; use one of {known}.",
                    audience=audience,
                    known=AUDIENCES,
                )
            )
        if (audience == "partner") != (location_id is not None):
            raise DeviceError(Msg("An alert for the partner names the partner, and only then."))
        if alert.notified is not None:
            raise DeviceError(
                Msg(
                    "Alert {alert_id} of device {serial} was already notified to the {audience}.",
                    alert_id=alert_id,
                    serial=self.serial,
                    audience=alert.notified.replace("_", " "),
                )
            )
        self._record(
            self.AlertNotified,
            cause,
            alert_id=alert_id,
            audience=audience,
            location_id=location_id,
            reason=reason,
        )

    class RepairCaseSubmitted(FleetAggregate.Event):
        """Version 2 added `source`; version 1 cases were all submitted by self-service."""

        class_version = 2
        case_id: str
        alert_id: str
        source: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["source"] = "self_service"

        def apply(self, aggregate: DeviceSupport) -> None:
            alert = aggregate.alerts[self.alert_id]
            alert.repair_case_id, alert.case_source = self.case_id, self.source

    def submit_repair_case(
        self, cause: Cause, alert_id: str, case_id: str, source: str = "self_service"
    ) -> None:
        """R-ALR-1, R-ALR-2: a repair case is submitted from a raised alert, once."""
        alert = self._alert(alert_id)
        if alert.repair_case_id is not None:
            raise DeviceError(
                Msg(
                    "Alert {alert_id} already has repair case {repair_case_id}.",
                    alert_id=alert_id,
                    repair_case_id=alert.repair_case_id,
                )
            )
        if source not in CASE_SOURCES:
            raise DeviceError(
                Msg(
                    "Unknown repair case source {source!r}; use one of {known}.",
                    source=source,
                    known=CASE_SOURCES,
                )
            )
        if source == "insight_rs":
            self._require_insight_rs()
        if not case_id.strip():
            raise DeviceError(Msg("A repair case needs a case id."))
        self._record(
            self.RepairCaseSubmitted, cause, case_id=case_id, alert_id=alert_id, source=source
        )

    class RepairCaseRouted(FleetAggregate.Event):
        case_id: str
        alert_id: str
        destination: str  # hp_customer_support, hpe_support or csdp:<CSDP account>
        location_id: str | None  # the partner whose CSDP queue receives it, if any
        reason: str

        def apply(self, aggregate: DeviceSupport) -> None:
            aggregate.alerts[self.alert_id].case_routed_to = self.destination

    def route_repair_case(
        self, cause: Cause, case_id: str, destination: str, reason: str, location_id: str | None
    ) -> None:
        """R-ALR-2: record where a submitted repair case goes, once per case."""
        alert_id, alert = self._case(case_id)
        if alert.case_routed_to is not None:
            raise DeviceError(
                Msg(
                    "Repair case {case_id} of device {serial} was already routed to "
                    "{case_routed_to}.",
                    case_id=case_id,
                    serial=self.serial,
                    case_routed_to=alert.case_routed_to,
                )
            )
        if not destination.strip() or not reason.strip():
            raise DeviceError(Msg("A routed repair case needs a destination and a reason."))
        self._record(
            self.RepairCaseRouted,
            cause,
            case_id=case_id,
            alert_id=alert_id,
            destination=destination,
            location_id=location_id,
            reason=reason,
        )

    class InsightRSCaseRoutingChosen(FleetAggregate.Event):
        to_service_partner: bool

        def apply(self, aggregate: DeviceSupport) -> None:
            aggregate.insight_rs_cases_to_service_partner = self.to_service_partner

    def choose_insight_rs_case_routing(self, cause: Cause, to_service_partner: bool) -> None:
        """R-ALR-2: the customer sends Insight RS cases to its service partner, or not."""
        self._require_insight_rs()
        if to_service_partner != self.insight_rs_cases_to_service_partner:
            self._record(
                self.InsightRSCaseRoutingChosen, cause, to_service_partner=to_service_partner
            )

    def _require_insight_rs(self) -> None:
        if self.connection == "pc_agent":
            raise DeviceError(
                Msg(
                    "PC {serial} is not monitored by Insight RS; its repair cases come from "
                    "self-service alerts.",
                    serial=self.serial,
                ),
                rule="R-ALR-2",
            )

    def _alert(self, alert_id: str) -> Alert:
        alert = self.alerts.get(alert_id)
        if alert is None:
            raise DeviceError(
                Msg(
                    "Device {serial} has no alert {alert_id}.",
                    serial=self.serial,
                    alert_id=alert_id,
                )
            )
        return alert

    def _case(self, case_id: str) -> tuple[str, Alert]:
        for alert_id, alert in self.alerts.items():
            if alert.repair_case_id == case_id:
                return alert_id, alert
        raise DeviceError(
            Msg(
                "Device {serial} has no repair case {case_id}.", serial=self.serial, case_id=case_id
            )
        )

    class ServiceLevelAdded(FleetAggregate.Event):
        kind: str
        name: str
        starts: date
        ends: date

        def apply(self, aggregate: DeviceSupport) -> None:
            level = ServiceLevel(self.kind, self.name, self.starts, self.ends)
            aggregate.service_levels.append(level)

    def add_service_level(self, cause: Cause, level: ServiceLevel) -> None:
        """R-SVC-3: a device may hold several service levels, each with start and end."""
        if level in self.service_levels:
            raise DeviceError(
                Msg(
                    "Device {serial} already has service level {name!r}.",
                    serial=self.serial,
                    name=level.name,
                )
            )
        self._record(
            self.ServiceLevelAdded,
            cause,
            kind=level.kind,
            name=level.name,
            starts=level.starts,
            ends=level.ends,
        )

    def active_service_levels(self, day: date) -> list[ServiceLevel]:
        """R-SVC-3: all active service levels on `day`, highest first."""
        return active_levels(self.service_levels, day)

    def highest_service_level(self, day: date) -> ServiceLevel | None:
        """R-SVC-3: the highest active service level on `day`."""
        return highest_level(self.service_levels, day)

    class ServiceEventRecorded(FleetAggregate.Event):
        event_id: str
        severity: str
        summary: str

        def apply(self, aggregate: DeviceSupport) -> None:
            aggregate.service_events[self.event_id] = self.severity

    def record_service_event(
        self, cause: Cause, event_id: str, severity: str, summary: str
    ) -> None:
        """R-SVC-1: a service event reported by remote support for this device."""
        if severity not in ("critical", "warning", "info"):
            raise DeviceError(
                Msg(
                    "Unknown severity {severity!r}; use critical, warning or info.",
                    severity=severity,
                )
            )
        if event_id in self.service_events:
            raise DeviceError(
                Msg("Service event {event_id} is already recorded.", event_id=event_id)
            )
        self._record(
            self.ServiceEventRecorded, cause, event_id=event_id, severity=severity, summary=summary
        )
