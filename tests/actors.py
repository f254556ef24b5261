"""Actors for tests, one builder per role (issue 9): who calls a command, as the access
model sees it. Tests import these; no test builds a `Cause` or an `Actor` by hand.

- `operator()`, `auditor()`, `feed()`: service principals acting locally, as
  `handlers.access.service_actor` makes them (the CLI's `--as`, the Kafka feeds).
- `customer("C1")`, `end_user("C1", pcs=[...])`: a customer admin and an end user, as
  `authenticate` makes them from a token's claims (the store is not asked for these).
- `partner_user(fleet, "LOC-1", passport)`: a partner user or admin, authenticated
  against the store (`authenticate`): its role and partner type come from there.
- `known_partner_user(...)`: the same actor for a user a test registers itself, named
  before the store holds it (module constants such as `ANNA`); `tests/unit/
  test_access_commands.py` proves each such constant equals what `partner_user` returns.
"""

from __future__ import annotations

from collections.abc import Iterable

from handlers.access import (
    Actor,
    Claims,
    Role,
    authenticate,
    make_actor,
    policy_actor,
    service_actor,
)
from handlers.base import FleetApplication
from handlers.fleet import PartnerFleet


def operator(subject: str = "hp-ops", correlation_id: str = "corr-ops") -> Actor:
    """HP/HPE operations: partners, certification, intake by hand, consent corrections."""
    return service_actor(subject, Role.OPERATOR, correlation_id=correlation_id)


def auditor(subject: str = "dpo@hp.example", correlation_id: str = "corr-dpo") -> Actor:
    """An auditor: consent history, exports and corrections of consent records."""
    return service_actor(subject, Role.AUDITOR, correlation_id=correlation_id)


def feed(subject: str = "feed:e2open", correlation_id: str = "corr-feed") -> Actor:
    """The service account of a feed (e2Open reports, device alerts, remote support)."""
    return service_actor(subject, Role.FEED, correlation_id=correlation_id)


def customer(
    customer_id: str,
    subject: str = "admin@customer.example",
    correlation_id: str = "corr-customer",
) -> Actor:
    """The customer admin of `customer_id` (its devices, links, consent)."""
    return _claimed(Claims(subject, Role.CUSTOMER_ADMIN, customer_id), correlation_id)


def end_user(
    customer_id: str,
    pcs: Iterable[str],
    subject: str = "user@customer.example",
    correlation_id: str = "corr-end-user",
) -> Actor:
    """A person working on `pcs`, PCs of customer `customer_id` (R-ALR-1)."""
    claims = Claims(subject, Role.END_USER, customer_id, tuple(pcs))
    return _claimed(claims, correlation_id)


def partner_user(
    fleet: FleetApplication, location_id: str, passport_id: str, correlation_id: str = "corr"
) -> Actor:
    """A user of partner `location_id`, confirmed by the store (admin or not, from there)."""
    claims = Claims(passport_id, Role.PARTNER_USER, location_id, correlation_id=correlation_id)
    return authenticate(fleet, claims)


def known_partner_user(
    location_id: str,
    passport_id: str,
    *,
    admin: bool,
    partner_type: str = "reseller",
    correlation_id: str = "corr",
) -> Actor:
    """The actor `partner_user` returns once the test has registered this user (the first
    user of a partner is its admin), for constants named before the store holds it."""
    role = Role.PARTNER_ADMIN if admin else Role.PARTNER_USER
    return make_actor(
        passport_id,
        role,
        location_id,
        correlation_id=correlation_id,
        partner_type=partner_type,
    )


def _claimed(claims: Claims, correlation_id: str) -> Actor:
    # Customer and end-user claims are not checked against the store (handlers.access),
    # so they are made as `authenticate` makes them, without a fleet.
    return make_actor(
        claims.subject,
        Role(claims.role),
        claims.tenant,
        correlation_id=correlation_id,
        pcs=frozenset(claims.pcs),
    )


def case_submitter(fleet: PartnerFleet, serial: str, source: str = "self_service") -> Actor:
    """Who submits a repair case of the device (R-ALR-1, R-ALR-2): for a self-service
    case the end user of that PC (of the customer owning it), for an Insight RS case the
    remote-support feed."""
    if source == "insight_rs":
        return feed("feed:insight-rs", "corr-insight-rs")
    # An unassigned PC in a holding tenant has no customer yet; its end user still has one.
    owner = fleet.device(serial).customer_id or "C-OF-THE-END-USER"
    return end_user(owner, [serial])


def policy(name: str = "partnerfleet.policy.test", correlation_id: str = "corr-policy") -> Actor:
    """The service's own policy `name` acting (handlers/policies.py)."""
    return policy_actor(name, correlation_id)
