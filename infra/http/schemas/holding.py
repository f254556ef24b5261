"""Holding tenant, customer dashboards, transfers and cPIN over HTTP (R-HLD-*, R-ALR-3,
R-ALR-4, R-PAR-4): requests and answers. A cPIN is write-only: no answer carries it."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, Field, SecretStr

from domain.customer_group import CustomerGroup
from infra.http.schemas.partners import RequestModel, Serial

CarePlan = Literal["premium", "premium_plus"]
TransferId = Annotated[str, Field(min_length=1, max_length=256, examples=["T-2026-0001"])]


class UnassignedPC(BaseModel):
    """A PC waiting in the partner's holding tenant, as e2Open reported it (R-HLD-1)."""

    serial: str
    model: str
    distributor: str
    ship_date: str = Field(description="ISO 8601 date the distributor shipped it")
    end_customer: str | None
    care_plan: str


class NewDashboard(RequestModel):
    """A customer dashboard to create for a customer, with the customer's cPIN (R-HLD-3)."""

    customer_id: str = Field(min_length=1, max_length=256, examples=["DEMO-CUSTOMER-ACME"])
    customer_name: str = Field(min_length=1, max_length=200, examples=["ACME Corp."])
    cpin: SecretStr = Field(
        min_length=4,
        max_length=64,
        description="The customer's company PIN (kept only as a keyed, salted verifier)",
    )


class DashboardCreated(BaseModel):
    """The created customer dashboard (the partner's customer group for the customer)."""

    location_id: str
    dashboard_id: UUID
    customer_id: str


class Dashboard(BaseModel):
    """A customer dashboard's settings as recorded now (its ETag is its version)."""

    dashboard_id: UUID
    location_id: str
    customer_id: str
    customer_name: str
    self_service_notifications: bool = Field(
        description="R-ALR-3, R-ALR-4: whether end users get self-service alert pop-ups"
    )
    pcs: int = Field(description="How many PCs are placed in the dashboard")
    premium_pcs: int = Field(description="How many of them have HP Premium/Premium+")

    @classmethod
    def of(cls, group: CustomerGroup) -> Dashboard:
        """The answer about a customer dashboard."""
        return cls(
            dashboard_id=group.id,
            location_id=group.partner_location_id,
            customer_id=group.customer_id,
            customer_name=group.customer_name,
            self_service_notifications=group.self_service_notifications,
            pcs=len(group.placed_devices),
            premium_pcs=len(group.premium_devices),
        )


class NotificationSetting(RequestModel):
    """Self-service notifications of a customer dashboard on or off (R-ALR-4)."""

    on: bool


class NotificationsSwitched(BaseModel):
    """The dashboard's self-service notification setting now."""

    dashboard_id: UUID
    on: bool


class Transfer(RequestModel):
    """PCs to move from one source to one target: the holding tenant or one of the partner's
    customer dashboards (R-HLD-3). A reversal is a transfer back, target and source swapped."""

    transfer_id: TransferId
    serials: list[Serial] = Field(min_length=1, max_length=1_000)
    source_id: UUID = Field(description="The holding tenant's id or a customer dashboard's id")
    target_id: UUID = Field(description="The holding tenant's id or a customer dashboard's id")


class Transferred(BaseModel):
    """The recorded transfer."""

    transfer_id: str
    serials: list[str]
    source_id: UUID
    target_id: UUID


class Enrolment(RequestModel):
    """A PC the customer enrols into its own customer dashboard with its cPIN (R-HLD-3)."""

    cpin: SecretStr = Field(min_length=1, max_length=64, description="The customer's cPIN")
    serial: Serial
    model: str = Field(default="", max_length=200)
    care_plan: CarePlan | None = None


class Enrolled(BaseModel):
    """The PC, now in the customer's dashboard."""

    serial: str
    dashboard_id: UUID
    customer_id: str


class MissingDeviceRequest(BaseModel):
    """An open support request for PCs missing from a holding tenant (R-HLD-2)."""

    location_id: str
    request_id: str
    serials: list[str]
    opened_at: str
