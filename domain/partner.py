"""PartnerTenant: a partner organisation, its users, type, certifications, holding tenant."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast
from uuid import UUID

from domain.base import Cause, DomainError, FleetAggregate, Msg, NotAllowedError, natural_id
from domain.text import serial_form

PartnerType = Literal["reseller", "service_partner"]
UserRole = Literal["admin", "user"]
# HP Premium/Premium+ programmes (R-PAR-4): the partner type each one requires.
PROGRAMMES: dict[str, PartnerType] = {
    "resell_view_monitor": "reseller",
    "service_delivery": "service_partner",
}


@dataclass
class MissingDeviceRequest:
    """A support request for PCs missing from the holding tenant (R-HLD-2)."""

    request_id: str
    serials: list[str]
    resolution: str | None


class PartnerError(DomainError):
    """A partner command was refused."""


class PartnerTenant(FleetAggregate):
    """A partner organisation identified by its Partner Location ID (R-PAR-1, R-PAR-4, R-HLD-2)."""

    location_id: str
    name: str
    partner_type: PartnerType
    csdp_account: str | None
    users: dict[str, UserRole]
    certifications: list[str]
    holding_tenant_id: UUID | None
    missing_device_requests: dict[str, MissingDeviceRequest]

    def __init__(self) -> None:
        """A new tenant: a reseller without users, certifications or holding tenant."""
        self.partner_type = "reseller"
        self.csdp_account = None
        self.users = {}
        self.certifications = []
        self.holding_tenant_id = None
        self.missing_device_requests = {}

    @staticmethod
    def id_for(location_id: str) -> UUID:
        """The tenant id derived from the Partner Location ID."""
        return natural_id("partner", location_id)

    @staticmethod
    def holding_tenant_id_for(location_id: str) -> UUID:
        """The id of the partner's holding tenant (R-PAR-4)."""
        return natural_id("holding-tenant", location_id)

    class Registered(FleetAggregate.Created):
        location_id: str
        name: str

        def apply(self, aggregate: PartnerTenant) -> None:
            aggregate.location_id = self.location_id
            aggregate.name = self.name

    @classmethod
    def register(cls, cause: Cause, location_id: str, name: str) -> PartnerTenant:
        """R-PAR-1: a partner tenant starts as reseller with its Partner Location ID."""
        if not location_id.strip():
            raise PartnerError(Msg("A partner needs a non-empty Partner Location ID."))
        if not name.strip():
            raise PartnerError(
                Msg("Partner {location_id} needs a non-empty name.", location_id=location_id)
            )
        return cls._start(
            cls.Registered,
            cause,
            cls.id_for(location_id),
            location_id=location_id,
            name=name.strip(),
        )

    class UserRegistered(FleetAggregate.Event):
        passport_id: str
        role: str

        def apply(self, aggregate: PartnerTenant) -> None:
            aggregate.users[self.passport_id] = cast(UserRole, self.role)

    def register_user(self, cause: Cause, passport_id: str) -> UserRole:
        """R-PAR-1: users registered under the partner are partner users; the first is admin."""
        if passport_id in self.users:
            raise PartnerError(
                Msg(
                    "{passport_id} is already a user of partner {location_id}.",
                    passport_id=passport_id,
                    location_id=self.location_id,
                )
            )
        role: UserRole = "user" if self.users else "admin"
        self._record(self.UserRegistered, cause, passport_id=passport_id, role=role)
        return role

    @property
    def admins(self) -> list[str]:
        """Passport IDs of the partner's admins, sorted."""
        return sorted(p for p, role in self.users.items() if role == "admin")

    def require_admin(self, passport_id: str) -> None:
        """Refuse unless `passport_id` is an admin of this partner."""
        if self.users.get(passport_id) != "admin":
            raise NotAllowedError(
                Msg(
                    "{passport_id} is not an admin of partner {location_id}.",
                    passport_id=passport_id,
                    location_id=self.location_id,
                ),
                rule="R-PAR-1",
            )

    class AccreditedAsServicePartner(FleetAggregate.Event):
        csdp_account: str

        def apply(self, aggregate: PartnerTenant) -> None:
            aggregate.partner_type = "service_partner"
            aggregate.csdp_account = self.csdp_account

    def accredit_as_service_partner(self, cause: Cause, csdp_account: str) -> None:
        """R-PAR-1: a reseller may later be accredited as service partner, with a CSDP account."""
        if self.partner_type == "service_partner":
            raise PartnerError(
                Msg(
                    "Partner {location_id} is already a service partner.",
                    location_id=self.location_id,
                )
            )
        if not csdp_account.strip():
            raise PartnerError(Msg("Accreditation as service partner needs the CSDP account id."))
        self._record(self.AccreditedAsServicePartner, cause, csdp_account=csdp_account.strip())

    class Certified(FleetAggregate.Event):
        programme: str

        def apply(self, aggregate: PartnerTenant) -> None:
            aggregate.certifications.append(self.programme)

    class HoldingTenantCreated(FleetAggregate.Event):
        holding_tenant_id: UUID

        def apply(self, aggregate: PartnerTenant) -> None:
            aggregate.holding_tenant_id = self.holding_tenant_id

    def certify(self, cause: Cause, programme: str) -> None:
        """R-PAR-4: certification creates the partner's holding tenant, once."""
        required = PROGRAMMES.get(programme)
        if required is None:
            known = ", ".join(sorted(PROGRAMMES))
            raise PartnerError(
                Msg(
                    "Unknown programme {programme!r}; known: {known}.",
                    programme=programme,
                    known=known,
                )
            )
        if required == "service_partner" and self.partner_type != "service_partner":
            raise PartnerError(
                Msg(
                    "Partner {location_id} must be accredited as service partner before "
                    "certification for {programme}.",
                    location_id=self.location_id,
                    programme=programme,
                ),
                rule="R-PAR-4",
            )
        if programme in self.certifications:
            raise PartnerError(
                Msg(
                    "Partner {location_id} is already certified for {programme}.",
                    location_id=self.location_id,
                    programme=programme,
                )
            )
        self._record(self.Certified, cause, programme=programme)
        if self.holding_tenant_id is None:
            tenant_id = self.holding_tenant_id_for(self.location_id)
            self._record(self.HoldingTenantCreated, cause, holding_tenant_id=tenant_id)

    def require_holding_tenant(self) -> UUID:
        """The holding tenant id, or a refusal saying the partner is not certified."""
        if self.holding_tenant_id is None:
            raise PartnerError(
                Msg(
                    "Partner {location_id} has no holding tenant: it is not certified for HP "
                    "Premium/Premium+ yet.",
                    location_id=self.location_id,
                ),
                rule="R-PAR-4",
            )
        return self.holding_tenant_id

    class MissingDevicesReported(FleetAggregate.Event):
        request_id: str
        serials: list[str]

        def apply(self, aggregate: PartnerTenant) -> None:
            request = MissingDeviceRequest(self.request_id, list(self.serials), None)
            aggregate.missing_device_requests[self.request_id] = request

    def report_missing_devices(self, cause: Cause, request_id: str, serials: list[str]) -> None:
        """R-HLD-2: record a support request listing serial numbers missing from the tenant."""
        self.require_holding_tenant()
        known = self.missing_device_requests.get(request_id)
        if known is not None and known.resolution is not None:
            raise PartnerError(
                Msg(
                    "Support request {request_id} already exists and was resolved "
                    "({resolution}); report PCs still missing in a new request.",
                    request_id=request_id,
                    resolution=known.resolution,
                )
            )
        if known is not None:
            raise PartnerError(
                Msg("Support request {request_id} already exists.", request_id=request_id)
            )
        cleaned = sorted({serial_form(s) for s in serials if s.strip()})
        if not cleaned:
            raise PartnerError(
                Msg("A missing-device request must list at least one serial number.")
            )
        self._record(self.MissingDevicesReported, cause, request_id=request_id, serials=cleaned)

    class MissingDevicesResolved(FleetAggregate.Event):
        request_id: str
        resolution: str

        def apply(self, aggregate: PartnerTenant) -> None:
            aggregate.missing_device_requests[self.request_id].resolution = self.resolution

    def resolve_missing_devices(self, cause: Cause, request_id: str, resolution: str) -> None:
        """R-HLD-2: close an open missing-device request with its resolution."""
        request = self.missing_device_requests.get(request_id)
        if request is None:
            raise PartnerError(
                Msg(
                    "Partner {location_id} has no support request {request_id}.",
                    location_id=self.location_id,
                    request_id=request_id,
                )
            )
        if request.resolution is not None:
            raise PartnerError(
                Msg("Support request {request_id} is already resolved.", request_id=request_id)
            )
        if not resolution.strip():
            raise PartnerError(Msg("Say how the missing-device request was resolved."))
        self._record(
            self.MissingDevicesResolved, cause, request_id=request_id, resolution=resolution
        )
