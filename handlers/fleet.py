"""PartnerFleet: every command of the service over one event store."""

from __future__ import annotations

from handlers.alert_intake import AlertIntakeCommands
from handlers.base import ConflictError
from handlers.customers import CustomerGroupCommands
from handlers.devices import DeviceCommands, NewDevice, PartnerChoice
from handlers.holding import HoldingCommands
from handlers.intake import IntakeOutcome
from handlers.partners import PartnerCommands


class PartnerFleet(
    PartnerCommands, DeviceCommands, CustomerGroupCommands, HoldingCommands, AlertIntakeCommands
):
    """The command side of partnerfleet (one application, one notification log)."""


__all__ = ["ConflictError", "IntakeOutcome", "NewDevice", "PartnerChoice", "PartnerFleet"]
