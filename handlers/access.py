"""Who is asking: the authenticated `Actor`, its role, and the checked scopes (issue 9).

One access model below every entry point (HTTP, CLI, policies, feeds, tests):

1. `authenticate(fleet, claims)` turns verified claims (a bearer token's, or a local
   `--as ROLE:SUBJECT`) into an `Actor`. Partner roles are checked against the store: the
   subject must be a user registered under the Location ID, and whether it is an admin
   comes from the store, never from the token.
2. Commands declare once who may call them (`handlers.base.command`): the roles, and the
   argument that names the caller's own tenant.
3. Queries take a scope made here (`partner_scope`, `customer_scope`, `audit_scope`,
   `operator_scope`), never a bare tenant string, so an unchecked read is a type error.

Two refusals, in this order (docs/decisions.md, "Access matrix"):

- `ForbiddenError` (HTTP 403): the role may never do this action, on any tenant. The
  answer does not depend on the resource, so it reveals nothing about it.
- `NotFoundError` (HTTP 404): the role may, but the resource is another tenant's (or does
  not exist). The two look the same, so another tenant's ids do not leak.

`Actor` and the scopes can be made only by this module (a private seal is checked on
construction): code elsewhere cannot skip the check by building one.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from domain.base import Cause, Msg, NotAllowedError, NotFoundError
from domain.partner import PartnerTenant

if TYPE_CHECKING:
    from handlers.base import FleetApplication


class Role(StrEnum):
    """The roles of issue 9. A token names one; partner roles are confirmed by the store."""

    PARTNER_USER = "partner_user"  # a user registered under a partner's Location ID
    PARTNER_ADMIN = "partner_admin"  # ... who is that partner's admin (from the store)
    CUSTOMER_ADMIN = "customer_admin"  # the IT admin of one customer (tenant: customer id)
    END_USER = "end_user"  # a person working on one or more PCs of a customer
    AUDITOR = "auditor"  # reads consent history and exports, nothing else
    OPERATOR = "operator"  # HP/HPE operations: partners, certification, intake by hand
    FEED = "feed"  # service account of the e2Open or alert intake
    POLICY = "policy"  # the service's own policies (handlers/policies.py); never a token's


PARTNER_ROLES = frozenset({Role.PARTNER_USER, Role.PARTNER_ADMIN})
# Roles bound to one tenant: a command's tenant argument must be theirs.
TENANT_ROLES = PARTNER_ROLES | {Role.CUSTOMER_ADMIN, Role.END_USER}
# Roles a bearer token may carry; POLICY is the service acting on its own.
TOKEN_ROLES = frozenset(Role) - {Role.POLICY}


class ForbiddenError(NotAllowedError):
    """The role may never do this action (HTTP 403); says which role and which action."""


class AuthenticationError(Exception):
    """Claims that do not make an actor (HTTP 401): unknown role, missing tenant, a partner
    user the store does not know under that Location ID."""


_SEAL = object()


def _check_seal(seal: object, what: str) -> None:
    if seal is not _SEAL:
        raise TypeError(f"{what} is made only by handlers.access, after the check.")


@dataclass(frozen=True)
class Claims:
    """What an authenticated request says about its principal, before the store is asked.

    `subject`: Passport ID or service account; `tenant`: the Location ID (partner roles),
    customer id (customer_admin, end_user), or "" (auditor, operator, feed); `pcs`: the
    serial numbers an end user works on.
    """

    subject: str
    role: str
    tenant: str = ""
    pcs: tuple[str, ...] = ()
    correlation_id: str = ""


class ClaimsVerifier(Protocol):
    """Turns a bearer token into the verified claims it carries (infra/http/auth.py's
    TokenVerifier, for HTTP and the CLI's `--token`); raises `AuthenticationError` with a
    reason that never repeats the token."""

    def claims(self, token: str) -> Claims:
        """The token's verified claims."""
        ...


@dataclass(frozen=True)
class Actor(Cause):
    """An authenticated principal: a `Cause` (recorded on every event it causes, with
    `principal` = the subject) with its role and tenant.

    `tenant` is a Location ID for partner roles and a customer id for customer_admin and
    end_user; "" otherwise. `pcs` are an end user's PCs. `partner_type` is the partner's
    type from the store (partner roles only).
    """

    role: Role
    tenant: str
    pcs: frozenset[str] = frozenset()
    partner_type: str | None = None
    _seal: object = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_seal(self._seal, "Actor")

    @property
    def subject(self) -> str:
        """The Passport ID or service account."""
        return self.principal

    def __str__(self) -> str:
        tenant = f"@{self.tenant}" if self.tenant else ""
        return f"{self.role.value}:{self.subject}{tenant}"


class NotCachedError(Exception):
    """`authenticate(..., cached_only=True)` (and `current_at`): the partner is not cached at
    its stored version, so it would have to be read from the store, which a caller on the
    event loop must not wait for (it answers that request in a thread instead)."""


def authenticate(
    fleet: FleetApplication,
    claims: Claims,
    stored_versions: Mapping[uuid.UUID, int | None] | None = None,
    *,
    cached_only: bool = False,
) -> Actor:
    """The actor these claims describe, confirmed against the store for partner roles.

    `stored_versions`: aggregates' last stored versions the caller read a moment ago (None
    for one with no events), in a round trip it made anyway (the page's plain path reads
    the partner's with the read models' positions): a partner found there is taken from
    the aggregate cache when cached at that version, else read from the store as always.
    `cached_only` (with `stored_versions`): NotCachedError rather than that store read, for
    a caller on the event loop (the page's plain path, session 19).

    Raises `AuthenticationError` for an unknown role, a role that needs a tenant without
    one, or a partner role whose subject is not a user of that Location ID (the answer is
    the same whether the partner exists or not).
    """
    try:
        role = Role(claims.role)
    except ValueError:
        raise AuthenticationError(Msg("Unknown role {role!r}.", role=claims.role)) from None
    if role not in TOKEN_ROLES:
        raise AuthenticationError(
            Msg("The role {role!r} is not given to principals.", role=role.value)
        )
    if not claims.subject:
        raise AuthenticationError(Msg("The principal has no subject."))
    # Keys in the form commands store them (NFC, issue 8 kind 4): "jürgen" typed decomposed
    # is the user registered composed.
    claims = replace(claims, subject=_nfc(claims.subject), tenant=_nfc(claims.tenant))
    needs_tenant = role in PARTNER_ROLES or role in (Role.CUSTOMER_ADMIN, Role.END_USER)
    if needs_tenant and not claims.tenant:
        raise AuthenticationError(Msg("The role {role} needs a tenant.", role=role.value))
    tenant = claims.tenant if needs_tenant else ""
    partner_type = None
    if role in PARTNER_ROLES:
        partner = _partner(fleet, tenant, stored_versions or {}, cached_only)
        user_role = None if partner is None else partner.users.get(claims.subject)
        if partner is None or user_role is None:
            raise AuthenticationError(
                Msg(
                    "{subject} is not a user registered under Location ID {tenant!r}.",
                    subject=claims.subject,
                    tenant=tenant,
                )
            )
        role = Role.PARTNER_ADMIN if user_role == "admin" else Role.PARTNER_USER
        partner_type = partner.partner_type
    return make_actor(
        claims.subject,
        role,
        tenant,
        correlation_id=claims.correlation_id,
        pcs=frozenset(claims.pcs) if role is Role.END_USER else frozenset(),
        partner_type=partner_type,
    )


def claimed_partner(claims: Claims) -> uuid.UUID | None:
    """The id of the partner `authenticate` reads for these claims (a partner role with a
    tenant), or None: for a caller reading its stored version beforehand."""
    if claims.role not in {role.value for role in PARTNER_ROLES} or not claims.tenant:
        return None
    return PartnerTenant.id_for(_nfc(claims.tenant))


def _nfc(key: str) -> str:
    return unicodedata.normalize("NFC", key)


def _partner(
    fleet: FleetApplication,
    location_id: str,
    stored_versions: Mapping[uuid.UUID, int | None],
    cached_only: bool = False,
) -> PartnerTenant | None:
    # As stored now, in one round trip (the cached partner brought up to date, issue 11),
    # or none when the caller read its stored version in its own (session 18): a user
    # removed or demoted a moment ago is refused or demoted on the next request.
    partner_id = PartnerTenant.id_for(location_id)
    try:
        if partner_id in stored_versions:
            version = stored_versions[partner_id]
            return fleet.current_at(PartnerTenant, partner_id, version, cached_only)
        if cached_only:
            raise NotCachedError(partner_id)
        return fleet.current(PartnerTenant, partner_id)
    except NotFoundError:  # the id names another kind of aggregate
        return None


def policy_actor(policy_name: str, correlation_id: str) -> Actor:
    """The service's own policy acting, under the triggering event's correlation id."""
    return make_actor(f"policy:{policy_name}", Role.POLICY, "", correlation_id=correlation_id)


def service_actor(subject: str, role: Role, *, correlation_id: str = "") -> Actor:
    """An operator, auditor or feed acting locally (the CLI's `--as ROLE:SUBJECT`, the
    Kafka feeds, the demo seeding): roles that carry no tenant to check against the store.
    """
    if role in TENANT_ROLES or role is Role.POLICY:
        raise AuthenticationError(
            Msg("The role {role} needs a token or the store's check.", role=role.value)
        )
    return make_actor(subject, role, correlation_id=correlation_id)


def make_actor(
    subject: str,
    role: Role,
    tenant: str = "",
    *,
    correlation_id: str = "",
    pcs: frozenset[str] = frozenset(),
    partner_type: str | None = None,
) -> Actor:
    """An actor without a store check: for `authenticate` and the service's own principals.

    Tests build actors through `tests/actors.py`, which authenticates against a fleet.
    """
    return Actor(
        subject,
        correlation_id or _new_correlation_id(),
        role,
        tenant,
        pcs,
        partner_type,
        _SEAL,
    )


def _new_correlation_id() -> str:
    return str(uuid.uuid4())


# --- checks shared by commands and scopes -------------------------------------------------


def allow(actor: Actor, action: str, roles: frozenset[Role]) -> None:
    """`ForbiddenError` unless the actor's role is one of `roles` for `action`."""
    if actor.role not in roles:
        raise ForbiddenError(
            Msg(
                "The role {role} may not {action}.",
                role=actor.role.value,
                action=action.replace("_", " "),
            )
        )


def require_own(actor: Actor, tenant: str, missing: Msg) -> None:
    """`NotFoundError` unless `tenant` (a Location ID or customer id) is the actor's own.

    `missing` is the refusal ("No customer 'C9' found."): the same words whether the
    resource exists or not.
    """
    if not owns(actor, tenant):
        raise NotFoundError(missing)


def owns(actor: Actor, tenant: str) -> bool:
    """Whether `tenant` (a Location ID or customer id, compared in NFC) is the actor's own."""
    return _nfc(tenant) == actor.tenant


def missing_tenant(argument: str, value: object) -> Msg:
    """The refusal for a partner (`argument` "location_id") or a customer that is not the
    actor's own: the words for one that does not exist."""
    if argument == "location_id":
        return Msg("No partner with Location ID {value!r} found.", value=value)
    return Msg("No customer {value!r} found.", value=value)


# --- scopes: what a query may read, made only here ---------------------------------------


@dataclass(frozen=True)
class PartnerScope:
    """A partner's own data, for one of its users (R-LNK-1, R-PAR-4, R-HLD-3).

    `location_id`: the partner; `passport`: the user; `admin`: from the store;
    `partner_type`: "reseller" or "service_partner", from the store.
    """

    location_id: str
    passport: str
    admin: bool
    partner_type: str | None
    _seal: object = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_seal(self._seal, "PartnerScope")

    def require_service_partner(self) -> None:
        """R-SVC-1: service events, summaries and levels only for a service partner."""
        if self.partner_type != "service_partner":
            raise ForbiddenError(
                Msg(
                    "Partner {location_id} is not a service partner; service events and "
                    "service levels are shown to service partners only (R-SVC-1).",
                    location_id=self.location_id,
                ),
                rule="R-SVC-1",
            )


@dataclass(frozen=True)
class CustomerScope:
    """One customer's own devices, links and consent ("My IT Environment", R-PAR-2)."""

    customer_id: str
    _seal: object = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_seal(self._seal, "CustomerScope")


@dataclass(frozen=True)
class EndUserScope:
    """The PCs one end user works on (`pcs`, serials as the token names them) of its
    customer: their self-service pop-ups and repair cases (R-ALR-1)."""

    customer_id: str
    pcs: frozenset[str]
    _seal: object = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_seal(self._seal, "EndUserScope")


@dataclass(frozen=True)
class AuditScope:
    """Consent history and exports, for an auditor or operator (R-CON-3, R-CON-4)."""

    principal: str
    _seal: object = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_seal(self._seal, "AuditScope")


@dataclass(frozen=True)
class OperatorScope:
    """HP/HPE operations: every partner, the intake's rejections and unrouted cases."""

    principal: str
    _seal: object = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_seal(self._seal, "OperatorScope")


def partner_scope(
    actor: Actor, location_id: str, action: str = "read partner data"
) -> PartnerScope:
    """The partner's scope for one of its users; 403 for other roles, 404 for another
    partner's Location ID (R-LNK-1)."""
    allow(actor, action, PARTNER_ROLES)
    require_own(actor, location_id, missing_tenant("location_id", location_id))
    return PartnerScope(  # the actor's tenant: the checked key, in its stored form
        actor.tenant, actor.subject, actor.role is Role.PARTNER_ADMIN, actor.partner_type, _SEAL
    )


def customer_scope(
    actor: Actor, customer_id: str, action: str = "read customer data"
) -> CustomerScope:
    """The customer's own scope, for its customer admin; 404 for another customer's id."""
    allow(actor, action, frozenset({Role.CUSTOMER_ADMIN}))
    require_own(actor, customer_id, missing_tenant("customer_id", customer_id))
    return CustomerScope(actor.tenant, _SEAL)


def end_user_scope(
    actor: Actor, customer_id: str, action: str = "read an end user's PCs"
) -> EndUserScope:
    """The end user's own PCs (R-ALR-1); 403 for other roles, 404 for another customer's id."""
    allow(actor, action, frozenset({Role.END_USER}))
    require_own(actor, customer_id, missing_tenant("customer_id", customer_id))
    return EndUserScope(actor.tenant, actor.pcs, _SEAL)


def audit_scope(actor: Actor, action: str = "read consent history") -> AuditScope:
    """Consent history for the auditor and operator roles (R-CON-3, R-CON-4)."""
    allow(actor, action, frozenset({Role.AUDITOR, Role.OPERATOR}))
    return AuditScope(actor.subject, _SEAL)


def operator_scope(actor: Actor, action: str = "read operations data") -> OperatorScope:
    """HP/HPE operations' scope."""
    allow(actor, action, frozenset({Role.OPERATOR}))
    return OperatorScope(actor.subject, _SEAL)
