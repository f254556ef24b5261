"""A customer's devices, links and consent over HTTP (R-PAR-2, R-PAR-3, R-LNK-*, R-CON-*,
R-ALR-2): requests and answers, separate from the domain's classes."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field

from domain.consent import CONSENT_TEXTS, CURRENT_CONSENT_TEXT
from domain.device import normalise_serial
from handlers.devices import NewDevice, PartnerChoice
from infra.http.schemas.partners import LocationId, RequestModel, Serial
from projections.environment import EnvironmentDevice

Connection = Literal["central_connect", "direct_connect", "pc_agent"]
LinkRole = Literal["reseller", "service_partner"]
CustomerName = Annotated[
    str, Field(max_length=200, description="Shown as the partner's customer group name")
]
# R-LNK-3 (b), R-CON-1: many devices at once; R-PAR-3 bounds a Passport ID at 1,500.
Serials = Annotated[list[Serial], Field(min_length=1, max_length=1_500)]


def _known_wording(version: str) -> str:
    if version not in CONSENT_TEXTS:
        raise ValueError(f"unknown consent text version; known: {', '.join(sorted(CONSENT_TEXTS))}")
    return version


TextVersion = Annotated[
    str,
    Field(max_length=32, description="The consent wording agreed to (R-CON-3)"),
    AfterValidator(_known_wording),
]


def stored(serials: list[str]) -> list[str]:
    """Serial numbers as the store keeps them (upper case, no blanks), for answers."""
    return [normalise_serial(s) for s in serials]


class PartnerLink(RequestModel):
    """The partner to link, by Location ID, and in which role (R-LNK-1, R-LNK-4)."""

    location_id: LocationId
    role: LinkRole = "reseller"

    def choice(self) -> PartnerChoice:
        """The command's argument."""
        return PartnerChoice(location_id=self.location_id, role=self.role)


class NewDeviceBody(RequestModel):
    """A device to register: central-connect devices name their Insight RS hosting device."""

    serial: Serial
    connection: Connection
    model: str = Field(default="", max_length=200)
    hosting_serial: Serial | None = None
    is_hosting_device: bool = False
    care_plan: Literal["premium", "premium_plus"] | None = None

    def spec(self) -> NewDevice:
        """The command's argument."""
        return NewDevice(**self.model_dump())


class DeviceRegistration(RequestModel):
    """Devices to register under the caller's Passport ID, optionally linked (R-PAR-3, R-LNK-3)."""

    devices: list[NewDeviceBody] = Field(min_length=1, max_length=1_500)
    partner: PartnerLink | None = None
    customer_name: CustomerName = ""


class DevicesRegistered(BaseModel):
    """The registered devices (serials as stored: upper case, no blanks)."""

    customer_id: str
    serials: list[str]

    @classmethod
    def of(cls, customer_id: str, body: DeviceRegistration) -> DevicesRegistered:
        """The answer to a registration."""
        return cls(customer_id=customer_id, serials=stored([d.serial for d in body.devices]))


class DeviceLinks(RequestModel):
    """Link the chosen devices to a partner in a role (R-LNK-2, R-LNK-3)."""

    serials: Serials
    partner: PartnerLink
    customer_name: CustomerName = ""


class DevicesLinked(BaseModel):
    """The devices now linked to the partner in the role."""

    customer_id: str
    serials: list[str]
    location_id: str
    role: LinkRole

    @classmethod
    def of(cls, customer_id: str, serials: list[str], partner: PartnerLink) -> DevicesLinked:
        """The answer to a link."""
        return cls(
            customer_id=customer_id,
            serials=stored(serials),
            location_id=partner.location_id,
            role=partner.role,
        )


class LinkRemoval(RequestModel):
    """Remove the partner linked in `role` from the chosen devices (R-LNK-6)."""

    serials: Serials
    role: LinkRole = "reseller"


class DevicesUnlinked(BaseModel):
    """The devices no partner is linked to in the role any more."""

    customer_id: str
    serials: list[str]
    role: LinkRole

    @classmethod
    def of(cls, customer_id: str, body: LinkRemoval) -> DevicesUnlinked:
        """The answer to an unlink."""
        return cls(customer_id=customer_id, serials=stored(body.serials), role=body.role)


class HostLink(RequestModel):
    """The partner set once in Insight RS for every device of a hosting device (R-LNK-2)."""

    partner: PartnerLink
    customer_name: CustomerName = ""


class HostLinked(BaseModel):
    """The hosting device whose devices are now linked to the partner in the role."""

    customer_id: str
    host_serial: str
    location_id: str
    role: LinkRole


class ConsentGrant(RequestModel):
    """Grant consent ("Optimize my IT environment") for chosen direct-connect devices."""

    serials: Serials
    text_version: TextVersion = CURRENT_CONSENT_TEXT


class ConsentGranted(BaseModel):
    """The devices with consent granted now, on this wording."""

    customer_id: str
    serials: list[str]
    text_version: str


class ConsentWithdrawal(RequestModel):
    """Withdraw consent for chosen direct-connect devices (R-CON-3)."""

    serials: Serials


class ConsentWithdrawn(BaseModel):
    """The devices whose consent was withdrawn: partners' access ended at once."""

    customer_id: str
    serials: list[str]


class HostConsent(RequestModel):
    """One consent setting for every device of an Insight RS hosting device (R-CON-1)."""

    text_version: TextVersion = CURRENT_CONSENT_TEXT


class HostConsentGranted(BaseModel):
    """The hosting device whose devices have consent granted now, on this wording."""

    customer_id: str
    host_serial: str
    text_version: str


class CaseRouting(RequestModel):
    """Send the chosen devices' Insight RS cases to their service partner, or not (R-ALR-2);
    a hosting device's choice is for every device it manages."""

    serials: Serials
    to_service_partner: bool


class CaseRoutingChosen(BaseModel):
    """The devices whose Insight RS case routing is now as chosen."""

    customer_id: str
    serials: list[str]
    to_service_partner: bool


# --- reads: My IT Environment and consent history ---------------------------------------


class ConsentNow(BaseModel):
    """Consent in effect now (R-CON-1…3): on which wording, set where (`device`, or
    `insight_rs_host:<serial>`), since when (UTC); all null but `granted` if never set."""

    granted: bool
    text_version: str | None
    scope: str | None
    since: str | None


class EnvironmentDeviceOut(BaseModel):
    """One of the customer's devices: connection, model, hosting device, links by role
    (R-LNK-4: `reseller`, `service_partner` -> Location ID) and consent now."""

    serial: str
    connection: str
    model: str
    host: str | None = Field(description="Serial of the Insight RS hosting device managing it")
    is_hosting_device: bool
    links: dict[str, str]
    consent: ConsentNow

    @classmethod
    def of(cls, device: EnvironmentDevice) -> EnvironmentDeviceOut:
        """The answer about one device of My IT Environment."""
        return cls.model_validate(device, from_attributes=True)


class HostGroupOut(BaseModel):
    """The devices of one hosting device (it first), or (`host` null) the standalone ones."""

    host: str | None
    devices: list[EnvironmentDeviceOut]


class EnvironmentPage(BaseModel):
    """R-PAR-2: a page of My IT Environment, by hosting device (a group may continue on
    the next page, under the same `host`)."""

    customer_id: str
    groups: list[HostGroupOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null when this is the last."
    )


class ConsentRecord(BaseModel):
    """One consent or link record of a device (R-CON-3, R-CON-4), in store order.

    `kind`: consent or link; `action`: granted, withdrawn, corrected, linked, unlinked;
    `at`: UTC; `corrects_version`: the record a correction replaces.
    """

    position: int = Field(description="Store position: pass as `after` to resume")
    serial: str
    version: int
    at: str
    customer_id: str | None
    kind: str
    action: str
    partner: str | None
    role: str | None
    text_version: str | None
    text_digest: str | None
    scope: str | None
    reason: str | None
    corrects_version: int | None
    principal: str
    correlation_id: str
