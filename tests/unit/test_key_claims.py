"""Issue 8, kind 4: identifiers are compared without regard to case or Unicode form.

Passport IDs and Partner Location IDs keep the spelling registered first (their aggregate
ids derive from it, so stored histories keep theirs); another spelling of the same folded
key is refused with the registered one named, recording nothing. Serials are NFKC upper-case.
"""

from __future__ import annotations

import pytest

from domain import Device, DomainError, PartnerTenant, Passport
from domain.key_claim import KeyClaim, KeyTakenError
from handlers import PartnerFleet
from handlers.devices import NewDevice
from tests.actors import customer
from tests.scenarios import OPS, event_count, in_memory_fleet, partner, servers


def full_width(text: str) -> str:
    """`text` as a full-width keyboard types it (U+FF01...U+FF5E for ASCII ! to ~)."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


SPELLINGS = ["IT@ACME.example", "It@Acme.Example", full_width("IT") + "@acme.example"]


@pytest.mark.parametrize("other", SPELLINGS, ids=["upper", "mixed", "full-width"])
def test_r_par_3_another_spelling_of_a_passport_id_is_no_second_quota(other: str) -> None:
    """R-PAR-3: "IT@acme" after "it@acme" would be a second person with 1,500 devices more."""
    fleet = in_memory_fleet()
    fleet.register_devices(customer("ACME", "it@acme.example", "c1"), "ACME", servers("S1"))
    before = event_count(fleet)

    with pytest.raises(KeyTakenError, match=r"already registered as 'it@acme\.example'"):
        fleet.register_devices(customer("ACME", other, "c2"), "ACME", servers("S2"))

    assert event_count(fleet) == before
    assert fleet.passport("it@acme.example").registered_devices == 1


def test_r_par_1_a_partner_user_registered_in_another_case_is_refused() -> None:
    """R-PAR-1: one person, one Passport ID, whatever case the operator types."""
    fleet = in_memory_fleet()
    partner(fleet, "LOC-1")
    fleet.register_partner_user(OPS, "LOC-1", "bob@reseller.example")
    before = event_count(fleet)

    with pytest.raises(KeyTakenError, match=r"use 'bob@reseller\.example'"):
        fleet.register_partner_user(OPS, "LOC-1", "Bob@Reseller.example")

    assert event_count(fleet) == before
    assert "Bob@Reseller.example" not in fleet.partner("LOC-1").users


@pytest.mark.parametrize("other", ["loc-1", "Loc-1", full_width("LOC-1")])
def test_r_par_1_a_location_id_in_another_case_is_not_a_second_partner(other: str) -> None:
    """R-PAR-1, R-LNK-1: customers type Location IDs; "loc-1" must not be another partner."""
    fleet = in_memory_fleet()
    fleet.register_partner(OPS, "LOC-1", "Reseller GmbH")
    before = event_count(fleet)

    with pytest.raises(DomainError, match="already registered as 'LOC-1'"):
        fleet.register_partner(OPS, other, "Copycat GmbH")

    assert event_count(fleet) == before


def test_the_registered_spelling_keeps_the_ids_stored_histories_have() -> None:
    """Ids still derive from the spelling given: ASCII histories keep their aggregates."""
    fleet = in_memory_fleet()
    fleet.register_partner(OPS, "LOC-1", "Reseller GmbH")
    fleet.register_partner_user(OPS, "LOC-1", "Anna@Reseller.example")

    assert fleet.partner("LOC-1").id == PartnerTenant.id_for("LOC-1")
    assert fleet.passport("Anna@Reseller.example").id == Passport.id_for("Anna@Reseller.example")
    claim: object = fleet.repository.get(KeyClaim.id_for("passport", "anna@reseller.EXAMPLE"))
    assert isinstance(claim, KeyClaim)
    assert claim.spelling == "Anna@Reseller.example"


def test_r_lnk_3_a_full_width_serial_is_the_same_device() -> None:
    """R-LNK-3: "CZJ001" typed on a full-width keyboard is the device "CZJ001"."""
    fleet = in_memory_fleet()
    it = customer("ACME", "it@acme.example", "c1")
    fleet.register_devices(it, "ACME", [NewDevice(serial="CZJ001", connection="direct_connect")])

    device = fleet.device(full_width("CZJ001"))

    assert device.id == Device.id_for("CZJ001")
    assert device.serial == "CZJ001"


def stored_before_claims(fleet: PartnerFleet, *passport_ids: str) -> None:
    """Passports and a partner saved as a release before KeyClaims did: no claims."""
    fleet.save(*(Passport.open(OPS, p) for p in passport_ids))
    fleet.save(PartnerTenant.register(OPS, "LOC-OLD", "Old Partner"))


def test_r_par_3_claiming_stored_keys_closes_the_door_for_other_spellings() -> None:
    """Kind 4, upgrading: after `claim_stored_keys`, another spelling of a Passport ID or
    Location ID stored before this release is refused like a new one's."""
    fleet = in_memory_fleet()
    stored_before_claims(fleet, "anna@old.example")

    collisions = fleet.claim_stored_keys(OPS)

    assert collisions == []
    with pytest.raises(KeyTakenError, match="anna@old"):
        fleet.register_devices(customer("ACME", "ANNA@old.example", "c"), "ACME", servers("S1"))
    with pytest.raises(KeyTakenError, match="LOC-OLD"):
        fleet.register_partner(OPS, "loc-old", "Copycat")


def test_r_par_3_two_stored_spellings_are_reported_and_claiming_again_changes_nothing() -> None:
    """Two Passports stored before claims existed, one person in two cases: the first keeps
    the claim, the second is reported for an operator; a second run records nothing."""
    fleet = in_memory_fleet()
    stored_before_claims(fleet, "it@acme.example", "IT@acme.example")

    first = fleet.claim_stored_keys(OPS)
    before = event_count(fleet)
    again = fleet.claim_stored_keys(OPS)

    assert len(first) == 1
    assert "'IT@acme.example' is already registered as 'it@acme.example'" in first[0]
    assert again == first
    assert event_count(fleet) == before
