"""Configuration data (R-CON-2), service events (R-SVC-1, R-SVC-2) and service levels
(R-SVC-3) over HTTP: requests and answers, separate from the domain's classes."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from domain.iso import IsoDate
from domain.service_level import ServiceLevel
from infra.http.schemas.partners import RequestModel

Severity = Literal["critical", "warning", "info"]
LevelKind = Literal["warranty", "care_pack", "support_agreement"]
EventId = Annotated[str, Field(min_length=1, max_length=256)]


class Configuration(RequestModel):
    """Configuration data reported by remote support: one JSON object (R-CON-2)."""

    data: dict[str, Any] = Field(min_length=1, description="The device's collected data")


class ConfigurationCollected(BaseModel):
    """The device whose configuration data was kept (its latest replaces the one before)."""

    serial: str


class DeviceConfiguration(BaseModel):
    """R-CON-2: a device's latest configuration data, for a linked partner with consent."""

    serial: str
    data: dict[str, Any]


class NewServiceEvent(RequestModel):
    """A service event reported by remote support (R-SVC-1)."""

    event_id: EventId
    severity: Severity
    summary: str = Field(min_length=1, max_length=4_000)


class ServiceEventRecorded(BaseModel):
    """The recorded service event."""

    serial: str
    event_id: str
    severity: Severity


class ServiceEventOut(BaseModel):
    """One service event of a device the partner services (R-SVC-1); `recorded_at` UTC."""

    serial: str
    customer_id: str | None
    event_id: str
    severity: str
    summary: str
    recorded_at: str


class ServiceSummaryOut(BaseModel):
    """R-SVC-2: a customer's service events, critical ones counted separately."""

    customer_id: str
    events: int
    critical: int


class ServiceLevelBody(RequestModel):
    """A warranty, Care Pack or support agreement, valid from `starts` to `ends` inclusive."""

    kind: LevelKind
    name: str = Field(min_length=1, max_length=200, pattern=r"\S")
    starts: IsoDate
    ends: IsoDate

    @field_validator("ends")
    @classmethod
    def _not_before_start(cls, ends: date, info: ValidationInfo) -> date:
        starts = info.data.get("starts")
        if starts is not None and ends < starts:
            raise ValueError(f"ends ({ends}) before it starts ({starts})")
        return ends

    def level(self) -> ServiceLevel:
        """The command's argument."""
        return ServiceLevel(self.kind, self.name, self.starts, self.ends)


class ServiceLevelOut(BaseModel):
    """One service level of a device (R-SVC-3)."""

    kind: str
    name: str
    starts: date
    ends: date


class ServiceLevelAdded(ServiceLevelOut):
    """The recorded service level, and its device."""

    serial: str


class ServiceLevels(BaseModel):
    """R-SVC-3: the device's highest active service level on `as_of`, or all active ones
    (highest first); expired levels are not active."""

    serial: str
    as_of: date
    levels: list[ServiceLevelOut]
