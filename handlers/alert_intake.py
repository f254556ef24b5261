"""Alerts from the device-alerts feed, raised in batches of one transaction each (R-ALR-1)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from domain.base import Cause, DomainError
from domain.device import Device
from domain.intake import AlertBatch, Rejection, Unreadable
from handlers.base import FleetApplication, Working
from handlers.devices import load_device


class AlertMessage(BaseModel):
    """One device alert as the monitoring feed sends it."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    serial: str = Field(min_length=1, max_length=32)
    alert_id: str = Field(min_length=1, max_length=100)
    severity: str = Field(pattern="^(critical|warning|info)$")
    message: str = Field(min_length=1, max_length=2_000)


@dataclass
class AlertIntakeOutcome:
    """What became of a batch of alert messages."""

    batch_id: str
    accepted: list[str] = field(default_factory=list)  # alert ids raised
    rejected: list[Rejection] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)  # alert ids raised before
    redelivered: bool = False


class DuplicateAlertError(Exception):
    """The alert was raised before: a redelivered message, not a rejection."""


class AlertIntakeCommands(FleetApplication):
    """Raising alerts from the alerts feed."""

    def receive_alert_batch(
        self, cause: Cause, batch_id: str, messages: Sequence[object]
    ) -> AlertIntakeOutcome:
        """Raise every valid alert, keep every rejection with its reason; one transaction."""
        return self._execute(
            "receive_alert_batch", cause, lambda w: self._alert_intake(w, cause, batch_id, messages)
        )

    def _alert_intake(
        self, w: Working, cause: Cause, batch_id: str, messages: Sequence[object]
    ) -> AlertIntakeOutcome:
        previous = w.find(AlertBatch, AlertBatch.id_for(batch_id))
        if previous is not None:
            rejected = [Rejection.model_validate(r) for r in previous.rejected]
            return AlertIntakeOutcome(batch_id, list(previous.accepted), rejected, redelivered=True)
        outcome = AlertIntakeOutcome(batch_id)
        for index, raw in enumerate(messages):
            try:
                outcome.accepted.append(self._raise(w, cause, raw))
            except DuplicateAlertError as duplicate:
                outcome.duplicates.append(str(duplicate))
            except (DomainError, ValueError) as error:
                serial = raw.get("serial") if isinstance(raw, Mapping) else None
                outcome.rejected.append(
                    Rejection(
                        index=index,
                        serial=None if serial is None else str(serial)[:64],
                        reason=str(error),
                    )
                )
        w.add(AlertBatch.receive(cause, batch_id, outcome.accepted, outcome.rejected))
        return outcome

    def _raise(self, w: Working, cause: Cause, raw: object) -> str:
        if isinstance(raw, Unreadable):
            raise ValueError(raw.reason)
        try:
            alert = AlertMessage.model_validate(raw)
        except ValidationError as error:
            parts = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()]
            raise ValueError("malformed alert: " + "; ".join(parts)) from None
        device: Device = load_device(w, alert.serial)
        if alert.alert_id in device.alerts:
            raise DuplicateAlertError(alert.alert_id)  # redelivered: raised already, nothing new
        device.raise_alert(cause, alert.alert_id, alert.severity, alert.message)
        return alert.alert_id
