"""Reads of one partner tenant's own record, for its users (R-PAR-1): checked scope in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain.partner import PartnerTenant, UserRole
from handlers.access import PartnerScope
from handlers.base import FleetApplication, Working
from handlers.partners import load_partner


@dataclass(frozen=True)
class PartnerUserRow:
    """A user registered under the partner, and its role there."""

    passport_id: str
    role: UserRole


def partner_tenant(fleet: FleetApplication, scope: PartnerScope) -> PartnerTenant:
    """The scope's partner tenant as recorded now (for its version: the HTTP ETag)."""
    return load_partner(Working(fleet), scope.location_id)


def partner_users(
    fleet: FleetApplication,
    scope: PartnerScope,
    *,
    role: UserRole | None = None,
    after: tuple[Any, ...] | None = None,
    limit: int = 50,
) -> list[PartnerUserRow]:
    """R-PAR-1: the partner's users by Passport ID (keyset `after`), of one `role` if given."""
    users = partner_tenant(fleet, scope).users
    start = "" if after is None else str(after[0])
    chosen = sorted(p for p, r in users.items() if p > start and role in (None, r))
    return [PartnerUserRow(p, users[p]) for p in chosen[:limit]]
