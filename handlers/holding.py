"""HP Premium commands: holding tenant intake, dashboards, transfers, alerts (R-HLD-*, R-ALR-*)."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterable, Sequence
from functools import partial
from typing import cast
from uuid import UUID

import structlog
from pydantic import ValidationError

from domain import base as domain_base
from domain.base import Cause, DomainError, Msg, NotFoundError
from domain.cpin import DEMO_KEY, SALT_BYTES, CpinKeyMismatchError, cpin_verifier
from domain.customer_group import PLACED, CustomerGroup, CustomerGroupError
from domain.device import Device, DeviceError, SerialError
from domain.e2open_screen import screened_reports
from domain.intake import E2OpenBatch, E2OpenReport, PlainReport, Unreadable, plain_report
from domain.partner import PartnerTenant
from domain.text import serial_form
from handlers.access import Actor, ForbiddenError, Role
from handlers.base import FleetApplication, Working, command
from handlers.customers import load_group, missing_group
from handlers.devices import device_ids, load_device
from handlers.intake import (
    Delivery,
    DuplicateError,
    IntakeOutcome,
    RejectedError,
    collection_paused,
    malformed,
    take_batch,
)
from handlers.landing import Landing
from handlers.linking import group_for
from handlers.partners import load_partner

log = structlog.get_logger("partnerfleet.holding")


PARTNER = (Role.PARTNER_ADMIN, Role.PARTNER_USER)
# Self-service cases come from the PC's end user (or the customer's admin); Insight RS
# cases from remote support (the feed) or HP/HPE operations by hand (R-ALR-1, R-ALR-2).
CASE_SUBMITTERS = {
    "self_service": frozenset({Role.END_USER, Role.CUSTOMER_ADMIN}),
    "insight_rs": frozenset({Role.FEED, Role.OPERATOR}),
}


def device_for(w: Working, actor: Actor, serial: str) -> Device:
    """The device as the actor may name it; another's is "not found", in the words used for
    a serial nobody registered. A customer admin names its customer's devices; an end user
    only a PC it works on (`actor.pcs`) of its customer, or one no customer is recorded for
    yet (an unassigned PC in a holding tenant: its pop-up goes to whoever works on it,
    R-ALR-1). Feed, operator and policy name any device."""
    device = load_device(w, serial)
    if actor.role is Role.END_USER:
        if all(serial_form(pc) != device.serial for pc in actor.pcs):
            raise NotFoundError(
                Msg("No device with serial number {serial!r}.", serial=device.serial)
            )
        if device.customer_id is not None:
            device.require_owner(actor.tenant)
    elif actor.role is Role.CUSTOMER_ADMIN:
        device.require_owner(actor.tenant)
    return device


# natural_id("device", serial)'s name: Device.id_for_normal(s) is _uuid5(DEVICE_ID_PREFIX + s)
# for an ASCII serial.
DEVICE_ID_PREFIX = "device:"


class HoldingCommands(FleetApplication):
    """Holding tenant, customer dashboards, transfers, self-service notifications, alerts."""

    cpin_key: bytes = DEMO_KEY  # infra.bootstrap passes Settings' CPIN_KEY (domain/cpin.py)

    @collection_paused()
    @command(Role.FEED, Role.OPERATOR)
    def receive_e2open_batch(
        self,
        w: Working,
        actor: Actor,
        batch_id: str,
        reports: Sequence[object],
        *,
        fingerprint: str | None = None,
    ) -> IntakeOutcome:
        """R-HLD-1: land reported PCs in holding tenants, keep every rejection; one transaction.

        `reports` are JSON values (dicts) or `Unreadable`s, at most MAX_BATCH_MESSAGES
        (else IntakeError, nothing recorded). The batch id is an idempotency key: the same
        reports again repeat the first outcome; other reports under it are refused, each
        kept as rejected ("batch id … was already received with different content").
        A feed consumer passes the `fingerprint` of the raw bytes it read the reports from
        (with feed_bounds.read_message); without it the reports are bounded and hashed here.
        By the e2Open feed, or by HP/HPE operations by hand.
        """
        delivery = Delivery.of(E2OpenBatch, batch_id, reports, fingerprint, screened_reports)
        landing = Landing(self.mapper, actor)
        # What the command reads, in one round trip before its first row: a read while a
        # stream holds the table lock would end the stream (Working._end_stream_to_read).
        # A retry (after a PC landed before) looks each PC up: all of them here too.
        named = [E2OpenBatch.id_for(delivery.batch_id), *_partners_named(delivery)]
        w.prefetch(*named, *([] if w.optimistic else _pcs_named(delivery)))
        if landing.available:  # the PCs' rows go to the store as they are made
            w.stream_encoded(len(delivery.messages))
        plain = _plain_forms(delivery) if landing.available and w.optimistic else None
        # A partial, not a lambda: one Python frame less per report (session 19).
        land = partial(self._land, w, actor, landing)
        return take_batch(w, actor, E2OpenBatch, delivery, land, plain)

    def _land(
        self, w: Working, cause: Cause, landing: Landing, raw: object, plain: PlainReport | None
    ) -> str:
        """Land one report (`plain`: its plain form, if it has one and the command lands
        plain reports) and return its serial, or raise RejectedError with the reason."""
        if isinstance(raw, Unreadable):
            raise RejectedError(raw.reason)
        if plain is not None and (serial := self._place_plain(w, plain, landing)) is not None:
            return serial
        try:
            report = E2OpenReport.model_validate(raw)
        except ValidationError as error:
            raise malformed("report", error) from None
        try:
            return self._place(w, cause, report, landing)
        except DomainError as refused:
            raise RejectedError(str(refused)) from None

    def _place_plain(self, w: Working, report: PlainReport, landing: Landing) -> str | None:
        """Land a report in its plain form, encoded directly (issue 11: the batch's hot
        path, on the first attempt); None when this command touched its PC already (a
        serial twice in one batch: the model's path says which R-HLD-1 outcome it is)."""
        serial = report[0]
        # _holding's known answer inline (one frame less per report, session 18).
        holding = landing.holdings.get(report[2])
        if type(holding) is not UUID:
            holding = _holding(w, report[2], landing)
        if serial in landing.landed:
            return None
        # Device.id_for_normal(serial) without its two frames: a plain serial is ASCII
        # letters and digits, so fresh_natural_id would not normalise it.
        device_id = domain_base._uuid5(DEVICE_ID_PREFIX + serial)
        w.add_encoded(device_id, landing.plain_row(device_id, report, holding))
        landing.landed.add(serial)
        return serial

    def _place(self, w: Working, cause: Cause, report: E2OpenReport, landing: Landing) -> str:
        """Land a valid report in its reseller's holding tenant (or find it landed before).

        The PC's created event is encoded directly when the codec allows (`Landing`,
        issue 11): the same stored event as the `Device` aggregate's."""
        holding = _holding(w, report.reseller_location_id, landing)
        device_id = Device.id_for(report.serial)
        # Optimistic first attempt: no lookup per PC; if one exists, the save conflicts and
        # the retry looks each one up. All or nothing either way. Twice in one batch: the
        # first one landed and is in `w`.
        known = w.has(device_id) or not w.optimistic
        existing = w.find(Device, device_id) if known else None
        if existing is not None:
            raise _known(existing, report)
        if landing.available:
            w.add_encoded(device_id, landing.row(device_id, report, holding))
            landing.landed.add(report.serial)
        else:
            w.add(Device.land_in_holding_tenant(cause, holding, **report.model_dump()))
        return report.serial

    @command(*PARTNER, tenant="location_id")
    def create_customer_dashboard(
        self,
        w: Working,
        actor: Actor,
        location_id: str,
        customer_id: str,
        customer_name: str,
        cpin: str,
    ) -> UUID:
        """R-HLD-3: a partner creates a customer dashboard for a customer and its cPIN."""
        partner = load_partner(w, location_id)
        partner.require_holding_tenant()
        group = group_for(w, actor, partner, customer_id, customer_name)
        group.make_dashboard(actor, cpin, self._new_cpin_verifier(cpin))
        return group.id

    def _new_cpin_verifier(self, cpin: str) -> str:
        # The domain draws no randomness and reads no key: both come from here.
        return cpin_verifier(cpin, self.cpin_key, secrets.token_bytes(SALT_BYTES))

    @command(*PARTNER, tenant="location_id")
    def transfer_devices(
        self,
        w: Working,
        actor: Actor,
        location_id: str,
        serials: list[str],
        source_id: UUID,
        target_id: UUID,
        transfer_id: str,
    ) -> None:
        """R-HLD-3: move PCs the partner can see from one source to one target, or back."""
        # The holding tenant is no aggregate (`_tenant`): prefetching its id would only
        # ask the store for nothing (a round trip per transfer from or to it).
        holding = PartnerTenant.holding_tenant_id_for(location_id)
        tenants = [i for i in (source_id, target_id) if i != holding]
        w.prefetch(PartnerTenant.id_for(location_id), *tenants, *device_ids(serials))
        partner = load_partner(w, location_id)
        if source_id == target_id:
            raise DeviceError(
                Msg("A transfer needs a target other than its source."), rule="R-HLD-3"
            )
        if not serials:
            raise DeviceError(Msg("Choose at least one PC to transfer."))
        source = self._tenant(w, partner, source_id, "R-HLD-3")
        target = self._tenant(w, partner, target_id, "R-HLD-3")
        for serial in serials:
            device = load_device(w, serial)
            device.transfer(actor, transfer_id, location_id, source_id, target_id)
            if source is not None:
                source.remove_device(actor, device.serial, PLACED)
            if target is not None:
                target.add_device(actor, device.serial, PLACED, device.care_plan is not None)

    def _tenant(
        self, w: Working, partner: PartnerTenant, tenant_id: UUID, rule: str
    ) -> CustomerGroup | None:
        """None for the partner's holding tenant, else one of its customer dashboards; any
        other id is not found, another partner's dashboard as a missing one (R-HLD-3). A
        group that is no dashboard is refused under `rule`, the caller's."""
        if tenant_id == partner.holding_tenant_id:
            return None
        group = w.find(CustomerGroup, tenant_id)
        if group is None or group.partner_location_id != partner.location_id:
            raise NotFoundError(
                Msg(
                    "Partner {location_id} has no tenant {tenant_id}.",
                    location_id=partner.location_id,
                    tenant_id=tenant_id,
                )
            )
        group.require_open()
        if not group.is_dashboard:
            raise CustomerGroupError(
                Msg(
                    "{customer_name} has no customer dashboard yet.",
                    customer_name=group.customer_name,
                ),
                rule=rule,
            )
        return group

    @command(Role.CUSTOMER_ADMIN, tenant="customer_id")
    def enrol_with_cpin(
        self,
        w: Working,
        actor: Actor,
        customer_id: str,
        dashboard_id: UUID,
        cpin: str,
        serial: str,
        model: str = "",
        care_plan: str | None = None,
    ) -> None:
        """R-HLD-3: the customer enrols a PC into its own dashboard with its cPIN; another
        customer's dashboard is not found."""
        group = load_group(w, dashboard_id)
        if group.customer_id != customer_id:
            raise NotFoundError(missing_group(dashboard_id))
        self._check_cpin(group, cpin)
        group.require_open()
        device = w.find(Device, Device.id_for(serial)) or w.add(
            Device.register(
                actor,
                serial=serial,
                connection="pc_agent",
                customer_id=customer_id,
                model=model,
                care_plan=care_plan,
            )
        )
        device.enrol_with_cpin(actor, group.id, group.partner_location_id, customer_id)
        group.add_device(actor, device.serial, PLACED, device.care_plan is not None)

    def _check_cpin(self, group: CustomerGroup, cpin: str) -> None:
        try:
            group.check_cpin(cpin, self.cpin_key)
        except CpinKeyMismatchError as error:  # the service is misconfigured, not the customer
            log.error("cpin_key_mismatch", dashboard_id=str(group.id), reason=str(error))
            raise

    @command(*PARTNER, tenant="location_id")
    def switch_self_service_notifications(
        self, w: Working, actor: Actor, location_id: str, tenant_id: UUID, on: bool
    ) -> None:
        """R-ALR-4: the partner switches the end users' pop-ups of a customer dashboard."""
        group = self._tenant(w, load_partner(w, location_id), tenant_id, "R-ALR-4")
        if group is None:
            raise CustomerGroupError(
                Msg(
                    "Self-service notifications of the holding tenant cannot be switched off; "
                    "create a customer dashboard and transfer the PCs into it first."
                ),
                rule="R-ALR-4",
            )
        group.switch_self_service_notifications(actor, on)

    @command(Role.FEED, Role.OPERATOR)
    def raise_alert(
        self, w: Working, actor: Actor, serial: str, alert_id: str, severity: str, message: str
    ) -> None:
        """R-ALR-1: record an alert for a device (remote support, or operations by hand)."""
        load_device(w, serial).raise_alert(actor, alert_id, severity, message)

    @command(Role.END_USER, Role.CUSTOMER_ADMIN, Role.FEED, Role.OPERATOR)
    def submit_repair_case(
        self,
        w: Working,
        actor: Actor,
        serial: str,
        alert_id: str,
        case_id: str,
        source: str = "self_service",
    ) -> None:
        """R-ALR-1, R-ALR-2: submit the repair case from an alert: self-service by the PC's
        end user (or the customer's admin) for its own device, Insight RS by the feed or
        operations; another's device is not found."""
        submitters = CASE_SUBMITTERS.get(source)
        if submitters is not None and actor.role not in submitters:
            raise ForbiddenError(
                Msg(
                    "The role {role} may not submit {source} cases.",
                    role=actor.role.value,
                    source=source.replace("_", " "),
                ),
                rule="R-ALR-1" if source == "self_service" else "R-ALR-2",
            )
        device_for(w, actor, serial).submit_repair_case(actor, alert_id, case_id, source)


def _plain_forms(delivery: Delivery) -> Iterable[PlainReport | None]:
    """Each report's plain form: the screen's for a batch given as values (session 19),
    else taken here (a feed's batch, read from bytes with its fingerprint)."""
    if delivery.forms is not None:
        return cast(Sequence[PlainReport | None], delivery.forms)
    return map(plain_report, delivery.messages)


def _partners_named(delivery: Delivery) -> list[UUID]:
    """The partner ids a batch's reports name (as text, spelt as given and stripped), once
    each: what `_holding` looks up."""
    given = {  # a batch names a few partners: each is stripped once (session 18)
        location
        for raw in delivery.messages
        if isinstance(raw, dict) and isinstance(location := raw.get("reseller_location_id"), str)
    }
    named = given.union(location.strip() for location in given)
    return [PartnerTenant.id_for(location) for location in named]


def _pcs_named(delivery: Delivery) -> list[UUID]:
    """The device ids of the serials a batch's reports name (those that are serials): what
    `_place` looks up on a retry."""
    named: set[UUID] = set()
    for raw in delivery.messages:
        serial = raw.get("serial") if isinstance(raw, dict) else None
        if isinstance(serial, str):
            with contextlib.suppress(SerialError):
                named.add(Device.id_for(serial))
    return list(named)


def _holding(w: Working, location_id: str, landing: Landing) -> UUID:
    """The holding tenant of the partner a report names; RejectedError when there is none.
    Once per Location ID and batch (`landing.holdings`)."""
    holding = landing.holdings.get(location_id)
    if holding is None:
        holding = landing.holdings[location_id] = _holding_or_reason(w, location_id)
    if isinstance(holding, str):
        raise RejectedError(holding)
    return holding


def _holding_or_reason(w: Working, location_id: str) -> UUID | str:
    """The holding tenant of the partner a report names, or why its PCs are rejected."""
    partner = w.find(PartnerTenant, PartnerTenant.id_for(location_id))
    if partner is None:
        return f"unknown partner Location ID {location_id}"
    if partner.holding_tenant_id is None:
        return f"partner {location_id} has no holding tenant (not certified)"
    return partner.holding_tenant_id


def _known(device: Device, report: E2OpenReport) -> Exception:
    """R-HLD-1: a serial landed before is a duplicate only if its report says the same."""
    if device.placement_owner != report.reseller_location_id:
        return RejectedError(f"device {report.serial} is already registered")
    content = (
        report.model,
        report.distributor,
        report.ship_date,
        report.end_customer,
        report.care_plan,
    )
    if not device.reported_alike(content):
        return RejectedError(
            f"device {report.serial} was already reported with different content; "
            "send a correction to HP operations instead of a new report"
        )
    return DuplicateError(report.serial)  # a redelivered report: nothing new
