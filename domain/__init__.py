"""partnerfleet's domain model: aggregates, their events and the rules they enforce."""

from domain.base import Cause, DomainError, NotAllowedError, NotFoundError
from domain.customer_group import CustomerGroup, DeletionRefusedError
from domain.device import Device
from domain.intake import E2OpenBatch, E2OpenReport
from domain.partner import PartnerTenant
from domain.passport import Passport

__all__ = [
    "Cause",
    "CustomerGroup",
    "DeletionRefusedError",
    "Device",
    "DomainError",
    "E2OpenBatch",
    "E2OpenReport",
    "NotAllowedError",
    "NotFoundError",
    "PartnerTenant",
    "Passport",
]
