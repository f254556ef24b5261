"""Partners and their users over HTTP (R-PAR-1, R-PAR-4, R-HLD-2): requests and answers."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from domain.partner import PartnerTenant

LocationId = Annotated[str, Field(min_length=1, max_length=256, examples=["LOC-1"])]
PassportId = Annotated[str, Field(min_length=1, max_length=256, examples=["anna@reseller.example"])]
Serial = Annotated[str, Field(min_length=1, max_length=256)]


class RequestModel(BaseModel):
    """A request body: unknown fields are refused, so a typo is not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class NewPartner(RequestModel):
    """A partner tenant to register as reseller (R-PAR-1)."""

    location_id: LocationId
    name: str = Field(min_length=1, max_length=200)


class PartnerRegistered(BaseModel):
    """The registered partner tenant."""

    location_id: str
    id: UUID


class Partner(BaseModel):
    """A partner tenant as recorded now (its ETag is its version)."""

    location_id: str
    name: str
    partner_type: Literal["reseller", "service_partner"]
    certifications: list[str]
    holding_tenant_id: UUID | None
    users: int = Field(description="How many users are registered under the partner")

    @classmethod
    def of(cls, tenant: PartnerTenant) -> Partner:
        """The answer about a partner tenant."""
        return cls(
            location_id=tenant.location_id,
            name=tenant.name,
            partner_type=tenant.partner_type,
            certifications=list(tenant.certifications),
            holding_tenant_id=tenant.holding_tenant_id,
            users=len(tenant.users),
        )


class NewPartnerUser(RequestModel):
    """A Passport ID to register under the partner; the first becomes its admin (R-PAR-1)."""

    passport_id: PassportId


class PartnerUser(BaseModel):
    """A user registered under a partner, and its role there."""

    passport_id: str
    role: Literal["admin", "user"]


class Accreditation(RequestModel):
    """Accreditation of a reseller as service partner, with its CSDP account (R-PAR-1)."""

    csdp_account: str = Field(min_length=1, max_length=256)


class Accredited(BaseModel):
    """The partner after accreditation."""

    location_id: str
    partner_type: Literal["service_partner"] = "service_partner"


class Certification(RequestModel):
    """Certification for HP Premium/Premium+ (R-PAR-4)."""

    programme: Literal["resell_view_monitor", "service_delivery"]


class Certified(BaseModel):
    """The certified partner and its holding tenant (created with the first certification)."""

    location_id: str
    programme: str
    holding_tenant_id: UUID


class MissingDevices(RequestModel):
    """A support request listing PCs missing from the holding tenant (R-HLD-2)."""

    request_id: str = Field(min_length=1, max_length=256)
    serials: list[Serial] = Field(min_length=1, max_length=1_000)


class MissingDevicesReported(BaseModel):
    """The recorded support request."""

    location_id: str
    request_id: str
    state: Literal["open"] = "open"


class Resolution(RequestModel):
    """How a missing-device request was resolved (R-HLD-2)."""

    resolution: str = Field(min_length=1, max_length=4_000)


class MissingDevicesResolved(BaseModel):
    """The resolved support request."""

    location_id: str
    request_id: str
    state: Literal["resolved"] = "resolved"
    resolution: str
