"""Device: a server, storage system or PC by serial number, its partner links and consent."""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar, Literal
from uuid import UUID

from domain.base import (
    Cause,
    FleetAggregate,
    Msg,
    NotAllowedError,
    NotFoundError,
    fresh_natural_id,
    natural_id,
)
from domain.consent import ConsentError, ConsentRecords, ConsentState, consent_text_digest
from domain.device_support import Alert, DeviceError, DeviceSupport
from domain.service_level import ServiceLevel
from domain.text import TextError, canonical, serial_form

__all__ = [
    "CARE_PLANS",
    "CONNECTIONS",
    "LINK_ROLES",
    "Device",
    "DeviceError",
    "SerialError",
    "normalise_serial",
]

Connection = Literal["central_connect", "direct_connect", "pc_agent"]
CONNECTIONS: tuple[str, ...] = ("central_connect", "direct_connect", "pc_agent")
LinkRole = Literal["reseller", "service_partner"]
LINK_ROLES: tuple[str, ...] = ("reseller", "service_partner")
CARE_PLANS: tuple[str, ...] = ("premium", "premium_plus")


class SerialError(DeviceError, TextError):
    """A serial number that is not one: a malformed value (HTTP 422 naming `serial`), not a
    rule's refusal."""


def normalise_serial(serial: str) -> str:
    """Serial numbers are compared upper-case NFKC without surrounding blanks (serial_form).

    Raises `SerialError` ("serial: …") unless the result is 1-32 letters or digits."""
    # ASCII is its own NFKC: the common case skips serial_form's two normalisations.
    cleaned = serial.strip().upper() if serial.isascii() else serial_form(serial)
    if not cleaned or not cleaned.isalnum() or len(cleaned) > 32:
        raise SerialError(
            Msg(
                "serial: {serial!r} is not a serial number (1-32 letters or digits).", serial=serial
            )
        )
    return cleaned


class Device(FleetAggregate, DeviceSupport, ConsentRecords):
    """One device (R-LNK-*, R-CON-*, R-HLD-*, R-ALR-*, R-SVC-3).

    Version 2: consent follows the record in effect (R-CON-4, issue 8). A version 1 snapshot
    may hold consent re-opened by a correction of a past record, so it is never used
    (`snapshot_floor`); the device is replayed from its events and snapshotted afresh.
    """

    class_version = 2
    snapshot_floor: ClassVar[int] = 2

    serial: str
    connection: str
    customer_id: str | None
    model: str
    hosting_serial: str | None
    is_hosting_device: bool
    hosted: list[str]
    care_plan: str | None
    links: dict[str, str]  # role -> partner Location ID
    consent: ConsentState | None
    consent_versions: list[int]  # versions of this device's consent events (R-CON-4)
    placement: UUID | None  # holding tenant or customer dashboard (HP PCs)
    placement_owner: str | None  # Location ID of the partner owning that placement
    alerts: dict[str, Alert]
    service_levels: list[ServiceLevel]
    service_events: dict[str, str]  # event id -> severity
    # What e2Open reported beyond the state above, kept so a report seen again is compared
    # (R-HLD-1). Class defaults: None for PCs not reported by e2Open and in snapshots taken
    # before it was kept. Plain references, as every PC of a batch sets them.
    reported_distributor: str | None = None
    reported_ship_date: date | None = None
    reported_end_customer: str | None = None

    def __init__(self) -> None:
        """A new device: unlinked, without consent, placement, alerts or service levels."""
        self.customer_id, self.model = None, ""
        self.hosting_serial, self.is_hosting_device, self.hosted = None, False, []
        self.care_plan, self.links, self.consent, self.consent_versions = None, {}, None, []
        self.placement, self.placement_owner = None, None
        self.alerts, self.service_levels, self.service_events = {}, [], {}

    @staticmethod
    def id_for(serial: str) -> UUID:
        """The device id derived from its serial number."""
        return natural_id("device", normalise_serial(serial))

    @staticmethod
    def id_for_normal(serial: str) -> UUID:
        """`id_for` of a serial already in its normal form (normalise_serial's result),
        not cached (a new PC's id is derived once)."""
        return fresh_natural_id("device", serial)

    class Registered(FleetAggregate.Created):
        serial: str
        connection: str
        customer_id: str | None
        model: str
        hosting_serial: str | None
        is_hosting_device: bool
        care_plan: str | None

        def apply(self, aggregate: Device) -> None:
            aggregate.serial, aggregate.connection = self.serial, self.connection
            aggregate.customer_id, aggregate.model = self.customer_id, self.model
            aggregate.hosting_serial = self.hosting_serial
            aggregate.is_hosting_device = self.is_hosting_device
            aggregate.care_plan = self.care_plan

    @classmethod
    def register(
        cls,
        cause: Cause,
        *,
        serial: str,
        connection: str,
        customer_id: str,
        model: str = "",
        hosting_serial: str | None = None,
        is_hosting_device: bool = False,
        care_plan: str | None = None,
    ) -> Device:
        """Register a customer's device; central-connect devices name their Insight RS host."""
        serial = normalise_serial(serial)
        if connection not in CONNECTIONS:
            raise DeviceError(
                Msg(
                    "Unknown connection {connection!r}; use one of {known}.",
                    connection=connection,
                    known=CONNECTIONS,
                )
            )
        if (connection == "central_connect") != (hosting_serial is not None):
            raise DeviceError(
                Msg(
                    "Device {serial}: central-connect devices, and only they, name the "
                    "Insight RS hosting device that manages them.",
                    serial=serial,
                )
            )
        if care_plan is not None and care_plan not in CARE_PLANS:
            raise DeviceError(
                Msg(
                    "Unknown care plan {care_plan!r}; use one of {known}.",
                    care_plan=care_plan,
                    known=CARE_PLANS,
                )
            )
        if not customer_id.strip():
            raise DeviceError(
                Msg("Device {serial} needs the id of the customer who owns it.", serial=serial)
            )
        return cls._start(
            cls.Registered,
            cause,
            cls.id_for(serial),
            serial=serial,
            connection=connection,
            customer_id=customer_id,
            model=model,
            hosting_serial=hosting_serial,
            is_hosting_device=is_hosting_device,
            care_plan=care_plan,
        )

    class ReportedByE2Open(FleetAggregate.Created):
        # Every text of it passed E2OpenReport (feed_texts, normalise_serial) and the
        # command's Cause check: the save's backstop (check_storable) is skipped for the
        # thousands of these one e2Open batch records.
        texts_checked: ClassVar[bool] = True

        serial: str
        model: str
        reseller_location_id: str
        distributor: str
        ship_date: date
        end_customer: str | None
        care_plan: str
        holding_tenant_id: UUID

        def apply(self, aggregate: Device) -> None:
            aggregate.serial, aggregate.connection = self.serial, "pc_agent"
            aggregate.customer_id, aggregate.model = self.end_customer, self.model
            aggregate.care_plan = self.care_plan
            aggregate.placement = self.holding_tenant_id
            aggregate.placement_owner = self.reseller_location_id
            aggregate.reported_distributor = self.distributor
            aggregate.reported_ship_date = self.ship_date
            aggregate.reported_end_customer = self.end_customer

    def reported_alike(self, content: tuple[object, ...]) -> bool:
        """R-HLD-1: whether a report says nothing new of the PC.

        `content`: the report's (model, distributor, ship_date, end_customer, care_plan);
        the serial is its key and the reseller is compared by the caller. Without a kept
        report (enrolled by cPIN, or an old snapshot) there is nothing to compare with;
        such a PC of the same partner stays a duplicate, as it always was.
        """
        if self.reported_ship_date is None:
            return True
        kept = (
            self.model,
            self.reported_distributor,
            self.reported_ship_date,
            self.reported_end_customer,
            self.care_plan,
        )
        return canonical(kept) == canonical(content)  # "Müller" composed or not: alike

    @classmethod
    def land_in_holding_tenant(cls, cause: Cause, holding_tenant_id: UUID, **report: Any) -> Device:
        """R-HLD-1: a PC reported by e2Open lands in the reseller's holding tenant.

        `report`: the E2OpenReport's fields (serial, model, reseller_location_id,
        distributor, ship_date, end_customer, care_plan). The same event and aggregate as
        `_start` would make (tests/unit/test_issue_11_landing.py), built directly: one batch
        lands up to 100,000 PCs, and the library's generic construction (keyword filtering
        per call, twice) was half of the intake's CPU per PC (issue 11).
        """
        serial = normalise_serial(report.pop("serial"))
        device_id = natural_id("device", serial)
        event = object.__new__(cls.ReportedByE2Open)
        timestamp = cls.ReportedByE2Open.create_timestamp()
        vars(event).update(
            originator_id=device_id,
            originator_version=cls.INITIAL_VERSION,
            timestamp=timestamp,
            originator_topic=_DEVICE_TOPIC,
            principal=cause.principal,
            correlation_id=cause.correlation_id,
            serial=serial,
            model=report.pop("model"),
            reseller_location_id=report.pop("reseller_location_id"),
            distributor=report.pop("distributor"),
            ship_date=report.pop("ship_date"),
            end_customer=report.pop("end_customer", None),
            care_plan=report.pop("care_plan"),
            holding_tenant_id=holding_tenant_id,
        )
        if report:
            raise TypeError(f"Unable to construct 'ReportedByE2Open' event: {sorted(report)}")
        device = object.__new__(cls)  # as the event's mutate(None) makes it
        device.__base_init__(device_id, cls.INITIAL_VERSION, timestamp)
        device.__init__()  # type: ignore[misc]
        event.apply(device)
        device._pending_events.append(event)
        return device

    def require_owner(self, customer_id: str) -> None:
        """Only the customer who owns the device changes its links and consent.

        Another customer's device is "not found", in the words used for a serial nobody
        registered, so a refusal never shows that the device exists (`NotFoundError`).
        """
        if self.customer_id != customer_id:
            raise NotFoundError(Msg("No device with serial number {serial!r}.", serial=self.serial))

    class HostedDeviceAdded(FleetAggregate.Event):
        serial: str

        def apply(self, aggregate: Device) -> None:
            aggregate.hosted.append(self.serial)

    def host(self, cause: Cause, serial: str) -> None:
        """R-LNK-2, R-CON-1: this Insight RS hosting device now manages `serial`."""
        if not self.is_hosting_device:
            raise DeviceError(
                Msg("Device {serial} is not an Insight RS hosting device.", serial=self.serial)
            )
        self._record(self.HostedDeviceAdded, cause, serial=serial)

    class PartnerLinked(FleetAggregate.Event):
        location_id: str
        role: str

        def apply(self, aggregate: Device) -> None:
            aggregate.links[self.role] = self.location_id

    class PartnerUnlinked(FleetAggregate.Event):
        location_id: str
        role: str

        def apply(self, aggregate: Device) -> None:
            del aggregate.links[self.role]

    def link_partner(self, cause: Cause, location_id: str, role: str, partner_type: str) -> None:
        """R-LNK-1…4, R-LNK-6: link a partner in a role; a relink replaces the old partner."""
        if role not in LINK_ROLES:
            raise DeviceError(
                Msg(
                    "Unknown link role {role!r}; use one of {known}.",
                    role=role,
                    known=LINK_ROLES,
                )
            )
        if role == "service_partner" and partner_type != "service_partner":
            raise DeviceError(
                Msg(
                    "Partner {location_id} is not an accredited service partner; link it as "
                    "reseller.",
                    location_id=location_id,
                ),
                rule="R-LNK-4",
            )
        old = self.links.get(role)
        if old == location_id:
            return
        if old is not None:
            self._record(self.PartnerUnlinked, cause, location_id=old, role=role)
        self._record(self.PartnerLinked, cause, location_id=location_id, role=role)

    def unlink_partner(self, cause: Cause, role: str) -> str:
        """R-LNK-6: remove the partner linked in `role`; returns its Location ID."""
        old = self.links.get(role)
        if old is None:
            raise DeviceError(
                Msg(
                    "Device {serial} has no partner linked as {role}.",
                    serial=self.serial,
                    role=role,
                )
            )
        self._record(self.PartnerUnlinked, cause, location_id=old, role=role)
        return old

    def is_linked_to(self, location_id: str) -> bool:
        """R-LNK-1: linked to this partner in any role."""
        return location_id in self.links.values()

    class ConsentGranted(FleetAggregate.Event):
        """Version 2 added `scope` and `text_digest`; version 1 held only `text_version`."""

        class_version = 2
        text_version: str
        text_digest: str
        scope: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["scope"] = "device"
            state["text_digest"] = consent_text_digest(state["text_version"])

        def apply(self, aggregate: Device) -> None:
            aggregate.consent = ConsentState(self.text_version, self.scope)
            aggregate.consent_versions.append(self.originator_version)
            aggregate.consent_record = self.originator_version

    class ConsentWithdrawn(FleetAggregate.Event):
        text_version: str
        scope: str

        def apply(self, aggregate: Device) -> None:
            aggregate.consent = None
            aggregate.consent_versions.append(self.originator_version)
            aggregate.consent_record = self.originator_version

    class ConsentCorrected(FleetAggregate.Event):
        """R-CON-4: what record `corrects_version` should have said; today only if in effect."""

        corrects_version: int
        reason: str
        text_version: str | None  # the wording consent was given on; None: no consent

        def apply(self, aggregate: Device) -> None:
            aggregate.record_correction(
                self.originator_version, self.corrects_version, self.text_version
            )

    def correct_consent(
        self, cause: Cause, corrects_version: int, reason: str, text_version: str | None
    ) -> None:
        """R-CON-4: a wrong consent record is corrected by a new event, never rewritten."""
        if corrects_version not in self.consent_versions:
            raise ConsentError(
                Msg(
                    "Device {serial} has no consent record at version {corrects_version}; "
                    "its consent records are at versions {consent_versions}.",
                    serial=self.serial,
                    corrects_version=corrects_version,
                    consent_versions=self.consent_versions,
                )
            )
        if not reason.strip():
            raise ConsentError(
                Msg("A consent correction must say why the record was wrong."), rule="R-CON-4"
            )
        if text_version is not None:
            consent_text_digest(text_version)
        self._record(
            self.ConsentCorrected,
            cause,
            corrects_version=corrects_version,
            reason=reason.strip(),
            text_version=text_version,
        )

    def grant_consent(self, cause: Cause, text_version: str, scope: str = "device") -> None:
        """R-CON-1, R-CON-3: the customer opts in; granting again starts a new period."""
        self._check_consent_scope(scope)
        digest = consent_text_digest(text_version)
        if self.consent is not None and self.consent.text_version == text_version:
            raise ConsentError(
                Msg("Consent for device {serial} is already granted.", serial=self.serial)
            )
        self._record(
            self.ConsentGranted, cause, text_version=text_version, text_digest=digest, scope=scope
        )

    def withdraw_consent(self, cause: Cause, scope: str = "device") -> None:
        """R-CON-3: the customer withdraws consent; access ends at once."""
        self._check_consent_scope(scope)
        if self.consent is None:
            raise ConsentError(
                Msg("Consent for device {serial} is not granted.", serial=self.serial)
            )
        self._record(
            self.ConsentWithdrawn, cause, text_version=self.consent.text_version, scope=scope
        )

    def _check_consent_scope(self, scope: str) -> None:
        # R-CON-1: a central-connect device follows its hosting device's single setting.
        if self.connection == "central_connect" and scope == "device":
            raise ConsentError(
                Msg(
                    "Device {serial} is central-connect: set consent once on its Insight RS "
                    "hosting device {hosting_serial}.",
                    serial=self.serial,
                    hosting_serial=self.hosting_serial,
                ),
                rule="R-CON-1",
            )

    def may_read_configuration(self, location_id: str) -> bool:
        """R-CON-2: a partner reads configuration data only while linked and consent granted."""
        return self.consent is not None and self.is_linked_to(location_id)

    class ConfigurationCollected(FleetAggregate.Event):
        data: dict[str, Any]

        def apply(self, aggregate: Device) -> None:
            pass  # the data lives in the consent view; the aggregate needs none of it

    def collect_configuration(self, cause: Cause, data: dict[str, Any]) -> None:
        """R-CON-2: configuration data is kept only for a linked partner, with consent."""
        if self.consent is None:
            raise ConsentError(
                Msg(
                    "Configuration data of device {serial} is not collected: the customer "
                    "has not granted consent (Optimize my IT environment).",
                    serial=self.serial,
                ),
                rule="R-CON-2",
            )
        if not self.links:
            raise ConsentError(
                Msg(
                    "Configuration data of device {serial} is not collected: no partner is "
                    "linked, and without a partner HPE/HP does not receive it either.",
                    serial=self.serial,
                ),
                rule="R-CON-2",
            )
        if not data:
            raise DeviceError(Msg("Configuration data must not be empty."))
        self._record(self.ConfigurationCollected, cause, data=dict(data))

    class DeviceTransferred(FleetAggregate.Event):
        transfer_id: str
        source_id: UUID
        target_id: UUID

        def apply(self, aggregate: Device) -> None:
            aggregate.placement = self.target_id

    def transfer(
        self, cause: Cause, transfer_id: str, location_id: str, source_id: UUID, target_id: UUID
    ) -> None:
        """R-HLD-3: move a PC the partner can see from one source to one target."""
        if self.placement_owner != location_id:
            # Another partner's PC is "not found", as a serial nobody registered is.
            raise NotFoundError(Msg("No device with serial number {serial!r}.", serial=self.serial))
        if self.placement != source_id:
            raise DeviceError(
                Msg("PC {serial} is not in the transfer's source.", serial=self.serial),
                rule="R-HLD-3",
            )
        self._record(
            self.DeviceTransferred,
            cause,
            transfer_id=transfer_id,
            source_id=source_id,
            target_id=target_id,
        )

    class EnrolledWithCpin(FleetAggregate.Event):
        dashboard_id: UUID
        location_id: str
        customer_id: str

        def apply(self, aggregate: Device) -> None:
            aggregate.placement = self.dashboard_id
            aggregate.placement_owner = self.location_id
            aggregate.customer_id = self.customer_id

    def enrol_with_cpin(
        self, cause: Cause, dashboard_id: UUID, location_id: str, customer_id: str
    ) -> None:
        """R-HLD-3: the customer enrols its own PC into its dashboard with its cPIN."""
        if self.connection != "pc_agent":
            raise DeviceError(
                Msg(
                    "Device {serial} is not a PC; only PCs are enrolled by cPIN.",
                    serial=self.serial,
                ),
                rule="R-HLD-3",
            )
        if self.customer_id is not None and self.customer_id != customer_id:
            raise NotAllowedError(
                Msg("PC {serial} belongs to another customer.", serial=self.serial), rule="R-HLD-3"
            )
        if self.placement is not None:
            raise DeviceError(
                Msg(
                    "PC {serial} is already in a tenant; its partner transfers it instead.",
                    serial=self.serial,
                ),
                rule="R-HLD-3",
            )
        self._record(
            self.EnrolledWithCpin,
            cause,
            dashboard_id=dashboard_id,
            location_id=location_id,
            customer_id=customer_id,
        )


# What the created event's `originator_topic` names (eventsourcing's get_topic(Device)).
_DEVICE_TOPIC = f"{Device.__module__}:{Device.__qualname__}"
