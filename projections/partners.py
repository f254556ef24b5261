"""Every partner tenant for HP/HPE operations: type, certifications, users (R-PAR-1, R-PAR-4).

The operator's pages list partners and their users; a partner's own users read their
tenant from the store (handlers/partner_queries.py). The CSDP account of an accredited
service partner is not kept here: no page shows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from domain.base import Msg, NotFoundError
from domain.partner import PartnerTenant, PartnerType, UserRole
from handlers.access import OperatorScope
from projections.base import Tx, View, handles, placeholders, query_key
from projections.paging import (
    DEFAULT_LIMIT,
    Key,
    Page,
    after_clause,
    checked_limit,
    key_params,
    page_of,
    where,
)


class PartnersView(View):
    """Partner tenants, their certifications and their users."""

    name: ClassVar[str] = "partners"
    tables: ClassVar[tuple[str, ...]] = ("pf_p_partners", "pf_p_certifications", "pf_p_users")
    ddl: ClassVar[tuple[str, ...]] = (
        "CREATE TABLE IF NOT EXISTS pf_p_partners (partner_id TEXT PRIMARY KEY,"
        " location_id TEXT NOT NULL UNIQUE, name TEXT NOT NULL, partner_type TEXT NOT NULL,"
        " users INTEGER NOT NULL, holding_tenant INTEGER NOT NULL)",
        "CREATE TABLE IF NOT EXISTS pf_p_certifications (partner_id TEXT NOT NULL,"
        " programme TEXT NOT NULL, PRIMARY KEY (partner_id, programme))",
        "CREATE TABLE IF NOT EXISTS pf_p_users (partner_id TEXT NOT NULL,"
        " passport TEXT NOT NULL, role TEXT NOT NULL, PRIMARY KEY (partner_id, passport))",
    )

    @handles(PartnerTenant.Registered)
    def _registered(self, tx: Tx, e: PartnerTenant.Registered) -> None:
        tx.execute(
            "INSERT INTO pf_p_partners VALUES (?, ?, ?, 'reseller', 0, 0)",
            (str(e.originator_id), e.location_id, e.name),
        )

    @handles(PartnerTenant.UserRegistered)
    def _user(self, tx: Tx, e: PartnerTenant.UserRegistered) -> None:
        partner_id = str(e.originator_id)
        tx.execute("INSERT INTO pf_p_users VALUES (?, ?, ?)", (partner_id, e.passport_id, e.role))
        tx.execute("UPDATE pf_p_partners SET users = users + 1 WHERE partner_id = ?", (partner_id,))

    @handles(PartnerTenant.AccreditedAsServicePartner)
    def _accredited(self, tx: Tx, e: PartnerTenant.AccreditedAsServicePartner) -> None:
        tx.execute(
            "UPDATE pf_p_partners SET partner_type = 'service_partner' WHERE partner_id = ?",
            (str(e.originator_id),),
        )

    @handles(PartnerTenant.Certified)
    def _certified(self, tx: Tx, e: PartnerTenant.Certified) -> None:
        tx.execute(
            "INSERT INTO pf_p_certifications VALUES (?, ?)", (str(e.originator_id), e.programme)
        )

    @handles(PartnerTenant.HoldingTenantCreated)
    def _holding(self, tx: Tx, e: PartnerTenant.HoldingTenantCreated) -> None:
        tx.execute(
            "UPDATE pf_p_partners SET holding_tenant = 1 WHERE partner_id = ?",
            (str(e.originator_id),),
        )


@dataclass(frozen=True)
class PartnerOverview:
    """A partner tenant as operations see it: how many users, which programmes (R-PAR-4)."""

    location_id: str
    name: str
    partner_type: PartnerType
    users: int
    holding_tenant: bool
    certifications: list[str]


@dataclass(frozen=True)
class PartnerUser:
    """A user registered under a partner, and its role there (R-PAR-1)."""

    passport_id: str
    role: UserRole


def partners_overview(
    tx: Tx, scope: OperatorScope, *, after: Key | None = None, limit: int = DEFAULT_LIMIT
) -> Page[PartnerOverview]:
    """R-PAR-1, R-PAR-4: every partner tenant by Location ID, after `(location_id,)`, with
    its type, user count, certifications and whether its holding tenant exists.

    Two statements whatever the page size. `QueryError` for a bad `limit` or `after`."""
    limit = checked_limit(limit)
    after_sql = after_clause(["location_id"], after, (str,))
    rows = tx.query(
        "SELECT partner_id, location_id, name, partner_type, users, holding_tenant"
        f" FROM pf_p_partners{where(after_sql)} ORDER BY location_id LIMIT ?",
        (*key_params(after), limit + 1),
    )
    programmes = _certifications(tx, [row[0] for row in rows])
    found = [
        PartnerOverview(loc, name, kind, users, bool(holding), programmes.get(pid, []))
        for pid, loc, name, kind, users, holding in rows
    ]
    return page_of(found, limit, lambda p: (p.location_id,))


def _certifications(tx: Tx, partner_ids: list[str]) -> dict[str, list[str]]:
    if not partner_ids:
        return {}
    found: dict[str, list[str]] = {}
    for partner_id, programme in tx.query(
        "SELECT partner_id, programme FROM pf_p_certifications"
        f" WHERE partner_id IN ({placeholders(partner_ids)}) ORDER BY partner_id, programme",
        partner_ids,
    ):
        found.setdefault(partner_id, []).append(programme)
    return found


def partner_overview(tx: Tx, scope: OperatorScope, location_id: str) -> PartnerOverview:
    """R-PAR-1, R-PAR-4: one partner tenant as `partners_overview` lists it;
    `NotFoundError` for a Location ID no partner has."""
    location_id = query_key("location_id", location_id)
    rows = tx.query(
        "SELECT partner_id, name, partner_type, users, holding_tenant FROM pf_p_partners"
        " WHERE location_id = ?",
        (location_id,),
    )
    if not rows:
        raise NotFoundError(
            Msg("No partner with Location ID {location_id!r}.", location_id=location_id)
        )
    partner_id, name, kind, users, holding = rows[0]
    programmes = _certifications(tx, [partner_id]).get(partner_id, [])
    return PartnerOverview(location_id, name, kind, users, bool(holding), programmes)


def users_of_partner(
    tx: Tx,
    scope: OperatorScope,
    location_id: str,
    *,
    after: Key | None = None,
    limit: int = DEFAULT_LIMIT,
) -> Page[PartnerUser]:
    """R-PAR-1: the users registered under a partner, by Passport ID, after `(passport_id,)`.

    An unknown Location ID gives an empty page (ask `partner_overview` first for its
    "not found"). `QueryError` for a bad `limit` or `after`."""
    limit = checked_limit(limit)
    after_sql = after_clause(["u.passport"], after, (str,))
    rows = tx.query(
        "SELECT u.passport, u.role FROM pf_p_users u"
        " JOIN pf_p_partners p ON p.partner_id = u.partner_id"
        f"{where('p.location_id = ?', after_sql)} ORDER BY u.passport LIMIT ?",
        (query_key("location_id", location_id), *key_params(after), limit + 1),
    )
    return page_of([PartnerUser(*row) for row in rows], limit, lambda u: (u.passport_id,))
