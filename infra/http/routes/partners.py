"""Partners and their users: register, accredit, certify, missing-device requests.

The pattern of every resource router: `APIRouter(route_class=FleetRoute)`, plain `def`
routes with `Annotated` dependencies and schemas of their own, a one-line docstring naming
the rule IDs (it becomes the OpenAPI summary), one command or query per route, no `try`
and no role checks (the command's declaration or the scope refuses, errors.py answers).
Commands take `Idempotency-Key` and `If-Match` and answer `Partnerfleet-Position`
(routing.py); reads take `Partnerfleet-Wait-For` where they read the views (deps.py).
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response

from handlers.partner_queries import partner_tenant, partner_users
from infra.http.deps import ActorDep, FleetDep, PageDep, PartnerScopeDep
from infra.http.paging import Paged
from infra.http.routing import ETAG_HEADER, FleetRoute, etag
from infra.http.schemas.common import COMMAND_STATUSES, problem_responses
from infra.http.schemas.partners import (
    Accreditation,
    Accredited,
    Certification,
    Certified,
    MissingDevices,
    MissingDevicesReported,
    MissingDevicesResolved,
    NewPartner,
    NewPartnerUser,
    Partner,
    PartnerRegistered,
    PartnerUser,
    Resolution,
)

router = APIRouter(
    prefix="/partners",
    route_class=FleetRoute,
    tags=["partners"],
    responses=problem_responses(*COMMAND_STATUSES),
)


@router.post("", status_code=201)
def register_partner(body: NewPartner, actor: ActorDep, fleet: FleetDep) -> PartnerRegistered:
    """R-PAR-1: register a partner tenant as reseller under its Partner Location ID."""
    partner_id = fleet.register_partner(actor, body.location_id, body.name)
    return PartnerRegistered(location_id=body.location_id, id=partner_id)


@router.get("/{location_id}", responses={200: {"headers": {"ETag": ETAG_HEADER}}})
def read_partner(scope: PartnerScopeDep, fleet: FleetDep, response: Response) -> Partner:
    """R-PAR-1, R-PAR-4: the partner tenant, for its own users; the ETag is its version."""
    tenant = partner_tenant(fleet, scope)
    response.headers["ETag"] = etag(tenant)
    return Partner.of(tenant)


@router.get("/{location_id}/users")
def list_partner_users(
    scope: PartnerScopeDep,
    fleet: FleetDep,
    page: PageDep,
    role: Literal["admin", "user"] | None = None,
) -> Paged[PartnerUser]:
    """R-PAR-1: the users registered under the partner, by Passport ID, of one role if given."""
    found = partner_users(fleet, scope, role=role, after=page.after, limit=page.limit + 1)
    return Paged[PartnerUser].of(found, page, lambda row: (row.passport_id,))


@router.post("/{location_id}/users", status_code=201)
def register_partner_user(
    location_id: str, body: NewPartnerUser, actor: ActorDep, fleet: FleetDep
) -> PartnerUser:
    """R-PAR-1: register a Passport ID under the partner; the first user becomes its admin."""
    role = fleet.register_partner_user(actor, location_id, body.passport_id)
    return PartnerUser(passport_id=body.passport_id, role=role)


@router.post("/{location_id}/accreditation")
def accredit_service_partner(
    location_id: str, body: Accreditation, actor: ActorDep, fleet: FleetDep
) -> Accredited:
    """R-PAR-1: accredit a reseller as service partner with its CSDP account."""
    fleet.accredit_service_partner(actor, location_id, body.csdp_account)
    return Accredited(location_id=location_id)


@router.post("/{location_id}/certifications", status_code=201)
def certify_partner(
    location_id: str, body: Certification, actor: ActorDep, fleet: FleetDep
) -> Certified:
    """R-PAR-4: certify the partner for HP Premium/Premium+; its holding tenant comes once."""
    tenant_id = fleet.certify_partner(actor, location_id, body.programme)
    return Certified(location_id=location_id, programme=body.programme, holding_tenant_id=tenant_id)


@router.post("/{location_id}/missing-device-requests", status_code=201)
def report_missing_devices(
    location_id: str, body: MissingDevices, actor: ActorDep, fleet: FleetDep
) -> MissingDevicesReported:
    """R-HLD-2: open a support request for resold PCs missing from the holding tenant."""
    fleet.report_missing_devices(actor, location_id, body.request_id, body.serials)
    return MissingDevicesReported(location_id=location_id, request_id=body.request_id)


@router.post("/{location_id}/missing-device-requests/{request_id}/resolution")
def resolve_missing_devices(
    location_id: str, request_id: str, body: Resolution, actor: ActorDep, fleet: FleetDep
) -> MissingDevicesResolved:
    """R-HLD-2: close a missing-device request with its resolution (support desk)."""
    fleet.resolve_missing_devices(actor, location_id, request_id, body.resolution)
    return MissingDevicesResolved(
        location_id=location_id, request_id=request_id, resolution=body.resolution
    )
