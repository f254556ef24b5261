"""Actors and query scopes for tests, made the way every entry point makes them.

Partner users are authenticated against the fleet's store (`access.authenticate`), so a
scope's admin flag and partner type are the store's; customers, auditors and operators
are made as a verified token or the CLI's `--as` makes them. Build a partner's scope
when reading, after the commands that set its type (accreditation) have run.
"""

from __future__ import annotations

from domain.partner import PartnerTenant
from domain.passport import Passport
from handlers import PartnerFleet
from handlers.access import (
    Actor,
    AuditScope,
    Claims,
    CustomerScope,
    OperatorScope,
    PartnerScope,
    Role,
    audit_scope,
    authenticate,
    customer_scope,
    make_actor,
    operator_scope,
    partner_scope,
    service_actor,
)

AUDITOR = service_actor("dpo@hp.example", Role.AUDITOR)
OPERATOR = service_actor("ops@hp.example", Role.OPERATOR)
FEED = service_actor("e2open-feed", Role.FEED)
AUDIT: AuditScope = audit_scope(AUDITOR)
OPERATIONS: OperatorScope = operator_scope(OPERATOR)


def partner_actor(fleet: PartnerFleet, passport: str, location_id: str | None = None) -> Actor:
    """The partner user `passport` (of `location_id`, by default the partner it joined),
    confirmed against the store as a bearer token's claims would be."""
    location_id = location_id or _joined(fleet, passport)
    return authenticate(fleet, Claims(passport, Role.PARTNER_USER.value, location_id))


def partner_of(fleet: PartnerFleet, passport: str, location_id: str | None = None) -> PartnerScope:
    """The scope of the partner user `passport` on its own partner's data."""
    actor = partner_actor(fleet, passport, location_id)
    return partner_scope(actor, actor.tenant)


def _joined(fleet: PartnerFleet, passport: str) -> str:
    found: object = fleet.repository.get(Passport.id_for(passport))
    assert isinstance(found, Passport), passport
    assert found.partner_location_id is not None, f"{passport} is no partner user"
    return found.partner_location_id


def customer_actor(customer_id: str, subject: str = "") -> Actor:
    """The customer admin of `customer_id`, as a verified token names it."""
    return make_actor(subject or f"it@{customer_id}", Role.CUSTOMER_ADMIN, customer_id)


def customer_of(customer_id: str) -> CustomerScope:
    """The scope of `customer_id`'s own devices (My IT Environment)."""
    return customer_scope(customer_actor(customer_id), customer_id)


def end_user_actor(customer_id: str, *pcs: str) -> Actor:
    """A person working on `pcs` of `customer_id`."""
    return make_actor(f"user@{customer_id}", Role.END_USER, customer_id, pcs=frozenset(pcs))


def partner_at(fleet: PartnerFleet, location_id: str) -> PartnerScope:
    """The scope of the partner `location_id` for its first user (its admin), confirmed by
    the store; for a partner registered without users, an admin made as a token names it."""
    found: object = fleet.repository.get(PartnerTenant.id_for(location_id))
    assert isinstance(found, PartnerTenant), location_id
    if found.users:
        return partner_of(fleet, next(iter(found.users)), location_id)
    actor = make_actor(
        f"admin@{location_id}", Role.PARTNER_ADMIN, location_id, partner_type=found.partner_type
    )
    return partner_scope(actor, location_id)
