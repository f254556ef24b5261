"""HP Premium commands: holding tenant intake, dashboards, transfers, alerts (R-HLD-*, R-ALR-*)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from uuid import UUID

import structlog
from pydantic import ValidationError

from domain.base import Cause, DomainError, NotAllowedError
from domain.cpin import DEMO_KEY, SALT_BYTES, CpinKeyMismatchError, cpin_verifier
from domain.customer_group import PLACED, CustomerGroup, CustomerGroupError
from domain.device import Device, DeviceError
from domain.intake import E2OpenBatch, E2OpenReport, Unreadable
from domain.partner import PartnerTenant
from handlers.base import Working
from handlers.customers import load_group
from handlers.devices import load_device
from handlers.intake import (
    BatchIntake,
    DuplicateError,
    IntakeOutcome,
    RejectedError,
    malformed,
)
from handlers.linking import group_for
from handlers.partners import load_partner_as_user

log = structlog.get_logger("partnerfleet.holding")


class HoldingCommands(BatchIntake):
    """Holding tenant, customer dashboards, transfers, self-service notifications, alerts."""

    cpin_key: bytes = DEMO_KEY  # infra.bootstrap passes Settings' CPIN_KEY (domain/cpin.py)

    def receive_e2open_batch(
        self,
        cause: Cause,
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
        """
        return self._receive(
            "receive_e2open_batch",
            cause,
            E2OpenBatch,
            (batch_id, reports, fingerprint),
            lambda w, raw: self._land(w, cause, raw),
        )

    def _land(self, w: Working, cause: Cause, raw: object) -> str:
        """Land one report and return its serial, or raise RejectedError with the reason."""
        if isinstance(raw, Unreadable):
            raise RejectedError(raw.reason)
        try:
            report = E2OpenReport.model_validate(raw)
        except ValidationError as error:
            raise malformed("report", error) from None
        try:
            return self._place(w, cause, report)
        except DomainError as refused:
            raise RejectedError(str(refused)) from None

    def _place(self, w: Working, cause: Cause, report: E2OpenReport) -> str:
        """Land a valid report in its reseller's holding tenant (or find it landed before)."""
        partner = w.find(PartnerTenant, PartnerTenant.id_for(report.reseller_location_id))
        if partner is None:
            raise RejectedError(f"unknown partner Location ID {report.reseller_location_id}")
        if partner.holding_tenant_id is None:
            raise RejectedError(
                f"partner {report.reseller_location_id} has no holding tenant (not certified)"
            )
        device_id = Device.id_for(report.serial)
        # Optimistic first attempt: no lookup per PC; if one exists, the save conflicts and
        # the retry looks each one up. All or nothing either way. Twice in one batch: the
        # first one landed and is in `w`.
        known = device_id in w or not w.optimistic
        existing = w.find(Device, device_id) if known else None
        if existing is not None:
            raise _known(existing, report)
        w.add(
            Device.land_in_holding_tenant(cause, partner.holding_tenant_id, **report.model_dump())
        )
        return report.serial

    def create_customer_dashboard(
        self, cause: Cause, location_id: str, customer_id: str, customer_name: str, cpin: str
    ) -> UUID:
        """R-HLD-3: a partner creates a customer dashboard for a customer and its cPIN."""

        def work(w: Working) -> UUID:
            partner = load_partner_as_user(w, cause, location_id)
            partner.require_holding_tenant()
            group = group_for(w, cause, partner, customer_id, customer_name)
            group.make_dashboard(cause, cpin, self._new_cpin_verifier(cpin))
            return group.id

        return self._execute("create_customer_dashboard", cause, work)

    def _new_cpin_verifier(self, cpin: str) -> str:
        # The domain draws no randomness and reads no key: both come from here.
        return cpin_verifier(cpin, self.cpin_key, secrets.token_bytes(SALT_BYTES))

    def transfer_devices(
        self,
        cause: Cause,
        location_id: str,
        serials: list[str],
        source_id: UUID,
        target_id: UUID,
        transfer_id: str,
    ) -> None:
        """R-HLD-3: move PCs the partner can see from one source to one target, or back."""

        def work(w: Working) -> None:
            partner = load_partner_as_user(w, cause, location_id)
            if source_id == target_id:
                raise DeviceError("A transfer needs a target other than its source.")
            if not serials:
                raise DeviceError("Choose at least one PC to transfer.")
            source = self._tenant(w, partner, source_id)
            target = self._tenant(w, partner, target_id)
            for serial in serials:
                device = load_device(w, serial)
                device.transfer(cause, transfer_id, location_id, source_id, target_id)
                if source is not None:
                    source.remove_device(cause, device.serial, PLACED)
                if target is not None:
                    target.add_device(cause, device.serial, PLACED, device.care_plan is not None)

        self._execute("transfer_devices", cause, work)

    def _tenant(self, w: Working, partner: PartnerTenant, tenant_id: UUID) -> CustomerGroup | None:
        """None for the partner's holding tenant, else one of its customer dashboards."""
        if tenant_id == partner.holding_tenant_id:
            return None
        group = w.find(CustomerGroup, tenant_id)
        if group is None or group.partner_location_id != partner.location_id:
            raise NotAllowedError(f"Partner {partner.location_id} has no tenant {tenant_id}.")
        group.require_open()
        if not group.is_dashboard:
            raise CustomerGroupError(f"{group.customer_name} has no customer dashboard yet.")
        return group

    def enrol_with_cpin(
        self,
        cause: Cause,
        customer_id: str,
        dashboard_id: UUID,
        cpin: str,
        serial: str,
        model: str = "",
        care_plan: str | None = None,
    ) -> None:
        """R-HLD-3: the customer enrols a PC into its dashboard with its cPIN."""

        def work(w: Working) -> None:
            group = load_group(w, dashboard_id)
            group.check_cpin(cpin, self.cpin_key)
            group.require_open()
            if group.customer_id != customer_id:
                raise NotAllowedError(f"This dashboard is not customer {customer_id}'s.")
            device = w.find(Device, Device.id_for(serial)) or w.add(
                Device.register(
                    cause,
                    serial=serial,
                    connection="pc_agent",
                    customer_id=customer_id,
                    model=model,
                    care_plan=care_plan,
                )
            )
            device.enrol_with_cpin(cause, group.id, group.partner_location_id, customer_id)
            group.add_device(cause, device.serial, PLACED, device.care_plan is not None)

        try:
            self._execute("enrol_with_cpin", cause, work)
        except CpinKeyMismatchError as error:  # the service is misconfigured, not the customer
            log.error("cpin_key_mismatch", dashboard_id=str(dashboard_id), reason=str(error))
            raise

    def switch_self_service_notifications(
        self, cause: Cause, location_id: str, tenant_id: UUID, on: bool
    ) -> None:
        """R-ALR-4: switch the end users' self-service pop-ups of a customer dashboard."""

        def work(w: Working) -> None:
            partner = load_partner_as_user(w, cause, location_id)
            group = self._tenant(w, partner, tenant_id)
            if group is None:
                raise CustomerGroupError(
                    "Self-service notifications of the holding tenant cannot be switched off; "
                    "create a customer dashboard and transfer the PCs into it first."
                )
            group.switch_self_service_notifications(cause, on)

        self._execute("switch_self_service_notifications", cause, work)

    def raise_alert(
        self, cause: Cause, serial: str, alert_id: str, severity: str, message: str
    ) -> None:
        """R-ALR-1: record an alert for a device."""
        self._execute(
            "raise_alert",
            cause,
            lambda w: load_device(w, serial).raise_alert(cause, alert_id, severity, message),
        )

    def submit_repair_case(
        self, cause: Cause, serial: str, alert_id: str, case_id: str, source: str = "self_service"
    ) -> None:
        """R-ALR-1, R-ALR-2: submit the repair case from an alert (self-service or Insight RS)."""
        self._execute(
            "submit_repair_case",
            cause,
            lambda w: load_device(w, serial).submit_repair_case(cause, alert_id, case_id, source),
        )


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
