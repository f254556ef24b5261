"""My Customers over HTTP (R-FAV-*, R-GRP-*, R-LNK-1, R-SVC-2): requests and answers.

All Customers / Favorites Only pages, a customer group's dashboard, child groups, group
admins, favourites, the default view and the partner user's own profile.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from domain.passport import MAX_FAVOURITES
from infra.http.paging import Paged
from infra.http.schemas.partners import PassportId, RequestModel
from projections.customer_queries import CustomerPage, CustomerRow, Dashboard, PartnerUser

View = Literal["all_customers", "favorites_only"]
Connection = Literal["central_connect", "direct_connect", "pc_agent"]
ChildId = Annotated[str, Field(min_length=1, max_length=256, examples=["racks-east"])]


class DeviceCounts(BaseModel):
    """Devices of the customer linked to this partner, by connection type (R-LNK-1)."""

    central_connect: int
    direct_connect: int
    pc_agent: int


class CustomerTile(BaseModel):
    """One customer object of All Customers (R-FAV-1), with its service summary (R-SVC-2)."""

    group_id: UUID
    customer_id: str
    name: str
    devices: DeviceCounts
    service_events: int | None = Field(
        description="R-SVC-2: service events of its devices; null for resellers (R-SVC-1)"
    )
    critical_events: int | None = Field(
        description="R-SVC-2: the critical ones among them; null for resellers (R-SVC-1)"
    )
    favourite: bool = Field(description="A favourite of the user asking (R-FAV-2)")

    @classmethod
    def of(cls, row: CustomerRow) -> CustomerTile:
        """The tile of one row of the page."""
        return cls.model_validate(row, from_attributes=True)


class CustomerList(Paged[CustomerTile]):
    """A page of the view shown, and whether Favorites Only may be chosen (R-FAV-3)."""

    view: View = Field(description="The view shown: the one asked for, else the default")
    favorites_only_available: bool = Field(description="R-FAV-3: at least one favourite")

    @classmethod
    def of_customers(cls, page: CustomerPage, next_cursor: str | None) -> CustomerList:
        """The answer for a page of `list_customers`, with the signed cursor of the next."""
        return cls(
            items=[CustomerTile.of(row) for row in page.rows],
            next_cursor=next_cursor,
            view=page.view,
            favorites_only_available=page.favorites_only_available,
        )


def customer_list_json(page: CustomerPage, next_cursor: str | None) -> bytes:
    """The UTF-8 JSON body of `CustomerList.of_customers(page, next_cursor)`, built from the
    rows without a pydantic model per row (the page's hot path: the models were half of a
    request's CPU, docs/benchmarks.md). Same keys in the same order, the group id in its
    canonical form; the route still declares `CustomerList`, so the OpenAPI schema is
    unchanged, and tests/unit/test_http_customers.py checks both give the same body.
    A row the schema would refuse (a group id that is no UUID) raises ValueError."""
    items = [_tile(row) for row in page.rows]
    body = {
        "items": items,
        "next_cursor": next_cursor,
        "view": page.view,
        "favorites_only_available": page.favorites_only_available,
    }
    return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def _tile(row: CustomerRow) -> dict[str, Any]:
    """One tile as CustomerTile serializes it (field order of the model)."""
    devices = row.devices
    return {
        "group_id": str(UUID(row.group_id)),
        "customer_id": row.customer_id,
        "name": row.name,
        "devices": {
            "central_connect": int(devices["central_connect"]),
            "direct_connect": int(devices["direct_connect"]),
            "pc_agent": int(devices["pc_agent"]),
        },
        "service_events": row.service_events,
        "critical_events": row.critical_events,
        "favourite": bool(row.favourite),
    }


class DashboardDevice(BaseModel):
    """A device of the group linked to this partner, and why it is there (R-LNK-4, R-HLD-3)."""

    serial: str
    connection: str
    model: str
    reasons: list[str] = Field(description="reseller, service_partner, or placed (R-HLD-3)")


class ChildGroup(BaseModel):
    """A child device group the user may see (R-GRP-1)."""

    child_id: str
    name: str
    created_by: str


class CustomerDashboard(BaseModel):
    """One customer group as this user may see it (its ETag is the group's version)."""

    group_id: UUID
    name: str
    is_dashboard: bool = Field(description="A customer dashboard of HP Premium (R-HLD-3)")
    self_service_notifications: bool = Field(description="R-ALR-3, R-ALR-4")
    devices: list[DashboardDevice]
    child_groups: list[ChildGroup] = Field(description="R-GRP-1: created by or shared with you")
    admins: list[str] | None = Field(
        description="R-GRP-3: the group's admins, shown to its admins only (null otherwise)"
    )

    @classmethod
    def of(cls, dashboard: Dashboard) -> CustomerDashboard:
        """The answer about one customer group."""
        return cls.model_validate(dashboard, from_attributes=True)


class NewChildGroup(RequestModel):
    """A child device group to create inside the customer group (R-GRP-1)."""

    child_id: ChildId
    name: str = Field(min_length=1, max_length=200, examples=["Racks, east wing"])


class ChildGroupCreated(BaseModel):
    """The created child group."""

    group_id: UUID
    child_id: str
    name: str


class NewShare(RequestModel):
    """Another admin of the customer group to share the child group with (R-GRP-1)."""

    passport_id: PassportId


class ChildGroupShared(BaseModel):
    """The child group, now visible to `shared_with` too."""

    group_id: UUID
    child_id: str
    shared_with: str


class NewGroupAdmin(RequestModel):
    """A user of the same partner to make an admin of the customer group (R-GRP-3)."""

    passport_id: PassportId


class GroupAdminAdded(BaseModel):
    """The new admin of the customer group."""

    group_id: UUID
    passport_id: str


class NewFavourite(RequestModel):
    """A customer group of your partner to mark as favourite (R-FAV-2, at most 25)."""

    group_id: UUID


class Favourite(BaseModel):
    """A customer group marked as favourite by the user asking."""

    group_id: UUID


class ViewChoice(RequestModel):
    """The view to remember as your default (R-FAV-4); Favorites Only needs a favourite."""

    view: View


class DefaultView(BaseModel):
    """The user's default view as now recorded."""

    view: View


class Profile(BaseModel):
    """The partner user asking, as My Customers knows it (R-PAR-2, R-FAV-3, R-FAV-4)."""

    passport_id: str
    location_id: str
    partner_type: Literal["reseller", "service_partner"]
    admin: bool = Field(description="A partner admin (from the store, not the token)")
    default_view: View
    favourites: int
    max_favourites: int = MAX_FAVOURITES
    favorites_only_available: bool

    @classmethod
    def of(cls, user: PartnerUser, *, admin: bool) -> Profile:
        """The profile of a partner user of the view."""
        return cls(
            passport_id=user.passport,
            location_id=user.partner,
            partner_type=user.partner_type,
            admin=admin,
            default_view=user.default_view,
            favourites=user.favourites,
            favorites_only_available=user.favourites > 0,
        )
