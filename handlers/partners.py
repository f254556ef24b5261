"""Commands on partner tenants and their users (R-PAR-1, R-PAR-4, R-HLD-2)."""

from __future__ import annotations

from uuid import UUID

from domain.base import Cause, DomainError, Msg
from domain.key_claim import ClaimKind, KeyClaim
from domain.partner import PartnerTenant, UserRole
from domain.passport import Passport
from handlers.access import Actor, Role
from handlers.base import FleetApplication, Working, command


def load_partner(working: Working, location_id: str) -> PartnerTenant:
    """The partner with this Location ID, or a refusal that says so (`NotFoundError`; its
    words made only when refused, session 20)."""
    return working.load(
        PartnerTenant,
        PartnerTenant.id_for(location_id),
        lambda: Msg(
            "No partner has Location ID {location_id!r}; check the ID the partner gave you.",
            location_id=location_id,
        ),
    )


def load_passport(working: Working, cause: Cause, passport_id: str) -> Passport:
    """The person's Passport aggregate, opened on first use (KeyTakenError when another
    spelling of the Passport ID was registered first)."""
    found = working.find(Passport, Passport.id_for(passport_id))
    if found is not None:
        return found
    opened = working.add(Passport.open(cause, passport_id))
    claim_key(working, cause, "passport", passport_id)
    return opened


def claim_key(working: Working, cause: Cause, kind: ClaimKind, spelling: str) -> None:
    """Issue 8, kind 4: `spelling` becomes the one spelling of its case-folded identifier,
    or KeyTakenError names the spelling registered first."""
    claim = working.find(KeyClaim, KeyClaim.id_for(kind, spelling))
    if claim is None:
        working.add(KeyClaim.claim(cause, kind, spelling))
    else:
        claim.require_spelling(spelling)


class PartnerCommands(FleetApplication):
    """Registering, accrediting and certifying partners; their users and support requests."""

    @command(Role.OPERATOR)
    def register_partner(self, w: Working, actor: Actor, location_id: str, name: str) -> UUID:
        """R-PAR-1: register a partner tenant as reseller under its Partner Location ID."""
        if w.find(PartnerTenant, PartnerTenant.id_for(location_id)) is not None:
            raise DomainError(
                Msg(
                    "A partner with Location ID {location_id} already exists.",
                    location_id=location_id,
                )
            )
        partner = w.add(PartnerTenant.register(actor, location_id, name))
        claim_key(w, actor, "location", location_id)
        return partner.id

    @command(Role.OPERATOR, Role.PARTNER_ADMIN, tenant="location_id")
    def register_partner_user(
        self, w: Working, actor: Actor, location_id: str, passport_id: str
    ) -> UserRole:
        """R-PAR-1: register a Passport ID under the partner; the first user is its admin.

        By HP/HPE operations, or by the partner's own admin."""
        role = load_partner(w, location_id).register_user(actor, passport_id)
        load_passport(w, actor, passport_id).join_partner(actor, location_id)
        return role

    @command(Role.OPERATOR)
    def accredit_service_partner(
        self, w: Working, actor: Actor, location_id: str, csdp_account: str
    ) -> None:
        """R-PAR-1, R-LNK-4: accredit a reseller as service partner with its CSDP account."""
        load_partner(w, location_id).accredit_as_service_partner(actor, csdp_account)

    @command(Role.OPERATOR)
    def certify_partner(self, w: Working, actor: Actor, location_id: str, programme: str) -> UUID:
        """R-PAR-4: certify the partner for HP Premium/Premium+; its holding tenant comes
        with it. Returns the holding tenant's id."""
        partner = load_partner(w, location_id)
        partner.certify(actor, programme)
        return partner.require_holding_tenant()

    @command(Role.PARTNER_ADMIN, Role.PARTNER_USER, tenant="location_id")
    def report_missing_devices(
        self, w: Working, actor: Actor, location_id: str, request_id: str, serials: list[str]
    ) -> None:
        """R-HLD-2: open a support request for resold PCs missing from the holding tenant."""
        load_partner(w, location_id).report_missing_devices(actor, request_id, serials)

    @command(Role.OPERATOR)
    def resolve_missing_devices(
        self, w: Working, actor: Actor, location_id: str, request_id: str, resolution: str
    ) -> None:
        """R-HLD-2: close a missing-device request with its resolution (support desk)."""
        load_partner(w, location_id).resolve_missing_devices(actor, request_id, resolution)

    def partner(self, location_id: str) -> PartnerTenant:
        """The partner tenant as recorded now."""
        return load_partner(Working(self), location_id)
