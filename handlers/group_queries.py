"""Reads of one aggregate of My Customers as recorded now, for HTTP ETags: checked scope in.

The pages themselves come from the read models (projections/customer_queries.py); these
give the version of the customer group or Passport a page is about, so a client can send
it back as `If-Match` on the commands that change it (R-GRP-*, R-FAV-*).
"""

from __future__ import annotations

from uuid import UUID

from domain.base import Msg, NotFoundError
from domain.customer_group import CustomerGroup
from domain.passport import Passport
from handlers.access import PartnerScope
from handlers.base import FleetApplication, Working
from handlers.customers import missing_group


def partner_customer_group(
    fleet: FleetApplication, scope: PartnerScope, group_id: UUID
) -> CustomerGroup:
    """R-LNK-1: one of the scope's partner's customer groups as recorded now.

    Another partner's group, a deleted one and an unknown id are `NotFoundError` in the
    same words ("No customer group <id>."), as the group commands say it.
    """
    group = Working(fleet).find(CustomerGroup, group_id)
    if group is None or group.deleted or group.partner_location_id != scope.location_id:
        raise NotFoundError(missing_group(group_id))
    return group


def own_passport(fleet: FleetApplication, scope: PartnerScope) -> Passport:
    """R-FAV-2, R-FAV-4: the scope's user's Passport (favourites, default view) as recorded
    now; `NotFoundError` if the store has none (never for an authenticated partner user)."""
    return Working(fleet).load(
        Passport,
        Passport.id_for(scope.passport),
        Msg("No Passport ID {passport!r} is known.", passport=scope.passport),
    )
