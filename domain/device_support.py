"""A device's support side: alerts, repair cases, service levels, service events.

A mixin of Device, kept apart so each module stays readable; its events are Device's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from domain.base import Cause, DomainError, FleetAggregate
from domain.service_level import ServiceLevel, active_levels, highest_level


class DeviceError(DomainError):
    """A device command was refused."""


@dataclass
class Alert:
    """An alert raised for the device and the repair case submitted from it, if any."""

    severity: str
    message: str
    repair_case_id: str | None = None


class DeviceSupport:
    """Alerts (R-ALR-1), service levels (R-SVC-3) and service events (R-SVC-1) of a device."""

    serial: str
    alerts: dict[str, Alert]
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
            raise DeviceError(f"Alert {alert_id} was already raised for device {self.serial}.")
        if not message.strip():
            raise DeviceError("An alert needs a message.")
        self._record(self.AlertRaised, cause, alert_id=alert_id, severity=severity, message=message)

    class RepairCaseSubmitted(FleetAggregate.Event):
        case_id: str
        alert_id: str

        def apply(self, aggregate: DeviceSupport) -> None:
            aggregate.alerts[self.alert_id].repair_case_id = self.case_id

    def submit_repair_case(self, cause: Cause, alert_id: str, case_id: str) -> None:
        """R-ALR-1: a repair case is submitted from a raised alert, once."""
        alert = self.alerts.get(alert_id)
        if alert is None:
            raise DeviceError(f"Device {self.serial} has no alert {alert_id}.")
        if alert.repair_case_id is not None:
            raise DeviceError(f"Alert {alert_id} already has repair case {alert.repair_case_id}.")
        self._record(self.RepairCaseSubmitted, cause, case_id=case_id, alert_id=alert_id)

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
            raise DeviceError(f"Device {self.serial} already has service level {level.name!r}.")
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
            raise DeviceError(f"Unknown severity {severity!r}; use critical, warning or info.")
        if event_id in self.service_events:
            raise DeviceError(f"Service event {event_id} is already recorded.")
        self._record(
            self.ServiceEventRecorded, cause, event_id=event_id, severity=severity, summary=summary
        )
