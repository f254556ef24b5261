"""R-CON-3, R-CON-4: the consent history is append-only; corrections are new events."""

from __future__ import annotations

import pytest

from domain import Cause, Device
from domain.consent import ConsentError, consent_text_digest
from handlers import PartnerFleet
from tests.scenarios import CUSTOMER, event_count, in_memory_fleet, partner, servers

DPO = Cause("dpo@hp.example", "corr-dpo")


@pytest.fixture
def fleet() -> PartnerFleet:
    """A fleet whose device S1 was granted consent, withdrawn, and granted again."""
    fleet = in_memory_fleet()
    partner(fleet, "LOC-1")
    fleet.register_devices(CUSTOMER, "C1", servers("S1"))
    fleet.grant_consent(CUSTOMER, "C1", ["S1"], text_version="2024-01")
    fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])
    fleet.grant_consent(CUSTOMER, "C1", ["S1"], text_version="2025-06")
    return fleet


def consent_events(fleet: PartnerFleet) -> list[Device.Event]:
    """S1's consent events, oldest first."""
    kinds = (Device.ConsentGranted, Device.ConsentWithdrawn, Device.ConsentCorrected)
    return [e for e in fleet.events.get(Device.id_for("S1")) if isinstance(e, kinds)]


def test_r_con_3_every_grant_and_withdrawal_is_kept_with_who_when_and_wording(
    fleet: PartnerFleet,
) -> None:
    """R-CON-3: three periods' events remain, each with principal, time and wording digest."""
    events = consent_events(fleet)
    assert [type(e).__name__ for e in events] == [
        "ConsentGranted",
        "ConsentWithdrawn",
        "ConsentGranted",
    ]
    assert all(e.principal == CUSTOMER.principal for e in events)
    assert events[0].timestamp < events[1].timestamp < events[2].timestamp
    last = events[2]
    assert isinstance(last, Device.ConsentGranted)
    assert last.text_digest == consent_text_digest("2025-06")


def test_r_con_4_a_correction_is_a_new_event_and_the_old_record_is_unchanged(
    fleet: PartnerFleet,
) -> None:
    """R-CON-4: correcting the last grant appends ConsentCorrected; earlier events stay."""
    before = consent_events(fleet)
    fleet.correct_consent_record(
        DPO, "S1", before[2].originator_version, "signed by an unauthorised person", None
    )
    after = consent_events(fleet)
    assert after[:3] == before
    correction = after[3]
    assert isinstance(correction, Device.ConsentCorrected)
    assert correction.corrects_version == before[2].originator_version
    assert correction.principal == DPO.principal
    assert not fleet.may_read_configuration("S1", "LOC-1")


def test_r_con_4_a_correction_must_name_a_consent_record_and_a_reason(
    fleet: PartnerFleet,
) -> None:
    """R-CON-4: a correction of a non-consent event, or without a reason, records nothing."""
    count = event_count(fleet)
    with pytest.raises(ConsentError, match="no consent record at version 1"):
        fleet.correct_consent_record(DPO, "S1", 1, "wrong", None)
    with pytest.raises(ConsentError, match="say why"):
        fleet.correct_consent_record(
            DPO, "S1", consent_events(fleet)[0].originator_version, "  ", None
        )
    assert event_count(fleet) == count
