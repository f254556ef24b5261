"""Alerts, repair cases and their queues over HTTP (R-ALR-1, R-ALR-2, R-ALR-4): requests
and answers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from infra.http.schemas.partners import RequestModel

Severity = Literal["critical", "warning", "info"]
CaseSource = Literal["self_service", "insight_rs"]


class NewAlert(RequestModel):
    """An alert for a device, from remote support or HP/HPE operations (R-ALR-1)."""

    alert_id: str = Field(min_length=1, max_length=100, examples=["ALR-0001"])
    severity: Severity
    message: str = Field(min_length=1, max_length=2_000, examples=["Battery failing"])


class AlertRaised(BaseModel):
    """The recorded alert; who hears of it is decided next (GET the alerts lists)."""

    serial: str
    alert_id: str
    severity: Severity


class NewRepairCase(RequestModel):
    """A repair case submitted from a raised alert (R-ALR-1, R-ALR-2): `self_service` by the
    PC's end user or the customer's admin, `insight_rs` by the feed or operations."""

    alert_id: str = Field(min_length=1, max_length=100)
    case_id: str = Field(min_length=1, max_length=100, examples=["CASE-0001"])
    source: CaseSource = "self_service"


class RepairCaseSubmitted(BaseModel):
    """The submitted repair case; where it goes is decided next (the queues)."""

    serial: str
    case_id: str
    alert_id: str
    source: CaseSource
    state: Literal["submitted"] = "submitted"


class QueuedRepairCase(BaseModel):
    """A repair case in a destination's queue, with why it was routed there (R-ALR-2)."""

    serial: str
    case_id: str
    alert_id: str
    source: str
    partner: str | None = Field(description="The service partner of a CSDP queue, else null")
    reason: str
    routed_at: str


class PendingRepairCase(BaseModel):
    """A submitted repair case no queue holds yet (the routing policy is behind)."""

    serial: str
    case_id: str
    alert_id: str
    source: str
    submitted_at: str


class AlertNotification(BaseModel):
    """An alert and who was told of it, with why (R-ALR-1, R-ALR-4)."""

    serial: str
    alert_id: str
    severity: str
    message: str
    partner: str | None
    reason: str
    notified_at: str
