"""R-CON-3, R-CON-4: the consent history is append-only; corrections are new events."""

from __future__ import annotations

import pytest
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import StoredEvent

from domain import Device
from domain.consent import ConsentError, ConsentState, consent_text_digest
from handlers import PartnerFleet
from handlers.devices import PartnerChoice
from tests.actors import auditor
from tests.scenarios import CUSTOMER, event_count, in_memory_fleet, partner, servers
from tests.snapshots import replayed

DPO = auditor("dpo@hp.example", "corr-dpo")


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


# --- R-CON-4: a correction changes the present only when it corrects the record in effect -


def versions(fleet: PartnerFleet) -> list[int]:
    """S1's consent records, oldest first: the fixture's grant, withdrawal and grant."""
    return list(fleet.device("S1").consent_versions)


def correct(fleet: PartnerFleet, version: int, text_version: str | None) -> int:
    """The DPO corrects S1's record at `version`; returns the correction's version."""
    fleet.correct_consent_record(DPO, "S1", version, "corrected by the DPO", text_version)
    return fleet.device("S1").consent_versions[-1]


@pytest.fixture
def withdrawn(fleet: PartnerFleet) -> PartnerFleet:
    """S1 linked to LOC-1; granted (2024-01), withdrawn, granted (2025-06), withdrawn."""
    fleet.link_devices(CUSTOMER, "C1", ["S1"], PartnerChoice(location_id="LOC-1"))
    fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])
    return fleet


@pytest.mark.parametrize("text_version", ["2024-01", "2025-06", None])
@pytest.mark.parametrize("which", [0, 1, 2], ids=["first-grant", "withdrawal", "second-grant"])
def test_r_con_4_correcting_a_record_no_longer_in_effect_leaves_access_ended(
    withdrawn: PartnerFleet, which: int, text_version: str | None
) -> None:
    """R-CON-3, R-CON-4: after the last withdrawal, correcting an earlier record is history."""
    earlier = versions(withdrawn)[which]

    correct(withdrawn, earlier, text_version)

    device = withdrawn.device("S1")
    assert device.consent is None
    assert device.consent_record_in_effect == versions(withdrawn)[3]
    assert not withdrawn.may_read_configuration("S1", "LOC-1")


def test_r_con_4_correcting_a_past_record_while_granted_keeps_the_grant_in_effect(
    fleet: PartnerFleet,
) -> None:
    """R-CON-4: the grant in effect stays as it is when its predecessors are corrected."""
    [first, withdrawal, second] = versions(fleet)

    correct(fleet, first, None)
    correct(fleet, withdrawal, "2024-01")

    device = fleet.device("S1")
    assert device.consent == ConsentState("2025-06", "device")
    assert device.consent_record_in_effect == second


@pytest.mark.parametrize(
    ("text_version", "expected"),
    [(None, None), ("2024-01", ConsentState("2024-01", "correction"))],
)
def test_r_con_4_correcting_the_grant_in_effect_changes_the_present(
    fleet: PartnerFleet, text_version: str | None, expected: ConsentState | None
) -> None:
    """R-CON-4: the grant in effect was wrong (no consent, or another wording): it is replaced."""
    correction = correct(fleet, versions(fleet)[2], text_version)

    device = fleet.device("S1")
    assert device.consent == expected
    assert device.consent_record_in_effect == correction


def test_r_con_4_correcting_the_withdrawal_in_effect_puts_consent_in_effect_again(
    withdrawn: PartnerFleet,
) -> None:
    """R-CON-4: a withdrawal recorded by mistake, corrected, gives access back from now on."""
    correct(withdrawn, versions(withdrawn)[3], "2025-06")

    assert withdrawn.device("S1").consent == ConsentState("2025-06", "correction")
    assert withdrawn.may_read_configuration("S1", "LOC-1")


def test_r_con_4_a_correction_of_the_correction_in_effect_replaces_it(
    withdrawn: PartnerFleet,
) -> None:
    """R-CON-4: the correction in effect is itself the record in effect; correcting it counts."""
    first = correct(withdrawn, versions(withdrawn)[3], "2025-06")

    second = correct(withdrawn, first, None)

    device = withdrawn.device("S1")
    assert device.consent is None
    assert device.consent_record_in_effect == second


def test_r_con_4_correcting_a_record_already_replaced_by_a_correction_is_history_only(
    withdrawn: PartnerFleet,
) -> None:
    """R-CON-4: once a correction replaced the record in effect, correcting the old record
    (or a correction that was itself replaced) no longer reaches the present."""
    withdrawal = versions(withdrawn)[3]
    first = correct(withdrawn, withdrawal, None)
    second = correct(withdrawn, first, "2025-06")

    correct(withdrawn, withdrawal, None)
    correct(withdrawn, first, None)

    device = withdrawn.device("S1")
    assert device.consent == ConsentState("2025-06", "correction")
    assert device.consent_record_in_effect == second


def test_r_con_4_a_snapshot_from_before_the_record_in_effect_existed_takes_the_last_record(
    withdrawn: PartnerFleet,
) -> None:
    """R-CON-4: such a snapshot (every consent record then set the present) still corrects
    its last record, and reads back as its replay does."""
    device = withdrawn.device("S1")
    stored = withdrawn.mapper.to_stored_event(Snapshot.take(device))
    state = withdrawn.mapper.transcoder.decode(stored.state)
    del state["state"]["consent_record"]
    old = StoredEvent(
        stored.originator_id,
        stored.originator_version,
        stored.topic,
        withdrawn.mapper.transcoder.encode(state),
    )
    assert withdrawn.snapshots is not None
    withdrawn.snapshots.recorder.insert_events([old])
    assert withdrawn.device("S1").consent_record is None

    correct(withdrawn, versions(withdrawn)[3], "2024-01")

    loaded = withdrawn.device("S1")
    assert loaded.consent == ConsentState("2024-01", "correction")
    assert vars(loaded) == vars(replayed(withdrawn, device.id))


def test_r_con_4_a_device_snapshot_from_before_issue_8_is_never_used(
    withdrawn: PartnerFleet,
) -> None:
    """R-CON-4, kind 1: a version 1 device snapshot may hold consent that a correction of a
    past record re-opened under the old rule; it is skipped and the events decide."""
    device = withdrawn.device("S1")
    stored = withdrawn.mapper.to_stored_event(Snapshot.take(device))
    state = withdrawn.mapper.transcoder.decode(stored.state)
    del state["state"]["class_version"]
    state["state"]["consent"] = ConsentState("2024-01", "correction")
    old = StoredEvent(
        stored.originator_id,
        stored.originator_version,
        stored.topic,
        withdrawn.mapper.transcoder.encode(state),
    )
    assert withdrawn.snapshots is not None
    withdrawn.snapshots.recorder.insert_events([old])

    loaded = withdrawn.device("S1")

    assert loaded.consent is None
    assert not loaded.may_read_configuration("LOC-1")
    assert vars(loaded) == vars(replayed(withdrawn, device.id))
