"""Reads of one device for its own customer (R-PAR-2): checked scope in, the aggregate out."""

from __future__ import annotations

from domain.device import Device, normalise_serial
from handlers.access import CustomerScope
from handlers.base import FleetApplication, Working
from handlers.devices import load_device


def customer_device(fleet: FleetApplication, scope: CustomerScope, serial: str) -> Device:
    """R-PAR-2: the customer's own device as recorded now (for its version: the HTTP ETag).

    Another customer's device is "not found" in the words for a serial nobody registered
    (`NotFoundError`); a serial that is not 1-32 letters or digits is `DeviceError`.
    """
    device = load_device(Working(fleet), normalise_serial(serial))
    device.require_owner(scope.customer_id)
    return device
