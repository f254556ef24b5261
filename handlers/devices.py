"""Customer commands on devices: registration, links, consent (R-LNK-*, R-CON-*, R-PAR-3)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict

from domain.base import Cause, DomainError
from domain.consent import CURRENT_CONSENT_TEXT, ConsentError
from domain.device import Device, DeviceError, normalise_serial
from domain.service_level import ServiceLevel
from domain.text import checked
from handlers.base import FleetApplication, Working
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
    """The device with this serial number, or a refusal that says so."""
    return w.load(Device, Device.id_for(serial), f"No device with serial number {serial!r}.")


def owned_devices(w: Working, customer_id: str, serials: list[str]) -> list[Device]:
    """The chosen devices, each checked to belong to the customer; no serial twice."""
    if not serials:
        raise DeviceError("Choose at least one device.")
    cleaned = [normalise_serial(s) for s in serials]
    if len(set(cleaned)) != len(cleaned):
        raise DeviceError("A serial number is listed twice; list each device once.")
    devices = [load_device(w, s) for s in cleaned]
    for device in devices:
        device.require_owner(customer_id)
    return devices


def scope_of_host(host_serial: str) -> str:
    """The consent scope of a setting made once on an Insight RS hosting device."""
    return f"insight_rs_host:{host_serial}"


class DeviceCommands(FleetApplication):
    """What a customer does with its devices."""

    def register_devices(
        self,
        cause: Cause,
        customer_id: str,
        devices: list[NewDevice],
        partner: PartnerChoice | None = None,
        customer_name: str = "",
    ) -> None:
        """Register devices under the principal's Passport ID, optionally linking a partner."""

        def work(w: Working) -> None:
            serials = [normalise_serial(d.serial) for d in devices]
            if len(set(serials)) != len(serials):
                raise DeviceError("A serial number is listed twice; list each device once.")
            load_passport(w, cause, cause.principal).register_devices(cause, serials)
            for spec in devices:
                device = self._register_one(w, cause, customer_id, spec)
                if partner is not None:
                    link(w, cause, device, partner.location_id, partner.role, customer_name)

        self._execute("register_devices", cause, work)

    def _register_one(self, w: Working, cause: Cause, customer_id: str, spec: NewDevice) -> Device:
        # Optimistic first attempt (see Working.optimistic): a duplicate conflicts at save.
        device_id = Device.id_for(spec.serial)
        if device_id in w or (not w.optimistic and w.find(Device, device_id) is not None):
            raise DeviceError(f"Device {normalise_serial(spec.serial)} is already registered.")
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

    def link_devices(
        self,
        cause: Cause,
        customer_id: str,
        serials: list[str],
        partner: PartnerChoice,
        customer_name: str = "",
    ) -> None:
        """R-LNK-2, R-LNK-3: link the chosen devices (one or many) to a partner."""
        self._each_owned(
            "link_devices",
            cause,
            customer_id,
            serials,
            lambda w, d: link(w, cause, d, partner.location_id, partner.role, customer_name),
        )

    def unlink_devices(
        self, cause: Cause, customer_id: str, serials: list[str], role: str = "reseller"
    ) -> None:
        """R-LNK-6: remove the partner linked in `role` from the chosen devices."""
        self._each_owned(
            "unlink_devices", cause, customer_id, serials, lambda w, d: unlink(w, cause, d, role)
        )

    def set_hosting_partner(
        self,
        cause: Cause,
        customer_id: str,
        host_serial: str,
        partner: PartnerChoice,
        customer_name: str = "",
    ) -> None:
        """R-LNK-2: set the partner once in Insight RS for every device the host manages."""
        self._on_host(
            "set_hosting_partner",
            cause,
            customer_id,
            host_serial,
            lambda w, d: link(w, cause, d, partner.location_id, partner.role, customer_name),
        )

    def grant_consent(
        self,
        cause: Cause,
        customer_id: str,
        serials: list[str],
        text_version: str = CURRENT_CONSENT_TEXT,
    ) -> None:
        """R-CON-1, R-CON-3: grant consent for the chosen direct-connect devices."""
        self._each_owned(
            "grant_consent",
            cause,
            customer_id,
            serials,
            lambda _w, d: d.grant_consent(cause, text_version),
        )

    def withdraw_consent(self, cause: Cause, customer_id: str, serials: list[str]) -> None:
        """R-CON-3: withdraw consent for the chosen direct-connect devices."""
        self._each_owned(
            "withdraw_consent",
            cause,
            customer_id,
            serials,
            lambda _w, d: d.withdraw_consent(cause),
        )

    def grant_consent_on_host(
        self,
        cause: Cause,
        customer_id: str,
        host_serial: str,
        text_version: str = CURRENT_CONSENT_TEXT,
    ) -> None:
        """R-CON-1: one consent setting for all devices of an Insight RS hosting device."""
        scope = scope_of_host(normalise_serial(host_serial))

        def grant(_w: Working, device: Device) -> None:
            if device.consent is None or device.consent.text_version != text_version:
                device.grant_consent(cause, text_version, scope)

        self._on_host(
            "grant_consent_on_host",
            cause,
            customer_id,
            host_serial,
            grant,
            unchanged="Consent is already granted for every device of this host.",
        )

    def withdraw_consent_on_host(self, cause: Cause, customer_id: str, host_serial: str) -> None:
        """R-CON-1, R-CON-3: withdraw consent for every device of the hosting device."""
        scope = scope_of_host(normalise_serial(host_serial))

        def withdraw(_w: Working, device: Device) -> None:
            if device.consent is not None:
                device.withdraw_consent(cause, scope)

        self._on_host(
            "withdraw_consent_on_host",
            cause,
            customer_id,
            host_serial,
            withdraw,
            unchanged="No device of this host has consent to withdraw.",
        )

    def correct_consent_record(
        self,
        cause: Cause,
        serial: str,
        corrects_version: int,
        reason: str,
        text_version: str | None,
    ) -> None:
        """R-CON-4: correct a wrong consent record with a new event that says why."""
        self._execute(
            "correct_consent_record",
            cause,
            lambda w: load_device(w, serial).correct_consent(
                cause, corrects_version, reason, text_version
            ),
        )

    def collect_configuration(self, cause: Cause, serial: str, data: dict[str, Any]) -> None:
        """R-CON-2: keep configuration data reported by remote support, when allowed."""
        self._execute(
            "collect_configuration",
            cause,
            lambda w: load_device(w, serial).collect_configuration(cause, data),
        )

    def add_service_level(self, cause: Cause, serial: str, level: ServiceLevel) -> None:
        """R-SVC-3: record a warranty, support agreement or Care Pack for a device."""
        self._execute(
            "add_service_level",
            cause,
            lambda w: load_device(w, serial).add_service_level(cause, level),
        )

    def record_service_event(
        self, cause: Cause, serial: str, event_id: str, severity: str, summary: str
    ) -> None:
        """R-SVC-1: record a service event reported by remote support."""
        self._execute(
            "record_service_event",
            cause,
            lambda w: load_device(w, serial).record_service_event(
                cause, event_id, severity, summary
            ),
        )

    def choose_insight_rs_case_routing(
        self, cause: Cause, customer_id: str, serials: list[str], to_service_partner: bool
    ) -> None:
        """R-ALR-2: Insight RS cases to the service partner, or not; a host's choice is for all."""

        def choose(w: Working, device: Device) -> None:
            for each in [device, *(load_device(w, s) for s in device.hosted)]:
                each.choose_insight_rs_case_routing(cause, to_service_partner)

        self._each_owned("choose_insight_rs_case_routing", cause, customer_id, serials, choose)

    def device(self, serial: str) -> Device:
        """The device as recorded now."""
        return load_device(Working(self), serial)

    def may_read_configuration(self, serial: str, location_id: str) -> bool:
        """R-CON-2: whether the partner may read the device's configuration data now.

        The Location ID is taken as commands take keys (NFC); `TextError` for one no
        command would accept.
        """
        return self.device(serial).may_read_configuration(checked("location_id", location_id))

    def _each_owned(
        self,
        command: str,
        cause: Cause,
        customer_id: str,
        serials: list[str],
        change: Callable[[Working, Device], None],
    ) -> None:
        def work(w: Working) -> None:
            for device in owned_devices(w, customer_id, serials):
                change(w, device)

        self._execute(command, cause, work)

    def _on_host(
        self,
        command: str,
        cause: Cause,
        customer_id: str,
        host_serial: str,
        change: Callable[[Working, Device], None],
        unchanged: str | None = None,
    ) -> None:
        def work(w: Working) -> None:
            host = load_device(w, host_serial)
            host.require_owner(customer_id)
            if not host.is_hosting_device:
                raise DomainError(f"Device {host.serial} is not an Insight RS hosting device.")
            devices = [host, *(load_device(w, s) for s in host.hosted)]
            for device in devices:
                change(w, device)
            if unchanged and not any(device.pending_events for device in devices):
                raise ConsentError(f"Host {host.serial}: {unchanged}")

        self._execute(command, cause, work)
