"""Configuration data (R-CON-2): remote support (the feed, or HP/HPE operations by hand)
reports it under `/devices/{serial}`; a partner reads it under `/partners/{location_id}`
only while the device is linked to it and its customer has granted consent.
"""

from __future__ import annotations

from fastapi import APIRouter

from domain.device import normalise_serial
from infra.http.deps import ActorDep, CurrentViewsDep, FleetDep, PartnerScopeDep
from infra.http.routing import FleetRoute
from infra.http.schemas.common import COMMAND_STATUSES, problem_responses
from infra.http.schemas.service import Configuration, ConfigurationCollected, DeviceConfiguration
from projections.consent_queries import configuration_for

router = APIRouter(
    route_class=FleetRoute,
    tags=["configuration"],
    responses=problem_responses(*COMMAND_STATUSES),
)


@router.put("/devices/{serial}/configuration")
def collect_configuration(
    serial: str, body: Configuration, actor: ActorDep, fleet: FleetDep
) -> ConfigurationCollected:
    """R-CON-2: keep a device's configuration data, only while consent and a partner link exist."""
    fleet.collect_configuration(actor, serial, body.data)
    return ConfigurationCollected(serial=normalise_serial(serial))


@router.get("/partners/{location_id}/devices/{serial}/configuration")
def read_configuration(
    serial: str, scope: PartnerScopeDep, views: CurrentViewsDep
) -> DeviceConfiguration:
    """R-CON-2, R-LNK-6, R-CON-3: a linked device's configuration data, while its consent
    holds: the views are brought up to the store first, so a withdrawal ends access at once."""
    with views.now().transaction() as tx:
        data = configuration_for(tx, scope, serial)
    return DeviceConfiguration(serial=normalise_serial(serial), data=data)
