"""Customer commands on devices: registration, links, consent (R-LNK-*, R-CON-*, R-PAR-3)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from domain.base import Cause, DomainError, Msg, natural_id
from domain.consent import CURRENT_CONSENT_TEXT, ConsentError
from domain.customer_group import CustomerGroup
from domain.device import Device, DeviceError, normalise_serial
from domain.partner import PartnerTenant
from domain.service_level import ServiceLevel
from domain.text import checked
from handlers.access import Actor, Role
from handlers.base import FleetApplication, Working, command
from handlers.linking import link, unlink
from handlers.partners import load_passport


class NewDevice(BaseModel):
    """A device as the customer registers it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    serial: str
    connection: str
    model: str = ""
    hosting_serial: str | None = None
    is_hosting_device: bool = False
    care_plan: str | None = None


class PartnerChoice(BaseModel):
    """The partner a customer links, and in which role (R-LNK-4)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    location_id: str
    role: str = "reseller"


def load_device(w: Working, serial: str) -> Device:
    """The device with this serial number, or a refusal that says so (`NotFoundError`)."""
    return _device_of(w, serial, Device.id_for(serial))


def _device_of(w: Working, serial: str, device_id: UUID) -> Device:
    """`w.load` of the device, its refusal's words made only when refused (session 20)."""
    return w.load(
        Device, device_id, lambda: Msg("No device with serial number {serial!r}.", serial=serial)
    )


def device_ids(serials: list[str]) -> list[UUID]:
    """The ids of the devices named, for a prefetch hint: a serial that is no serial number
    is left out (the command refuses it in its own words and order)."""
    ids = []
    for serial in serials:
        try:
            ids.append(Device.id_for(serial))
        except DomainError:
            continue
    return ids


def owned_devices(w: Working, customer_id: str, serials: list[str]) -> list[Device]:
    """The chosen devices, each checked to belong to the customer; no serial twice."""
    if not serials:
        raise DeviceError(Msg("Choose at least one device."))
    cleaned = [normalise_serial(s) for s in serials]
    if len(set(cleaned)) != len(cleaned):
        raise DeviceError(Msg("A serial number is listed twice; list each device once."))
    # An ASCII serial in its normal form is its own normal form: its id without a third
    # `normalise_serial` (`Device.id_for`'s); any other goes through it as before.
    devices = [
        _device_of(w, s, natural_id("device", s)) if s.isascii() else load_device(w, s)
        for s in cleaned
    ]
    for device in devices:
        device.require_owner(customer_id)
    return devices


def scope_of_host(host_serial: str) -> str:
    """The consent scope of a setting made once on an Insight RS hosting device."""
    return f"insight_rs_host:{host_serial}"


def host_and_hosted(w: Working, customer_id: str, host_serial: str) -> list[Device]:
    """R-LNK-2, R-CON-1: the customer's Insight RS hosting device, then every device it manages."""
    host = load_device(w, host_serial)
    host.require_owner(customer_id)
    if not host.is_hosting_device:
        raise DomainError(
            Msg("Device {serial} is not an Insight RS hosting device.", serial=host.serial)
        )
    return [host, *(load_device(w, s) for s in host.hosted)]


def require_change(devices: list[Device], unchanged: Msg) -> None:
    """A setting made on a host that changes none of its devices is refused, saying why."""
    if not any(device.pending_events for device in devices):
        raise ConsentError(
            Msg("Host {serial}: {unchanged}", serial=devices[0].serial, unchanged=unchanged)
        )


CUSTOMER_ADMIN = Role.CUSTOMER_ADMIN
# Remote support reports through the feed; HP/HPE operations may do the same by hand.
INTAKE = (Role.FEED, Role.OPERATOR)


class DeviceCommands(FleetApplication):
    """What a customer does with its devices, and what remote support reports of them."""

    @command(CUSTOMER_ADMIN, tenant="customer_id")
    def register_devices(
        self,
        w: Working,
        actor: Actor,
        customer_id: str,
        devices: list[NewDevice],
        partner: PartnerChoice | None = None,
        customer_name: str = "",
    ) -> None:
        """R-PAR-3, R-LNK-3: register devices under the actor's Passport ID (at most 1,500
        per Passport ID), optionally linking a partner."""
        serials = [normalise_serial(d.serial) for d in devices]
        if len(set(serials)) != len(serials):
            raise DeviceError(Msg("A serial number is listed twice; list each device once."))
        load_passport(w, actor, actor.subject).register_devices(actor, serials)
        for spec in devices:
            device = self._register_one(w, actor, customer_id, spec)
            if partner is not None:
                link(w, actor, device, partner.location_id, partner.role, customer_name)

    def _register_one(self, w: Working, cause: Cause, customer_id: str, spec: NewDevice) -> Device:
        # Optimistic first attempt (see Working.optimistic): a duplicate conflicts at save.
        device_id = Device.id_for(spec.serial)
        if device_id in w or (not w.optimistic and w.find(Device, device_id) is not None):
            raise DeviceError(
                Msg(
                    "Device {serial} is already registered.",
                    serial=normalise_serial(spec.serial),
                )
            )
        device = w.add(Device.register(cause, customer_id=customer_id, **spec.model_dump()))
        if spec.hosting_serial is not None:
            self._attach_to_host(w, cause, device, spec.hosting_serial)
        return device

    def _attach_to_host(self, w: Working, cause: Cause, device: Device, host_serial: str) -> None:
        # R-LNK-2, R-CON-1: a new central-connect device follows its host's settings.
        host = load_device(w, host_serial)
        host.require_owner(device.customer_id or "")
        host.host(cause, device.serial)
        for role, location_id in host.links.items():
            link(w, cause, device, location_id, role)
        if host.consent is not None:
            device.grant_consent(cause, host.consent.text_version, scope_of_host(host.serial))
        if host.insight_rs_cases_to_service_partner:
            device.choose_insight_rs_case_routing(cause, to_service_partner=True)

    @command(CUSTOMER_ADMIN, tenant="customer_id")
    def link_devices(
        self,
        w: Working,
        actor: Actor,
        customer_id: str,
        serials: list[str],
        partner: PartnerChoice,
        customer_name: str = "",
    ) -> None:
        """R-LNK-2, R-LNK-3: link the chosen devices (one or many) to a partner."""
        w.prefetch(  # one round trip for the devices, the partner and its customer group
            *device_ids(serials),
            PartnerTenant.id_for(partner.location_id),
            CustomerGroup.id_for(partner.location_id, customer_id),
        )
        for device in owned_devices(w, customer_id, serials):
            link(w, actor, device, partner.location_id, partner.role, customer_name)

    @command(CUSTOMER_ADMIN, tenant="customer_id")
    def unlink_devices(
        self, w: Working, actor: Actor, customer_id: str, serials: list[str], role: str = "reseller"
    ) -> None:
        """R-LNK-6: remove the partner linked in `role` from the chosen devices."""
        for device in owned_devices(w, customer_id, serials):
            unlink(w, actor, device, role)

    @command(CUSTOMER_ADMIN, tenant="customer_id")
    def set_hosting_partner(
        self,
        w: Working,
        actor: Actor,
        customer_id: str,
        host_serial: str,
        partner: PartnerChoice,
        customer_name: str = "",
    ) -> None:
        """R-LNK-2: set the partner once in Insight RS for every device the host manages."""
        for device in host_and_hosted(w, customer_id, host_serial):
            link(w, actor, device, partner.location_id, partner.role, customer_name)

    @command(CUSTOMER_ADMIN, tenant="customer_id")
    def grant_consent(
        self,
        w: Working,
        actor: Actor,
        customer_id: str,
        serials: list[str],
        text_version: str = CURRENT_CONSENT_TEXT,
    ) -> None:
        """R-CON-1, R-CON-3: grant consent for the chosen direct-connect devices."""
        w.prefetch(*device_ids(serials))
        for device in owned_devices(w, customer_id, serials):
            device.grant_consent(actor, text_version)

    @command(CUSTOMER_ADMIN, tenant="customer_id")
    def withdraw_consent(
        self, w: Working, actor: Actor, customer_id: str, serials: list[str]
    ) -> None:
        """R-CON-3: withdraw consent for the chosen direct-connect devices."""
        w.prefetch(*device_ids(serials))
        for device in owned_devices(w, customer_id, serials):
            device.withdraw_consent(actor)

    @command(CUSTOMER_ADMIN, tenant="customer_id")
    def grant_consent_on_host(
        self,
        w: Working,
        actor: Actor,
        customer_id: str,
        host_serial: str,
        text_version: str = CURRENT_CONSENT_TEXT,
    ) -> None:
        """R-CON-1: one consent setting for all devices of an Insight RS hosting device."""
        devices = host_and_hosted(w, customer_id, host_serial)
        scope = scope_of_host(devices[0].serial)
        for device in devices:
            if device.consent is None or device.consent.text_version != text_version:
                device.grant_consent(actor, text_version, scope)
        require_change(devices, Msg("Consent is already granted for every device of this host."))

    @command(CUSTOMER_ADMIN, tenant="customer_id")
    def withdraw_consent_on_host(
        self, w: Working, actor: Actor, customer_id: str, host_serial: str
    ) -> None:
        """R-CON-1, R-CON-3: withdraw consent for every device of the hosting device."""
        devices = host_and_hosted(w, customer_id, host_serial)
        scope = scope_of_host(devices[0].serial)
        for device in devices:
            if device.consent is not None:
                device.withdraw_consent(actor, scope)
        require_change(devices, Msg("No device of this host has consent to withdraw."))

    @command(Role.AUDITOR, Role.OPERATOR)
    def correct_consent_record(
        self,
        w: Working,
        actor: Actor,
        serial: str,
        corrects_version: int,
        reason: str,
        text_version: str | None,
    ) -> None:
        """R-CON-4: correct a wrong consent record with a new event that says why (a
        non-blank reason); by an auditor or HP/HPE operations, never the customer."""
        load_device(w, serial).correct_consent(actor, corrects_version, reason, text_version)

    @command(*INTAKE)
    def collect_configuration(
        self, w: Working, actor: Actor, serial: str, data: dict[str, Any]
    ) -> None:
        """R-CON-2: keep configuration data reported by remote support, when allowed."""
        load_device(w, serial).collect_configuration(actor, data)

    @command(*INTAKE)
    def add_service_level(self, w: Working, actor: Actor, serial: str, level: ServiceLevel) -> None:
        """R-SVC-3: record a warranty, support agreement or Care Pack for a device."""
        load_device(w, serial).add_service_level(actor, level)

    @command(*INTAKE)
    def record_service_event(
        self, w: Working, actor: Actor, serial: str, event_id: str, severity: str, summary: str
    ) -> None:
        """R-SVC-1: record a service event reported by remote support."""
        load_device(w, serial).record_service_event(actor, event_id, severity, summary)

    @command(CUSTOMER_ADMIN, tenant="customer_id")
    def choose_insight_rs_case_routing(
        self,
        w: Working,
        actor: Actor,
        customer_id: str,
        serials: list[str],
        to_service_partner: bool,
    ) -> None:
        """R-ALR-2: Insight RS cases to the service partner, or not; a host's choice is for all."""
        for device in owned_devices(w, customer_id, serials):
            for each in [device, *(load_device(w, s) for s in device.hosted)]:
                each.choose_insight_rs_case_routing(actor, to_service_partner)

    def device(self, serial: str) -> Device:
        """The device as recorded now."""
        return load_device(Working(self), serial)

    def may_read_configuration(self, serial: str, location_id: str) -> bool:
        """R-CON-2: whether the partner may read the device's configuration data now.

        The Location ID is taken as commands take keys (NFC); `TextError` for one no
        command would accept.
        """
        return self.device(serial).may_read_configuration(checked("location_id", location_id))
