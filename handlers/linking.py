"""Linking a device to a partner and keeping the partner's customer groups in step."""

from __future__ import annotations

from domain.base import Cause, Msg
from domain.customer_group import CustomerGroup
from domain.device import Device
from domain.partner import PartnerTenant
from handlers.base import Working
from handlers.partners import load_partner


def group_for(
    w: Working, cause: Cause, partner: PartnerTenant, customer_id: str, customer_name: str
) -> CustomerGroup:
    """R-LNK-5: the partner's group for the customer, created (or re-opened clean) on a link.

    Also the group a new customer dashboard is made of (R-HLD-3).
    """
    group_id = CustomerGroup.id_for(partner.location_id, customer_id)
    found = w.find(CustomerGroup, group_id)
    if found is not None:
        if found.deleted:  # checked here: a bulk link passes by once per device
            found.reopen(cause, customer_name, partner.admins)
        return found
    group = CustomerGroup.create(
        cause, partner.location_id, customer_id, customer_name or customer_id, partner.admins
    )
    return w.add(group)


def existing_group(w: Working, location_id: str, customer_id: str) -> CustomerGroup:
    """The group a linked device already sits in."""
    return w.load(
        CustomerGroup,
        CustomerGroup.id_for(location_id, customer_id),
        Msg(
            "Partner {location_id} has no customer group for customer {customer_id}.",
            location_id=location_id,
            customer_id=customer_id,
        ),
    )


def link(
    w: Working, cause: Cause, device: Device, location_id: str, role: str, customer_name: str = ""
) -> None:
    """R-LNK-1…6: link, moving the device out of the old partner's group on a relink."""
    partner = load_partner(w, location_id)
    customer_id = _customer_of(device)
    old = device.links.get(role)
    device.link_partner(cause, location_id, role, partner.partner_type)
    if old is not None and old != location_id:
        existing_group(w, old, customer_id).remove_device(cause, device.serial, role)
    group = group_for(w, cause, partner, customer_id, customer_name)
    group.add_device(cause, device.serial, role, premium=device.care_plan is not None)


def unlink(w: Working, cause: Cause, device: Device, role: str) -> None:
    """R-LNK-6: the old partner loses the device from its views and its data access at once."""
    old = device.unlink_partner(cause, role)
    existing_group(w, old, _customer_of(device)).remove_device(cause, device.serial, role)


def _customer_of(device: Device) -> str:
    # Devices reach linking only through their owner, so the customer is always known here.
    assert device.customer_id is not None
    return device.customer_id
