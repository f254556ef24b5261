"""The consent read model: "was consent in effect at T", history, exports, data access."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from domain import Device, NotAllowedError, NotFoundError
from domain.consent import ConsentError, consent_text_digest
from handlers import PartnerFleet
from handlers.devices import NewDevice, PartnerChoice
from infra.follow.view_runner import ViewRunner
from projections.base import Tx, iso
from projections.consent import HISTORY_COLUMNS
from projections.consent_export import export_csv, export_jsonl
from projections.consent_queries import (
    ConsentAnswer,
    Selection,
    configuration_for,
    consent_in_effect,
    history,
)
from tests.actors import auditor, customer
from tests.scenarios import event_count
from tests.scopes import AUDIT, partner_at
from tests.unit.views_support import (
    CUSTOMER,
    LOC,
    OPS,
    OTHER_LOC,
    Reader,
    db,
    fleet,
    link_new_servers,
    new_partner,
    read,
    runner,
    servers,
    times_of,
)

__all__ = ["db", "fleet", "read", "runner"]

DPO = auditor("dpo@hp.example", "corr-dpo")
TICK = timedelta(microseconds=1)
DATA = {"cpu": "Xeon Gold 6430", "dimms": 16, "firmware": {"ilo": "3.10"}}

Row = dict[str, Any]


@pytest.fixture
def world(fleet: PartnerFleet) -> None:
    """C1's S1 and S2 linked to LOC-1, C2's S3 to LOC-2; S1 granted, withdrawn, re-granted."""
    new_partner(fleet, LOC)
    new_partner(fleet, OTHER_LOC)
    link_new_servers(fleet, "C1", "S1", "S2", to=LOC, name="Customer One")
    link_new_servers(fleet, "C2", "S3", to=OTHER_LOC, name="Customer Two")
    fleet.grant_consent(CUSTOMER, "C1", ["S1"], text_version="2024-01")
    fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])
    fleet.grant_consent(CUSTOMER, "C1", ["S1"], text_version="2025-06")


def now() -> datetime:
    """The current moment, as a partner's request would carry it."""
    return datetime.now(UTC)


def answers(tx: Tx, serial: str, partner: str, moments: list[datetime]) -> list[bool]:
    """Whether consent was in effect for the device and partner at each moment."""
    return [consent_in_effect(tx, AUDIT, serial, partner, at).in_effect for at in moments]


def actions(records: list[Row]) -> list[tuple[str, str]]:
    """(serial, action) of each record, in order."""
    return [(r["serial"], r["action"]) for r in records]


def grants(fleet: PartnerFleet, serial: str) -> list[datetime]:
    """When consent for the device was granted, oldest first."""
    return times_of(fleet, serial, Device.ConsentGranted)


def withdrawals(fleet: PartnerFleet, serial: str) -> list[datetime]:
    """When consent for the device was withdrawn, oldest first."""
    return times_of(fleet, serial, Device.ConsentWithdrawn)


# --- R-CON-3: was consent in effect for device D and partner P at time T? ----------------


def test_r_con_3_consent_is_in_effect_from_each_grant_until_its_withdrawal(
    fleet: PartnerFleet, read: Reader, world: None
) -> None:
    [first, again] = grants(fleet, "S1")
    [withdrawn] = withdrawals(fleet, "S1")
    moments = [first - TICK, first, withdrawn - TICK, withdrawn, again - TICK, again, now()]

    with read() as tx:
        in_effect = answers(tx, "S1", LOC, moments)

    assert in_effect == [False, True, True, False, False, True, True]


def test_r_con_3_the_answer_says_why_and_names_the_deciding_records(
    fleet: PartnerFleet, read: Reader, world: None
) -> None:
    [first, _] = grants(fleet, "S1")
    [withdrawn] = withdrawals(fleet, "S1")

    with read() as tx:
        before: ConsentAnswer = consent_in_effect(tx, AUDIT, "s1", LOC, first - TICK)
        during = consent_in_effect(tx, AUDIT, "S1", LOC, first)
        after = consent_in_effect(tx, AUDIT, "S1", LOC, withdrawn)

    assert (before.serial, before.partner, before.at) == ("S1", LOC, iso(first - TICK))
    assert (before.consent_granted, before.partner_linked) == (False, True)
    assert [r["action"] for r in before.deciding_records] == ["linked"]
    assert (during.in_effect, during.consent_granted, during.partner_linked) == (True, True, True)
    assert [r["action"] for r in during.deciding_records] == ["granted", "linked"]
    assert during.deciding_records[0]["at"] == iso(first)
    assert during.deciding_records[0]["text_version"] == "2024-01"
    assert during.deciding_records[1]["partner"] == LOC
    assert (after.consent_granted, after.partner_linked) == (False, True)
    assert [r["action"] for r in after.deciding_records] == ["withdrawn", "linked"]
    assert after.deciding_records[0]["at"] == iso(withdrawn)
    assert during.later_corrections == []


def test_r_con_3_a_partner_linked_later_has_consent_in_effect_only_from_its_link_on(
    fleet: PartnerFleet, read: Reader, world: None
) -> None:
    fleet.register_devices(CUSTOMER, "C1", servers("S4"))
    fleet.grant_consent(CUSTOMER, "C1", ["S4"])
    fleet.link_devices(CUSTOMER, "C1", ["S4"], PartnerChoice(location_id=OTHER_LOC))
    [granted] = grants(fleet, "S4")
    [linked] = times_of(fleet, "S4", Device.PartnerLinked)

    with read() as tx:
        in_effect = answers(tx, "S4", OTHER_LOC, [granted - TICK, granted, linked - TICK, linked])
        before_link = consent_in_effect(tx, AUDIT, "S4", OTHER_LOC, linked - TICK)
        never_linked = answers(tx, "S4", LOC, [granted, linked, now()])

    assert in_effect == [False, False, False, True]
    assert (before_link.consent_granted, before_link.partner_linked) == (True, False)
    assert never_linked == [False, False, False]


def test_r_con_3_after_a_relink_consent_is_in_effect_for_the_new_partner_only(
    fleet: PartnerFleet, read: Reader, world: None
) -> None:
    fleet.link_devices(CUSTOMER, "C1", ["S1"], PartnerChoice(location_id=OTHER_LOC))
    # A relink is two records: the old partner unlinked, then the new one linked.
    [unlinked] = times_of(fleet, "S1", Device.PartnerUnlinked)
    [_, relinked] = times_of(fleet, "S1", Device.PartnerLinked)
    [_, regranted] = grants(fleet, "S1")

    with read() as tx:
        old = answers(tx, "S1", LOC, [regranted, unlinked - TICK, relinked, now()])
        new = answers(tx, "S1", OTHER_LOC, [regranted, unlinked - TICK, relinked, now()])

    assert old == [True, True, False, False]
    assert new == [False, False, True, True]


def test_r_con_3_after_an_unlink_consent_is_no_longer_in_effect_for_that_partner(
    fleet: PartnerFleet, read: Reader, world: None
) -> None:
    fleet.unlink_devices(CUSTOMER, "C1", ["S1"])
    [unlinked] = times_of(fleet, "S1", Device.PartnerUnlinked)

    with read() as tx:
        in_effect = answers(tx, "S1", LOC, [unlinked - TICK, unlinked, now()])
        after = consent_in_effect(tx, AUDIT, "S1", LOC, unlinked)

    assert in_effect == [True, False, False]
    assert (after.consent_granted, after.partner_linked) == (True, False)


def test_r_con_3_a_moment_in_another_time_zone_is_answered_for_the_same_instant(
    fleet: PartnerFleet, read: Reader, world: None
) -> None:
    [first, _] = grants(fleet, "S1")
    berlin = timezone(timedelta(hours=1))

    with read() as tx:
        in_effect = answers(
            tx, "S1", LOC, [(first - TICK).astimezone(berlin), first.astimezone(berlin)]
        )
        answer = consent_in_effect(tx, AUDIT, "S1", LOC, first.astimezone(berlin))

    assert in_effect == [False, True]
    assert answer.at == iso(first)


def test_r_con_3_a_past_moment_is_answered_the_same_after_later_changes(
    fleet: PartnerFleet, read: Reader, world: None
) -> None:
    [_, regranted] = grants(fleet, "S1")
    with read() as tx:
        before = consent_in_effect(tx, AUDIT, "S1", LOC, regranted)

    fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])
    fleet.link_devices(CUSTOMER, "C1", ["S1"], PartnerChoice(location_id=OTHER_LOC))

    with read() as tx:
        after = consent_in_effect(tx, AUDIT, "S1", LOC, regranted)
        today = consent_in_effect(tx, AUDIT, "S1", LOC, now())
    assert before.in_effect
    assert after == before
    assert not today.in_effect


def test_r_con_3_a_device_never_granted_has_no_consent_in_effect(read: Reader, world: None) -> None:
    with read() as tx:
        answer = consent_in_effect(tx, AUDIT, "S2", LOC, now())

    assert (answer.in_effect, answer.consent_granted, answer.partner_linked) == (
        False,
        False,
        True,
    )


def test_r_con_3_an_unknown_device_is_refused(read: Reader, world: None) -> None:
    with read() as tx, pytest.raises(NotFoundError, match="NOPE"):
        consent_in_effect(tx, AUDIT, "NOPE", LOC, now())


def test_r_con_3_consent_set_on_a_hosting_device_is_in_effect_for_each_managed_device(
    fleet: PartnerFleet, read: Reader, world: None
) -> None:
    host = NewDevice(serial="H1", connection="direct_connect", is_hosting_device=True)
    managed = [
        NewDevice(serial=s, connection="central_connect", hosting_serial="H1") for s in ("M1", "M2")
    ]
    fleet.register_devices(CUSTOMER, "C1", [host, *managed], PartnerChoice(location_id=LOC))
    fleet.grant_consent_on_host(CUSTOMER, "C1", "H1")
    # One command, one grant per device: the host's is the first.
    first = min(grants(fleet, s)[0] for s in ("H1", "M1", "M2"))

    with read() as tx:
        in_effect = {s: answers(tx, s, LOC, [first - TICK, now()]) for s in ("H1", "M1", "M2")}
        scopes = {
            r["scope"]
            for r in history(tx, AUDIT, Selection(serial="M1")).rows
            if r["action"] == "granted"
        }

    assert in_effect == {s: [False, True] for s in ("H1", "M1", "M2")}
    assert scopes == {"insight_rs_host:H1"}


# --- R-CON-4: the history is replayed per device, customer or partner, and exported ------


def test_r_con_4_a_devices_history_keeps_who_when_what_and_which_wording(
    fleet: PartnerFleet, read: Reader, world: None
) -> None:
    events = [
        e
        for e in fleet.events.get(Device.id_for("S1"))
        if isinstance(e, Device.PartnerLinked | Device.ConsentGranted | Device.ConsentWithdrawn)
    ]

    with read() as tx:
        records = history(tx, AUDIT, Selection(serial="s1")).rows

    assert [(r["kind"], r["action"]) for r in records] == [
        ("link", "linked"),
        ("consent", "granted"),
        ("consent", "withdrawn"),
        ("consent", "granted"),
    ]
    assert [(r["version"], r["at"]) for r in records] == [
        (e.originator_version, iso(e.timestamp)) for e in events
    ]
    assert {(r["serial"], r["customer_id"], r["principal"]) for r in records} == {
        ("S1", "C1", CUSTOMER.principal)
    }
    assert {r["correlation_id"] for r in records} == {CUSTOMER.correlation_id}
    assert (records[0]["partner"], records[0]["role"]) == (LOC, "reseller")
    assert [(r["text_version"], r["text_digest"], r["scope"]) for r in records[1:]] == [
        ("2024-01", consent_text_digest("2024-01"), "device"),
        ("2024-01", None, "device"),
        ("2025-06", consent_text_digest("2025-06"), "device"),
    ]


def test_r_con_4_a_customers_history_holds_the_records_of_its_devices_only(
    fleet: PartnerFleet, read: Reader, world: None
) -> None:
    fleet.grant_consent(customer("C2"), "C2", ["S3"])

    with read() as tx:
        of_c1 = history(tx, AUDIT, Selection(customer_id="C1")).rows
        of_c2 = history(tx, AUDIT, Selection(customer_id="C2")).rows

    assert actions(of_c1) == [
        ("S1", "linked"),
        ("S2", "linked"),
        ("S1", "granted"),
        ("S1", "withdrawn"),
        ("S1", "granted"),
    ]
    assert actions(of_c2) == [("S3", "linked"), ("S3", "granted")]


def test_r_con_4_a_partners_history_holds_the_records_of_its_own_link_periods_only(
    fleet: PartnerFleet, read: Reader, world: None
) -> None:
    with read() as tx:
        before = {r["serial"] for r in history(tx, AUDIT, Selection(partner=OTHER_LOC)).rows}

    fleet.link_devices(CUSTOMER, "C1", ["S1"], PartnerChoice(location_id=OTHER_LOC))

    with read() as tx:
        after = history(tx, AUDIT, Selection(partner=OTHER_LOC)).rows
        old_partner = history(tx, AUDIT, Selection(partner=LOC)).rows
        nobody = history(tx, AUDIT, Selection(partner="LOC-404")).rows
    assert before == {"S3"}
    # The new partner's period starts with the consent then in effect, then its own link.
    assert actions([r for r in after if r["serial"] == "S1"]) == [
        ("S1", "granted"),
        ("S1", "linked"),
    ]
    assert {r["partner"] for r in after if r["kind"] == "link"} == {OTHER_LOC}
    assert actions([r for r in old_partner if r["serial"] == "S1"]) == [
        ("S1", "linked"),
        ("S1", "granted"),
        ("S1", "withdrawn"),
        ("S1", "granted"),
        ("S1", "unlinked"),
    ]
    assert {r["partner"] for r in old_partner if r["kind"] == "link"} == {LOC}
    assert nobody == []


def test_r_con_4_a_history_that_names_no_device_customer_or_partner_is_refused(
    read: Reader, world: None
) -> None:
    with read() as tx, pytest.raises(NotFoundError, match="serial"):
        history(tx, AUDIT, Selection())


@pytest.fixture
def corrected(fleet: PartnerFleet, world: None) -> None:
    """The DPO corrects S1's second grant: the reason has quotes, a comma and a line break."""
    second = fleet.device("S1").consent_versions[-1]
    fleet.correct_consent_record(
        DPO, "S1", second, 'Signed by "J. Doe", an intern,\nnot the customer admin', None
    )


def test_r_con_4_the_history_exports_as_json_lines_that_parse_back_to_the_records(
    read: Reader, corrected: None
) -> None:
    with read() as tx:
        records = history(tx, AUDIT, Selection(customer_id="C1")).rows

    exported = export_jsonl(records)

    lines = exported.splitlines()
    assert exported.endswith("\n")
    assert len(lines) == len(records) == 6
    assert [json.loads(line) for line in lines] == records


def test_r_con_4_the_history_exports_as_csv_that_parses_back_to_the_records(
    read: Reader, corrected: None
) -> None:
    with read() as tx:
        records = history(tx, AUDIT, Selection(customer_id="C1")).rows

    exported = export_csv(records)

    reader = csv.DictReader(io.StringIO(exported))
    parsed = list(reader)
    assert reader.fieldnames == list(HISTORY_COLUMNS)
    assert parsed == [{k: "" if v is None else str(v) for k, v in r.items()} for r in records]
    assert parsed[-1]["reason"] == 'Signed by "J. Doe", an intern,\nnot the customer admin'


def test_r_con_4_an_empty_history_exports_as_an_empty_file_with_a_csv_header(
    read: Reader, world: None
) -> None:
    with read() as tx:
        records = history(tx, AUDIT, Selection(customer_id="C-unknown")).rows

    assert records == []
    assert export_jsonl(records) == ""
    assert export_csv(records) == ",".join(HISTORY_COLUMNS) + "\n"


def test_r_con_4_a_correction_is_a_new_record_and_the_corrected_record_is_unchanged(
    fleet: PartnerFleet, read: Reader, world: None
) -> None:
    with read() as tx:
        before = history(tx, AUDIT, Selection(serial="S1")).rows
    second_grant = before[-1]

    fleet.correct_consent_record(DPO, "S1", second_grant["version"], "wrong signer", None)

    with read() as tx:
        after = history(tx, AUDIT, Selection(serial="S1")).rows
    assert after[:-1] == before
    correction = after[-1]
    assert {k: correction[k] for k in ("kind", "action", "corrects_version", "reason")} == {
        "kind": "consent",
        "action": "corrected",
        "corrects_version": second_grant["version"],
        "reason": "wrong signer",
    }
    assert (correction["principal"], correction["correlation_id"]) == (
        DPO.principal,
        DPO.correlation_id,
    )
    assert correction["version"] > second_grant["version"]
    assert correction["text_version"] is None


def test_r_con_4_a_correction_decides_from_when_it_was_recorded(
    fleet: PartnerFleet, read: Reader, corrected: None
) -> None:
    [_, regranted] = grants(fleet, "S1")
    [correction] = times_of(fleet, "S1", Device.ConsentCorrected)

    with read() as tx:
        in_effect = answers(tx, "S1", LOC, [regranted, correction - TICK, correction, now()])

    assert in_effect == [True, True, False, False]


def test_r_con_4_corrections_made_later_are_listed_in_the_answer_for_an_earlier_moment(
    fleet: PartnerFleet, read: Reader, corrected: None
) -> None:
    [first, regranted] = grants(fleet, "S1")
    [correction] = times_of(fleet, "S1", Device.ConsentCorrected)

    with read() as tx:
        corrected_moment = consent_in_effect(tx, AUDIT, "S1", LOC, regranted)
        earlier_period = consent_in_effect(tx, AUDIT, "S1", LOC, first)
        after_correction = consent_in_effect(tx, AUDIT, "S1", LOC, correction)

    [listed] = corrected_moment.later_corrections
    assert (listed["action"], listed["at"]) == ("corrected", iso(correction))
    assert listed["corrects_version"] == corrected_moment.deciding_records[0]["version"]
    assert corrected_moment.in_effect  # what was recorded then; the correction is shown beside
    assert earlier_period.later_corrections == []  # that grant was not corrected
    assert after_correction.later_corrections == []
    assert after_correction.deciding_records[0]["action"] == "corrected"


def test_r_con_4_a_correction_of_the_withdrawal_in_effect_puts_consent_in_effect_again(
    fleet: PartnerFleet, read: Reader, world: None
) -> None:
    fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])
    withdrawn_version = fleet.device("S1").consent_versions[-1]
    fleet.correct_consent_record(DPO, "S1", withdrawn_version, "withdrawn by mistake", "2025-06")
    [correction] = times_of(fleet, "S1", Device.ConsentCorrected)

    with read() as tx:
        in_effect = answers(tx, "S1", LOC, [correction - TICK, correction])

    assert in_effect == [False, True]
    assert fleet.may_read_configuration("S1", LOC)


def test_r_con_4_replaying_the_store_rebuilds_the_same_history(
    fleet: PartnerFleet, read: Reader, runner: ViewRunner, corrected: None
) -> None:
    with read() as tx:
        before = history(tx, AUDIT, Selection(customer_id="C1")).rows

    runner.rebuild(runner.view("consent"))

    with read() as tx:
        assert history(tx, AUDIT, Selection(customer_id="C1")).rows == before


# --- R-CON-2: configuration data only while linked and granted ---------------------------


@pytest.fixture
def collected(fleet: PartnerFleet, world: None) -> None:
    """Remote support collected S1's configuration while LOC-1 is linked and consent granted."""
    fleet.collect_configuration(OPS, "S1", {"cpu": "old"})
    fleet.collect_configuration(OPS, "S1", DATA)


def test_r_con_2_a_linked_partner_reads_the_latest_data_while_consent_is_granted(
    fleet: PartnerFleet, read: Reader, collected: None
) -> None:
    with read() as tx:
        assert configuration_for(tx, partner_at(fleet, LOC), "S1") == DATA


def test_r_con_2_a_partner_not_linked_to_the_device_is_told_it_is_not_found(
    fleet: PartnerFleet, read: Reader, collected: None
) -> None:
    """R-CON-2, R-LNK-1: another partner's device answers as an unknown serial does."""
    with (
        read() as tx,
        pytest.raises(NotFoundError, match="No device with serial number 'S1'"),
    ):
        configuration_for(tx, partner_at(fleet, OTHER_LOC), "S1")


def test_r_con_2_a_linked_partner_without_consent_is_refused_clearly(
    fleet: PartnerFleet, read: Reader, collected: None
) -> None:
    with read() as tx, pytest.raises(NotAllowedError, match="S2 has not granted consent"):
        configuration_for(tx, partner_at(fleet, LOC), "S2")


def test_r_con_2_access_ends_at_once_when_consent_is_withdrawn(
    fleet: PartnerFleet, read: Reader, collected: None
) -> None:
    with read() as tx:
        assert configuration_for(tx, partner_at(fleet, LOC), "S1") == DATA

    fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])

    with read() as tx, pytest.raises(NotAllowedError, match="not granted consent"):
        configuration_for(tx, partner_at(fleet, LOC), "S1")


def test_r_con_2_access_ends_at_once_when_the_partner_is_unlinked(
    fleet: PartnerFleet, read: Reader, collected: None
) -> None:
    with read() as tx:
        assert configuration_for(tx, partner_at(fleet, LOC), "S1") == DATA

    fleet.unlink_devices(CUSTOMER, "C1", ["S1"])

    with read() as tx, pytest.raises(NotFoundError, match="No device with serial number 'S1'"):
        configuration_for(tx, partner_at(fleet, LOC), "S1")


def test_r_con_2_after_a_relink_only_the_new_partner_reads_the_data(
    fleet: PartnerFleet, read: Reader, collected: None
) -> None:
    fleet.link_devices(CUSTOMER, "C1", ["S1"], PartnerChoice(location_id=OTHER_LOC))

    with read() as tx:
        new = configuration_for(tx, partner_at(fleet, OTHER_LOC), "S1")
        with pytest.raises(NotFoundError, match="No device with serial number 'S1'"):
            configuration_for(tx, partner_at(fleet, LOC), "S1")

    assert new == DATA


def test_r_con_2_no_data_collected_yet_is_reported_as_not_found(
    fleet: PartnerFleet, read: Reader, world: None
) -> None:
    with read() as tx, pytest.raises(NotFoundError, match="No configuration data"):
        configuration_for(tx, partner_at(fleet, LOC), "S1")


def test_r_con_2_collecting_configuration_without_consent_is_refused_and_records_nothing(
    fleet: PartnerFleet, read: Reader, world: None
) -> None:
    before = event_count(fleet)

    with pytest.raises(ConsentError, match="not granted consent"):
        fleet.collect_configuration(OPS, "S2", DATA)

    assert event_count(fleet) == before
    fleet.grant_consent(CUSTOMER, "C1", ["S2"])
    with read() as tx, pytest.raises(NotFoundError, match="No configuration data"):
        configuration_for(tx, partner_at(fleet, LOC), "S2")


def test_r_con_2_collecting_configuration_without_a_partner_is_refused_and_records_nothing(
    fleet: PartnerFleet, read: Reader, world: None
) -> None:
    fleet.unlink_devices(CUSTOMER, "C1", ["S1"])
    before = event_count(fleet)

    with pytest.raises(ConsentError, match="no partner is linked"):
        fleet.collect_configuration(OPS, "S1", DATA)

    assert event_count(fleet) == before
    fleet.link_devices(CUSTOMER, "C1", ["S1"], PartnerChoice(location_id=LOC))
    with read() as tx, pytest.raises(NotFoundError, match="No configuration data"):
        configuration_for(tx, partner_at(fleet, LOC), "S1")


# --- issue 8, kind 1: a correction changes the present only for the record in effect -----


def test_r_con_4_correcting_the_first_grant_after_a_withdrawal_does_not_reopen_access(
    fleet: PartnerFleet, read: Reader
) -> None:
    """R-CON-3, R-CON-4 (issue 8's input): history shows the correction; access stays ended."""
    new_partner(fleet, "LOC-A")
    link_new_servers(fleet, "C1", "D1", to="LOC-A")
    fleet.grant_consent(CUSTOMER, "C1", ["D1"])
    fleet.collect_configuration(OPS, "D1", DATA)
    fleet.withdraw_consent(CUSTOMER, "C1", ["D1"])
    [first_grant, _] = fleet.device("D1").consent_versions

    fleet.correct_consent_record(DPO, "D1", first_grant, "wording version missing", "2025-06")

    with read() as tx:
        records = history(tx, AUDIT, Selection(serial="D1")).rows
        now_answer = consent_in_effect(tx, AUDIT, "D1", "LOC-A", now())
        with pytest.raises(NotAllowedError, match="not granted consent"):
            configuration_for(tx, partner_at(fleet, "LOC-A"), "D1")
    assert [(r["action"], r["corrects_version"]) for r in records[-2:]] == [
        ("withdrawn", None),
        ("corrected", first_grant),
    ]
    assert (now_answer.in_effect, now_answer.consent_granted) == (False, False)
    assert now_answer.deciding_records[0]["action"] == "withdrawn"
    assert not fleet.may_read_configuration("D1", "LOC-A")


def test_r_con_4_a_correction_of_a_past_record_is_listed_for_the_moment_it_concerns(
    fleet: PartnerFleet, read: Reader, world: None
) -> None:
    """R-CON-4: the first grant, corrected after the re-grant, is shown beside an answer for
    the first period, while the answer for today still rests on the re-grant."""
    [first, _, again] = fleet.device("S1").consent_versions
    [first_at, _] = grants(fleet, "S1")

    fleet.correct_consent_record(DPO, "S1", first, "signed by an intern", None)

    with read() as tx:
        then = consent_in_effect(tx, AUDIT, "S1", LOC, first_at)
        today = consent_in_effect(tx, AUDIT, "S1", LOC, now())
    assert then.in_effect
    assert [r["corrects_version"] for r in then.later_corrections] == [first]
    assert today.in_effect
    assert today.deciding_records[0]["version"] == again


def test_r_con_4_corrections_of_a_later_correction_are_listed_with_it(
    fleet: PartnerFleet, read: Reader, world: None
) -> None:
    """R-CON-4: an answer lists the corrections of its records, and of those corrections."""
    [_, _, again] = fleet.device("S1").consent_versions
    [_, again_at] = grants(fleet, "S1")
    fleet.correct_consent_record(DPO, "S1", again, "wrong signer", None)
    first_correction = fleet.device("S1").consent_versions[-1]
    fleet.correct_consent_record(DPO, "S1", first_correction, "the signer was right", "2025-06")

    with read() as tx:
        answer = consent_in_effect(tx, AUDIT, "S1", LOC, again_at)
        today = consent_in_effect(tx, AUDIT, "S1", LOC, now())

    assert [r["corrects_version"] for r in answer.later_corrections] == [again, first_correction]
    assert today.in_effect
    assert today.deciding_records[0]["corrects_version"] == first_correction
