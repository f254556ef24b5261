"""A customer's devices, links and consent, and My IT Environment (R-PAR-2, R-PAR-3,
R-LNK-1…6, R-CON-1…4, R-ALR-2): for the customer admin of `{customer_id}` only.

Commands are the customer's (handlers/devices.py declares who may call them: another
customer's id is 404, any other role 403); reads take the customer's own scope
(`CustomerScopeDep`). Bulk commands name the chosen devices in the body (R-LNK-3 b).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from domain.device import normalise_serial
from domain.iso import IsoAwareDatetime
from handlers.device_queries import customer_device
from infra.http.deps import (
    ActorDep,
    CurrentViewsDep,
    CustomerScopeDep,
    FleetDep,
    PageDep,
    ViewsDep,
)
from infra.http.paging import Paged
from infra.http.routing import ETAG_HEADER, FleetRoute, etag
from infra.http.schemas.common import COMMAND_STATUSES, problem_responses
from infra.http.schemas.devices import (
    CaseRouting,
    CaseRoutingChosen,
    ConsentGrant,
    ConsentGranted,
    ConsentRecord,
    ConsentWithdrawal,
    ConsentWithdrawn,
    DeviceLinks,
    DeviceRegistration,
    DevicesLinked,
    DevicesRegistered,
    DevicesUnlinked,
    EnvironmentDeviceOut,
    EnvironmentPage,
    HostConsent,
    HostConsentGranted,
    HostGroupOut,
    HostLink,
    HostLinked,
    LinkRemoval,
    stored,
)
from projections.consent_queries import Selection, history
from projections.environment import environment_device, my_it_environment

router = APIRouter(
    prefix="/customers/{customer_id}",
    route_class=FleetRoute,
    tags=["devices, links and consent"],
    responses=problem_responses(*COMMAND_STATUSES),
)

Since = Annotated[
    IsoAwareDatetime | None, Query(description="Records from this moment on (with an offset)")
]
Until = Annotated[
    IsoAwareDatetime | None, Query(description="Records before this moment (with an offset)")
]


@router.post("/devices", status_code=201)
def register_devices(
    customer_id: str, body: DeviceRegistration, actor: ActorDep, fleet: FleetDep
) -> DevicesRegistered:
    """R-PAR-3, R-LNK-3: register devices under your Passport ID (1,500 at most), linked or not."""
    partner = None if body.partner is None else body.partner.choice()
    specs = [d.spec() for d in body.devices]
    fleet.register_devices(actor, customer_id, specs, partner, body.customer_name)
    return DevicesRegistered.of(customer_id, body)


@router.get("/devices")
def list_my_devices(scope: CustomerScopeDep, views: ViewsDep, page: PageDep) -> EnvironmentPage:
    """R-PAR-2: My IT Environment, your devices by hosting device, with links and consent now."""
    with views.transaction() as tx:
        found = my_it_environment(tx, scope, after=page.after, limit=page.limit)
    groups = [
        HostGroupOut(host=g.host, devices=[EnvironmentDeviceOut.of(d) for d in g.devices])
        for g in found.groups
    ]
    cursor = None if found.next_after is None else page.next_cursor(found.next_after)
    return EnvironmentPage(customer_id=found.customer_id, groups=groups, next_cursor=cursor)


@router.get("/devices/{serial}", responses={200: {"headers": {"ETag": ETAG_HEADER}}})
def read_my_device(
    serial: str,
    scope: CustomerScopeDep,
    views: CurrentViewsDep,
    fleet: FleetDep,
    response: Response,
) -> EnvironmentDeviceOut:
    """R-PAR-2, R-LNK-4, R-CON-1: one of your devices; the ETag is the device's version, and
    the views are brought up to the store after reading it, so the body shows it."""
    tag = etag(customer_device(fleet, scope, serial))
    with views.now().transaction() as tx:
        device = environment_device(tx, scope, serial)
    response.headers["ETag"] = tag
    return EnvironmentDeviceOut.of(device)


@router.get("/devices/{serial}/consent-history")
def device_consent_history(
    serial: str,
    scope: CustomerScopeDep,
    views: ViewsDep,
    page: PageDep,
    since: Since = None,
    until: Until = None,
) -> Paged[ConsentRecord]:
    """R-CON-3, R-CON-4: every grant, withdrawal, correction and link of your device, in order."""
    with views.transaction() as tx:
        chosen = Selection(serial=serial, since=since, until=until)
        found = history(tx, scope, chosen, after=page.after, limit=page.limit)
    return Paged[ConsentRecord].of_query(found, page)


@router.post("/links")
def link_devices(
    customer_id: str, body: DeviceLinks, actor: ActorDep, fleet: FleetDep
) -> DevicesLinked:
    """R-LNK-1, R-LNK-3, R-LNK-5: link the chosen devices to a partner's Location ID in a role."""
    fleet.link_devices(actor, customer_id, body.serials, body.partner.choice(), body.customer_name)
    return DevicesLinked.of(customer_id, body.serials, body.partner)


@router.post("/link-removals")
def unlink_devices(
    customer_id: str, body: LinkRemoval, actor: ActorDep, fleet: FleetDep
) -> DevicesUnlinked:
    """R-LNK-6: remove the partner of a role from the chosen devices; its access ends at once."""
    fleet.unlink_devices(actor, customer_id, body.serials, body.role)
    return DevicesUnlinked.of(customer_id, body)


@router.put("/hosting-devices/{host_serial}/partner")
def set_hosting_partner(
    customer_id: str, host_serial: str, body: HostLink, actor: ActorDep, fleet: FleetDep
) -> HostLinked:
    """R-LNK-2: set the partner once in Insight RS, for every device the hosting device manages."""
    partner = body.partner
    fleet.set_hosting_partner(actor, customer_id, host_serial, partner.choice(), body.customer_name)
    return HostLinked(
        customer_id=customer_id,
        host_serial=normalise_serial(host_serial),
        location_id=partner.location_id,
        role=partner.role,
    )


@router.post("/consent-grants")
def grant_consent(
    customer_id: str, body: ConsentGrant, actor: ActorDep, fleet: FleetDep
) -> ConsentGranted:
    """R-CON-1, R-CON-3: grant consent (Optimize my IT environment) for direct-connect devices."""
    fleet.grant_consent(actor, customer_id, body.serials, body.text_version)
    return ConsentGranted(
        customer_id=customer_id, serials=stored(body.serials), text_version=body.text_version
    )


@router.post("/consent-withdrawals")
def withdraw_consent(
    customer_id: str, body: ConsentWithdrawal, actor: ActorDep, fleet: FleetDep
) -> ConsentWithdrawn:
    """R-CON-3: withdraw consent for direct-connect devices; partners' access ends at once."""
    fleet.withdraw_consent(actor, customer_id, body.serials)
    return ConsentWithdrawn(customer_id=customer_id, serials=stored(body.serials))


@router.put("/hosting-devices/{host_serial}/consent")
def grant_consent_on_host(
    customer_id: str, host_serial: str, body: HostConsent, actor: ActorDep, fleet: FleetDep
) -> HostConsentGranted:
    """R-CON-1: grant consent once for every device of an Insight RS hosting device."""
    fleet.grant_consent_on_host(actor, customer_id, host_serial, body.text_version)
    return HostConsentGranted(
        customer_id=customer_id,
        host_serial=normalise_serial(host_serial),
        text_version=body.text_version,
    )


@router.delete("/hosting-devices/{host_serial}/consent", status_code=204)
def withdraw_consent_on_host(
    customer_id: str, host_serial: str, actor: ActorDep, fleet: FleetDep
) -> Response:
    """R-CON-1, R-CON-3: withdraw consent for every device of an Insight RS hosting device."""
    fleet.withdraw_consent_on_host(actor, customer_id, host_serial)
    return Response(status_code=204)


@router.put("/insight-rs-case-routing")
def choose_insight_rs_case_routing(
    customer_id: str, body: CaseRouting, actor: ActorDep, fleet: FleetDep
) -> CaseRoutingChosen:
    """R-ALR-2: send the chosen devices' Insight RS cases to their service partner, or not."""
    fleet.choose_insight_rs_case_routing(actor, customer_id, body.serials, body.to_service_partner)
    return CaseRoutingChosen(
        customer_id=customer_id,
        serials=stored(body.serials),
        to_service_partner=body.to_service_partner,
    )
