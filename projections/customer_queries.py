"""Queries of the My Customers view: All Customers / Favorites Only pages and dashboards."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from domain.base import Msg, NotAllowedError, NotFoundError
from domain.device import Device
from domain.passport import Passport
from domain.text import FREE_TEXT, TextError, checked, fold
from handlers.access import PartnerScope
from projections.base import QueryError, Tx, missing_device, query_key, query_serial
from projections.paging import MAX_LIMIT, Key, after_clause

__all__ = ["QueryError", "customer_dashboard", "list_customers", "partner_device", "partner_user"]

CONNECTIONS = ("central_connect", "direct_connect", "pc_agent")
MAX_PAGE = MAX_LIMIT


@dataclass(frozen=True)
class CustomerRow:
    """One customer object in All Customers (R-FAV-1)."""

    group_id: str
    customer_id: str
    name: str
    devices: dict[str, int]
    service_events: int | None  # None for resellers: they never see service events (R-SVC-1)
    critical_events: int | None
    favourite: bool


@dataclass(frozen=True)
class CustomerPage:
    """A page of the view the user is looking at, with the cursor of the next page.

    `next_cursor` is this module's opaque cursor; `next_after` is the same position as
    plain values, `(search name, group id)`, for callers that make cursors of their own
    (the HTTP layer signs it); pass either back (`cursor=` or `after=`).
    """

    view: str
    favorites_only_available: bool
    rows: list[CustomerRow]
    next_cursor: str | None
    next_after: Key | None = None


@dataclass(frozen=True)
class PartnerUser:
    """A recognised partner user (R-PAR-2) and what the pages need to know of it."""

    passport: str
    partner: str
    partner_type: str
    default_view: str
    favourites: int


def partner_user(tx: Tx, scope: PartnerScope) -> PartnerUser:
    """R-PAR-2: the partner user of `scope`, as the view knows it, or a refusal (the view
    has not caught up with the user's registration yet): My Customers is for partner users
    only."""
    passport = scope.passport
    rows = tx.query(
        "SELECT p.partner, p.partner_type, u.default_view,"
        " (SELECT count(*) FROM pf_c_favourites f WHERE f.passport_ref = u.passport_ref)"
        " FROM pf_c_users u JOIN pf_c_partners p ON p.partner_id = u.partner_id"
        " WHERE u.passport = ? AND p.partner = ?",
        (passport, scope.location_id),
    )
    if not rows:
        raise NotAllowedError(
            Msg(
                "{passport} is not recognised as a partner user; My Customers is shown "
                "only to partner users.",
                passport=passport,
            ),
            rule="R-PAR-2",
        )
    partner, partner_type, default_view, favourites = rows[0]
    return PartnerUser(passport, partner, partner_type, default_view, int(favourites))


def list_customers(
    tx: Tx,
    scope: PartnerScope,
    *,
    view: str | None = None,
    search: str | None = None,
    connection: str | None = None,
    has_critical: bool | None = None,
    cursor: str | None = None,
    after: Key | None = None,
    limit: int = 50,
) -> CustomerPage:
    """R-FAV-1…5, R-LNK-1: a page of the partner's All Customers or the user's Favorites
    Only, filters applied to that set, keyset-paged on (name, group id) after `cursor` or
    `after` (`CustomerPage.next_cursor` / `next_after`); QueryError for a bad one."""
    user = partner_user(tx, scope)
    shown = _chosen_view(user, view)
    _check_page(connection, limit)
    where, params = _filters(user, shown, search, connection, has_critical, cursor)
    if after is not None:
        where += " AND " + after_clause(["g.search_name", "g.group_id"], after, (str, str))
        params += list(after)
    rows = tx.query(
        PAGE_SQL.format(where=where), [str(Passport.id_for(scope.passport)), *params, limit + 1]
    )
    page = [_row(user, r) for r in rows[:limit]]
    more = len(rows) > limit
    last = (rows[limit - 1][9], rows[limit - 1][0]) if more else None
    return CustomerPage(
        shown, user.favourites > 0, page, _encode(rows[limit - 1]) if more else None, last
    )


def customer_row(tx: Tx, scope: PartnerScope, group_id: str) -> CustomerRow:
    """R-FAV-1, R-LNK-1: one customer of the partner as All Customers shows it (a tile);
    NotFoundError for a group that is not this partner's, or deleted."""
    user = partner_user(tx, scope)
    rows = tx.query(
        PAGE_SQL.format(where="g.partner = ? AND g.deleted = 0 AND g.group_id = ?"),
        [str(Passport.id_for(scope.passport)), user.partner, query_key("group_id", group_id), 1],
    )
    if not rows:
        raise NotFoundError(
            Msg(
                "No customer group {group_id} at partner {location_id}.",
                group_id=group_id,
                location_id=scope.location_id,
            )
        )
    return _row(user, rows[0])


PAGE_SQL = (
    "SELECT g.group_id, g.customer_id, g.name, g.central_connect, g.direct_connect, g.pc_agent,"
    " g.service_events, g.critical_events, f.group_id, g.search_name"
    " FROM pf_c_groups g LEFT JOIN pf_c_favourites f"
    " ON f.group_id = g.group_id AND f.passport_ref = ?"
    " WHERE {where} ORDER BY g.search_name, g.group_id LIMIT ?"
)


def _chosen_view(user: PartnerUser, view: str | None) -> str:
    shown = view or user.default_view
    if shown not in ("all_customers", "favorites_only"):
        raise QueryError(
            Msg("Unknown view {shown!r}; use all_customers or favorites_only.", shown=shown)
        )
    if shown == "favorites_only" and user.favourites == 0:
        if view is not None:
            raise QueryError(
                Msg("Favorites Only is available once you have at least one favourite."),
                rule="R-FAV-3",
            )
        shown = "all_customers"  # R-FAV-3: without favourites the view falls back
    return shown


def _check_page(connection: str | None, limit: int) -> None:
    if connection is not None and connection not in CONNECTIONS:
        raise QueryError(
            Msg(
                "Unknown connection type {connection!r}; use one of {known}.",
                connection=connection,
                known=CONNECTIONS,
            )
        )
    if not 1 <= limit <= MAX_PAGE:
        raise QueryError(
            Msg(
                "A page holds 1 to {most} customers, not {limit}.",
                most=MAX_PAGE,
                limit=limit,
            )
        )


def _filters(
    user: PartnerUser,
    shown: str,
    search: str | None,
    connection: str | None,
    has_critical: bool | None,
    cursor: str | None,
) -> tuple[str, list[Any]]:
    where, params = ["g.partner = ?", "g.deleted = 0"], [user.partner]
    if shown == "favorites_only":
        where.append("f.group_id IS NOT NULL")
    term = _search_term(search)
    if term:
        where.append("g.search_name LIKE ? ESCAPE '!'")
        params.append(f"%{_escape(term)}%")
    if connection:
        where.append(f"g.{connection} > 0")
    if has_critical is not None:
        where.append("g.critical_events > 0" if has_critical else "g.critical_events = 0")
    if cursor:
        name, group_id = _decode(cursor)
        where.append("(g.search_name > ? OR (g.search_name = ? AND g.group_id > ?))")
        params += [name, name, group_id]
    return " AND ".join(where), params


def _search_term(search: str | None) -> str:
    """R-FAV-5: the term in the form names are stored for search (`domain.text.fold`)."""
    return "" if search is None else fold(_text("search", search).strip())


def _text(field: str, value: str) -> str:
    """A query's text as commands store it (keys NFC), or a QueryError naming the field."""
    return query_key(field, value)


def _escape(term: str) -> str:
    return term.replace("!", "!!").replace("%", "!%").replace("_", "!_")


def _row(user: PartnerUser, r: tuple[Any, ...]) -> CustomerRow:
    service = user.partner_type == "service_partner"
    return CustomerRow(
        group_id=r[0],
        customer_id=r[1],
        name=r[2],
        devices=dict(zip(CONNECTIONS, (int(r[3]), int(r[4]), int(r[5])), strict=True)),
        service_events=int(r[6]) if service else None,
        critical_events=int(r[7]) if service else None,
        favourite=r[8] is not None,
    )


def _encode(row: tuple[Any, ...]) -> str:
    return base64.urlsafe_b64encode(json.dumps([row[9], row[0]]).encode()).decode()


def _decode(cursor: str) -> tuple[str, str]:
    try:
        name, group_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return checked("cursor", str(name), FREE_TEXT), checked("cursor", str(group_id))
    except (ValueError, TypeError, TextError) as error:
        raise QueryError(Msg("The page cursor is not one this service issued.")) from error


@dataclass(frozen=True)
class DashboardDevice:
    """A device linked to this partner in the group (R-LNK-1), and why it is there."""

    serial: str
    connection: str
    model: str
    reasons: list[str]


@dataclass(frozen=True)
class Dashboard:
    """R-LNK-1, R-GRP-1, R-GRP-3: devices, visible child groups and admins of one group."""

    group_id: str
    name: str
    is_dashboard: bool
    self_service_notifications: bool
    devices: list[DashboardDevice]
    child_groups: list[dict[str, str]]
    admins: list[str] | None  # R-GRP-3: shown to the group's admins only


def customer_dashboard(tx: Tx, scope: PartnerScope, group_id: str) -> Dashboard:
    """The dashboard of one of the partner's customer groups, as this user may see it.

    Another partner's group, a deleted one and an unknown id are all "not found", in the
    same words (`NotFoundError`, R-LNK-1), as the group commands say it.
    """
    user, group_id = partner_user(tx, scope), query_key("group_id", group_id)
    rows = tx.query(
        "SELECT name, is_dashboard, notifications FROM pf_c_groups"
        " WHERE group_id = ? AND partner = ? AND deleted = 0",
        (group_id, user.partner),
    )
    if not rows:
        raise NotFoundError(Msg("No customer group {group_id}.", group_id=group_id))
    name, is_dashboard, notifications = rows[0]
    admins = [
        a
        for (a,) in tx.query(
            "SELECT passport FROM pf_c_admins WHERE group_id = ? ORDER BY passport", (group_id,)
        )
    ]
    return Dashboard(
        group_id,
        name,
        bool(is_dashboard),
        bool(notifications),
        _devices(tx, group_id),
        _children(tx, group_id, user.passport),
        admins if user.passport in admins else None,
    )


def _devices(tx: Tx, group_id: str) -> list[DashboardDevice]:
    rows = tx.query(
        "SELECT d.serial, d.connection, d.model, m.reason FROM pf_c_members m"
        " JOIN pf_c_devices d ON d.device_id = m.device_id WHERE m.group_id = ?"
        " ORDER BY d.serial, m.reason",
        (group_id,),
    )
    devices: dict[str, DashboardDevice] = {}
    for serial, connection, model, reason in rows:
        found = devices.setdefault(serial, DashboardDevice(serial, connection, model, []))
        found.reasons.append(reason)
    return list(devices.values())


def _children(tx: Tx, group_id: str, passport: str) -> list[dict[str, str]]:
    rows = tx.query(
        "SELECT c.child_id, c.name, c.created_by FROM pf_c_children c WHERE c.group_id = ?"
        " AND c.by_partner = 1 AND (c.created_by = ? OR EXISTS (SELECT 1 FROM pf_c_shares s"
        " WHERE s.group_id = c.group_id AND s.child_id = c.child_id AND s.passport = ?))"
        " ORDER BY c.name, c.child_id",
        (group_id, passport, passport),
    )
    return [{"child_id": c, "name": n, "created_by": b} for c, n, b in rows]


@dataclass(frozen=True)
class DeviceGroup:
    """A customer group of the partner a device is in, and why it is there (R-LNK-1)."""

    group_id: str
    name: str
    customer_id: str
    reasons: list[str]


@dataclass(frozen=True)
class PartnerDevice:
    """R-LNK-1: a device linked to (or placed with) this partner, as its device page shows it:
    serial, connection type, model, and the partner's groups it is in, each with why."""

    serial: str
    connection: str
    model: str
    groups: list[DeviceGroup]


def partner_device(tx: Tx, scope: PartnerScope, serial: str) -> PartnerDevice:
    """R-LNK-1, R-LNK-6: a device in one of this partner's (not deleted) customer groups.

    A device of another partner, one unlinked from this partner, or an unknown serial are
    all "not found" (`NotFoundError`), in the same words; a bad serial is a `QueryError`.
    """
    device = query_serial(serial)
    rows = tx.query(
        "SELECT d.serial, d.connection, d.model, g.group_id, g.name, g.customer_id, m.reason"
        " FROM pf_c_devices d JOIN pf_c_members m ON m.device_id = d.device_id"
        " JOIN pf_c_groups g ON g.group_id = m.group_id"
        " WHERE m.device_id = ? AND g.partner = ? AND g.deleted = 0"
        " ORDER BY g.search_name, g.group_id, m.reason",
        (str(Device.id_for(device)), scope.location_id),
    )
    if not rows:
        raise missing_device(device)
    groups: dict[str, DeviceGroup] = {}
    for _, _, _, group_id, name, customer_id, reason in rows:
        found = groups.setdefault(group_id, DeviceGroup(group_id, name, customer_id, []))
        found.reasons.append(reason)
    return PartnerDevice(rows[0][0], rows[0][1], rows[0][2], list(groups.values()))
