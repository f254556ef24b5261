"""Alerts from the device-alerts feed, raised in batches of one transaction each (R-ALR-1)."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from domain.base import Cause, DomainError
from domain.device_support import Alert
from domain.e2open_screen import screened_reports
from domain.intake import AlertBatch, Unreadable
from domain.text import canonical, feed_texts
from handlers.access import Actor, Role
from handlers.base import FleetApplication, Working, command
from handlers.devices import load_device
from handlers.intake import (
    Delivery,
    DuplicateError,
    IntakeOutcome,
    RejectedError,
    collection_paused,
    malformed,
    take_batch,
)


class AlertMessage(BaseModel):
    """One device alert as the monitoring feed sends it."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    serial: str = Field(min_length=1, max_length=32)
    alert_id: str = Field(min_length=1, max_length=100)
    severity: str = Field(pattern="^(critical|warning|info)$")
    message: str = Field(min_length=1, max_length=2_000)

    @model_validator(mode="before")
    @classmethod
    def _texts(cls, alert: object) -> object:
        return feed_texts(alert, ("serial", "alert_id", "message"))


class AlertIntakeCommands(FleetApplication):
    """Raising alerts from the alerts feed."""

    @collection_paused()
    @command(Role.FEED, Role.OPERATOR)
    def receive_alert_batch(
        self,
        w: Working,
        actor: Actor,
        batch_id: str,
        messages: Sequence[object],
        *,
        fingerprint: str | None = None,
    ) -> IntakeOutcome:
        """R-ALR-1: raise every valid alert, keep every rejection with its reason; one transaction.

        Batch id and fingerprint as for `receive_e2open_batch`: the same messages again
        repeat the first outcome, other messages under the id are refused and kept. By the
        alerts feed, or by HP/HPE operations by hand.
        """
        # The e2Open screen serves any messages (an alert is not a plain report): version 2,
        # an unfit alert by its own content (session 19's attack), v1 batch ids compared in v1.
        delivery = Delivery.of(AlertBatch, batch_id, messages, fingerprint, screened_reports)
        return take_batch(w, actor, AlertBatch, delivery, lambda raw, _: self._raise(w, actor, raw))

    def _raise(self, w: Working, cause: Cause, raw: object) -> str:
        """Raise one alert and return its id, or raise RejectedError / DuplicateError."""
        if isinstance(raw, Unreadable):
            raise RejectedError(raw.reason)
        try:
            alert = AlertMessage.model_validate(raw)
        except ValidationError as error:
            raise malformed("alert", error) from None
        try:
            device = load_device(w, alert.serial)
            raised = device.alerts.get(alert.alert_id)
            if raised is not None:
                raise _known(raised, alert)
            device.raise_alert(cause, alert.alert_id, alert.severity, alert.message)
        except DomainError as refused:
            raise RejectedError(str(refused)) from None
        return alert.alert_id


def _known(raised: Alert, alert: AlertMessage) -> Exception:
    """An alert id raised before is a redelivery only if the alert says the same."""
    if canonical((raised.severity, raised.message)) != canonical((alert.severity, alert.message)):
        return RejectedError(
            f"alert id {alert.alert_id} was already raised for device {alert.serial} "
            "with different content"
        )
    return DuplicateError(alert.alert_id)  # redelivered: raised already
