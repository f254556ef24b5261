"""Reads of one customer dashboard's settings as recorded now, for its partner (R-HLD-3)."""

from __future__ import annotations

from uuid import UUID

from domain.base import Msg, NotFoundError
from domain.customer_group import CustomerGroup
from handlers.access import PartnerScope
from handlers.base import FleetApplication, Working


def missing_dashboard(dashboard_id: UUID) -> Msg:
    """The refusal for a dashboard that does not exist, or is another partner's."""
    return Msg("No customer dashboard {dashboard_id}.", dashboard_id=dashboard_id)


def customer_dashboard_record(
    fleet: FleetApplication, scope: PartnerScope, dashboard_id: UUID
) -> CustomerGroup:
    """R-HLD-3, R-ALR-4: one of the partner's customer dashboards as recorded now (for its
    version: the HTTP ETag). Another partner's, a deleted one, a customer group that is no
    dashboard and any other id are all `NotFoundError`, in the same words."""
    try:
        group = Working(fleet).find(CustomerGroup, dashboard_id)
    except NotFoundError:  # an id of another kind of aggregate
        group = None
    if (
        group is None
        or group.partner_location_id != scope.location_id
        or group.deleted
        or not group.is_dashboard
    ):
        raise NotFoundError(missing_dashboard(dashboard_id))
    return group
