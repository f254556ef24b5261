"""Who the demo is about: its partners, its people, and the principals a UI developer uses.

Every name here is fixed, so tokens minted for `DEMO_PRINCIPALS` (`partnerfleet token issue
--demo`) stay valid for any demo store, however often it is seeded afresh.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from handlers import PartnerFleet
from handlers.access import Actor, Claims, Role, authenticate, service_actor

RESELLER = "DEMO-RESELLER-1"  # HP Premium certified (Resell and View/Monitor): holding tenant
SERVICE_PARTNER = "DEMO-SERVICE-1"  # accredited service partner, certified Service Delivery
RESELLER_2 = "DEMO-RESELLER-2"  # an HPE reseller without HP Premium: no holding tenant
CUSTOMER = "DEMO-CUSTOMER-ACME"  # the customer every story of the demo touches
CUSTOMER_2 = "DEMO-CUSTOMER-GLOBEX"
END_USER_PC = "5CG00001"  # ACME's PC whose end user is a demo principal
CORRELATION_ID = "demo-seed"  # of every command the seeding issues


@dataclass(frozen=True)
class DemoPartner:
    """A demo partner: its Location ID, name, admin (first user) and plain user."""

    location_id: str
    name: str
    admin: str
    user: str
    csdp_account: str | None = None  # accredited as service partner with this account
    programme: str | None = None  # HP Premium certification, if any


PARTNERS = (
    DemoPartner(
        RESELLER,
        "Demo Reseller GmbH",
        "anna@reseller.example",
        "ben@reseller.example",
        programme="resell_view_monitor",
    ),
    DemoPartner(
        SERVICE_PARTNER,
        "Demo Service Partner AG",
        "chris@service.example",
        "dana@service.example",
        csdp_account="CSDP-DEMO-1",
        programme="service_delivery",
    ),
    DemoPartner(
        RESELLER_2, "Second Reseller KG", "erik@reseller2.example", "fay@reseller2.example"
    ),
)
BY_LOCATION = {p.location_id: p for p in PARTNERS}

OPERATOR = Claims("hp-ops@example.com", Role.OPERATOR.value)
AUDITOR = Claims("auditor@example.com", Role.AUDITOR.value)
FEED = Claims("remote-support-feed", Role.FEED.value)  # e2Open, alerts, Insight RS reports


def customer_admin(customer_id: str, slug: str) -> Claims:
    """The IT admin of a demo customer (its devices are registered under this Passport ID)."""
    return Claims(f"it-admin@{slug}.example", Role.CUSTOMER_ADMIN.value, customer_id)


def end_user(customer_id: str, slug: str, serial: str) -> Claims:
    """The person working on one PC of a demo customer."""
    return Claims(
        f"user-{serial.lower()}@{slug}.example", Role.END_USER.value, customer_id, (serial,)
    )


def _partner_principals() -> list[Claims]:
    return [
        Claims(login, role.value, p.location_id)
        for p in PARTNERS
        for login, role in ((p.admin, Role.PARTNER_ADMIN), (p.user, Role.PARTNER_USER))
    ]


DEMO_PRINCIPALS: list[Claims] = [
    OPERATOR,
    AUDITOR,
    FEED,
    *_partner_principals(),
    customer_admin(CUSTOMER, "acme"),
    customer_admin(CUSTOMER_2, "globex"),
    end_user(CUSTOMER, "acme", END_USER_PC),
]


class Principals:
    """The demo's actors, each made once: partner roles authenticated against the store."""

    def __init__(self, fleet: PartnerFleet) -> None:
        self._fleet = fleet
        self._known: dict[Claims, Actor] = {}

    def __call__(self, claims: Claims) -> Actor:
        """The actor of `claims`, under the demo's correlation id."""
        found = self._known.get(claims)
        if found is None:
            found = self._make(replace(claims, correlation_id=CORRELATION_ID))
            self._known[claims] = found
        return found

    def _make(self, claims: Claims) -> Actor:
        role = Role(claims.role)
        if role in (Role.OPERATOR, Role.AUDITOR, Role.FEED):
            return service_actor(claims.subject, role, correlation_id=claims.correlation_id)
        return authenticate(self._fleet, claims)

    def admin(self, location_id: str) -> Actor:
        """The partner's admin (its first user)."""
        partner = BY_LOCATION[location_id]
        return self(Claims(partner.admin, Role.PARTNER_ADMIN.value, location_id))

    def user(self, location_id: str) -> Actor:
        """The partner's plain user."""
        partner = BY_LOCATION[location_id]
        return self(Claims(partner.user, Role.PARTNER_USER.value, location_id))
