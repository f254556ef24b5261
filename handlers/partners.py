"""Commands on partner tenants and their users (R-PAR-1, R-PAR-4, R-HLD-2)."""

from __future__ import annotations

from uuid import UUID

from domain.base import Cause, DomainError, NotAllowedError
from domain.key_claim import ClaimKind, KeyClaim
from domain.partner import PartnerTenant, UserRole
from domain.passport import Passport
from handlers.base import FleetApplication, Working


def load_partner(working: Working, location_id: str) -> PartnerTenant:
    """The partner with this Location ID, or a refusal that says so."""
    return working.load(
        PartnerTenant,
        PartnerTenant.id_for(location_id),
        f"No partner has Location ID {location_id!r}; check the ID the partner gave you.",
    )


def load_partner_as_user(w: Working, cause: Cause, location_id: str) -> PartnerTenant:
    """The partner, provided the principal is one of its users."""
    partner = load_partner(w, location_id)
    if cause.principal not in partner.users:
        raise NotAllowedError(f"{cause.principal} is not a user of partner {location_id}.")
    return partner


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

    def register_partner(self, cause: Cause, location_id: str, name: str) -> UUID:
        """Register a partner tenant as reseller under its Partner Location ID."""

        def work(w: Working) -> UUID:
            if w.find(PartnerTenant, PartnerTenant.id_for(location_id)) is not None:
                raise DomainError(f"A partner with Location ID {location_id} already exists.")
            partner = w.add(PartnerTenant.register(cause, location_id, name))
            claim_key(w, cause, "location", location_id)
            return partner.id

        return self._execute("register_partner", cause, work)

    def register_partner_user(self, cause: Cause, location_id: str, passport_id: str) -> UserRole:
        """Register a Passport ID under the partner; the first user becomes its admin."""

        def work(w: Working) -> UserRole:
            partner = load_partner(w, location_id)
            role = partner.register_user(cause, passport_id)
            load_passport(w, cause, passport_id).join_partner(cause, location_id)
            return role

        return self._execute("register_partner_user", cause, work)

    def accredit_service_partner(self, cause: Cause, location_id: str, csdp_account: str) -> None:
        """Accredit a reseller as service partner with its CSDP account."""
        self._execute(
            "accredit_service_partner",
            cause,
            lambda w: load_partner(w, location_id).accredit_as_service_partner(cause, csdp_account),
        )

    def certify_partner(self, cause: Cause, location_id: str, programme: str) -> UUID:
        """Certify the partner for HP Premium/Premium+; its holding tenant comes with it."""

        def work(w: Working) -> UUID:
            partner = load_partner(w, location_id)
            partner.certify(cause, programme)
            return partner.require_holding_tenant()

        return self._execute("certify_partner", cause, work)

    def report_missing_devices(
        self, cause: Cause, location_id: str, request_id: str, serials: list[str]
    ) -> None:
        """Open a support request for resold PCs missing from the holding tenant."""
        self._execute(
            "report_missing_devices",
            cause,
            lambda w: load_partner_as_user(w, cause, location_id).report_missing_devices(
                cause, request_id, serials
            ),
        )

    def resolve_missing_devices(
        self, cause: Cause, location_id: str, request_id: str, resolution: str
    ) -> None:
        """Close a missing-device request with its resolution (support desk)."""
        self._execute(
            "resolve_missing_devices",
            cause,
            lambda w: load_partner(w, location_id).resolve_missing_devices(
                cause, request_id, resolution
            ),
        )

    def partner(self, location_id: str) -> PartnerTenant:
        """The partner tenant as recorded now."""
        return load_partner(Working(self), location_id)
