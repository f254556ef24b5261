"""R-CON-4: a partner's consent history holds its own link periods only (issue 8, kind 8)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain import Device
from handlers import PartnerFleet
from handlers.devices import PartnerChoice
from projections.base import Tx
from projections.consent_export import export_csv, export_jsonl
from projections.consent_queries import (
    PartnerLink,
    Selection,
    consent_in_effect,
    history,
)
from projections.consent_replay import replay
from tests.actors import auditor
from tests.scopes import AUDIT
from tests.unit.views_support import (
    CUSTOMER,
    OTHER_SERVICE_LOC,
    SERVICE_LOC,
    Reader,
    db,
    fleet,
    link_new_servers,
    new_partner,
    read,
    runner,
    times_of,
)

__all__ = ["db", "fleet", "read", "runner"]

DPO = auditor("dpo@hp.example", "corr-dpo")
Row = dict[str, Any]


def to(location_id: str, role: str = "service_partner") -> PartnerChoice:
    """The customer's choice of partner and role."""
    return PartnerChoice(location_id=location_id, role=role)


def seen(records: list[Row]) -> list[tuple[str, str, str | None]]:
    """(serial, action, partner) of each record, in order."""
    return [(r["serial"], r["action"], r["partner"]) for r in records]


@pytest.fixture
def relinked(fleet: PartnerFleet) -> None:
    """Issue 8's input: S1 linked to LOC-S with consent, relinked to LOC-T, withdrawn, granted."""
    new_partner(fleet, SERVICE_LOC, service=True)
    new_partner(fleet, OTHER_SERVICE_LOC, service=True)
    link_new_servers(fleet, "C1", "S1", to=SERVICE_LOC, role="service_partner")
    fleet.grant_consent(CUSTOMER, "C1", ["S1"])
    fleet.link_devices(CUSTOMER, "C1", ["S1"], to(OTHER_SERVICE_LOC))
    fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])
    fleet.grant_consent(CUSTOMER, "C1", ["S1"])


def test_r_con_4_a_partners_history_holds_its_link_unlink_and_the_consent_of_its_period(
    read: Reader, relinked: None
) -> None:
    """R-CON-4 (issue 8's input): LOC-S sees its link, the grant of its period, its unlink."""
    with read() as tx:
        records = history(tx, AUDIT, Selection(partner=SERVICE_LOC)).rows

    assert seen(records) == [
        ("S1", "linked", SERVICE_LOC),
        ("S1", "granted", None),
        ("S1", "unlinked", SERVICE_LOC),
    ]


def test_r_con_4_the_next_partners_history_starts_with_the_consent_it_took_over(
    read: Reader, relinked: None
) -> None:
    """R-CON-4: consent carries over on a relink, so LOC-T's period starts with that grant."""
    with read() as tx:
        records = history(tx, AUDIT, Selection(partner=OTHER_SERVICE_LOC)).rows

    assert seen(records) == [
        ("S1", "granted", None),
        ("S1", "linked", OTHER_SERVICE_LOC),
        ("S1", "withdrawn", None),
        ("S1", "granted", None),
    ]


@pytest.mark.parametrize("export", [export_jsonl, export_csv], ids=["jsonl", "csv"])
def test_r_con_4_a_partners_export_holds_the_records_of_its_link_periods_only(
    read: Reader, relinked: None, export: Any
) -> None:
    """R-CON-4: the export is the partner's history: no other partner, no later period."""
    with read() as tx:
        own = history(tx, AUDIT, Selection(partner=SERVICE_LOC)).rows
        everything = history(tx, AUDIT, Selection(serial="S1")).rows

    exported = export(own)

    assert OTHER_SERVICE_LOC not in exported
    assert exported == export(own)
    assert len(exported.splitlines()) == len(own) + (export is export_csv)
    assert len(own) < len(everything)
    if export is export_jsonl:
        assert [json.loads(line) for line in exported.splitlines()] == own


def test_r_con_4_linked_again_later_a_partner_gets_a_second_period_with_the_consent_then(
    fleet: PartnerFleet, read: Reader, relinked: None
) -> None:
    """R-CON-4: nothing between its periods; the record in effect when it came back."""
    fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])
    fleet.link_devices(CUSTOMER, "C1", ["S1"], to(SERVICE_LOC))

    with read() as tx:
        records = history(tx, AUDIT, Selection(partner=SERVICE_LOC)).rows

    assert seen(records) == [
        ("S1", "linked", SERVICE_LOC),
        ("S1", "granted", None),
        ("S1", "unlinked", SERVICE_LOC),
        ("S1", "withdrawn", None),
        ("S1", "linked", SERVICE_LOC),
    ]


def test_r_con_4_a_later_correction_of_a_record_of_the_period_belongs_to_the_period(
    fleet: PartnerFleet, read: Reader, relinked: None
) -> None:
    """R-CON-4: the DPO corrects LOC-S's grant after LOC-S left: LOC-S's history shows it;
    a correction of a record of LOC-T's period alone does not."""
    [shared_grant, withdrawal, _] = fleet.device("S1").consent_versions

    fleet.correct_consent_record(DPO, "S1", shared_grant, "signed by an intern", None)
    fleet.correct_consent_record(DPO, "S1", withdrawal, "withdrawn on paper first", None)

    with read() as tx:
        own = history(tx, AUDIT, Selection(partner=SERVICE_LOC)).rows
        other = history(tx, AUDIT, Selection(partner=OTHER_SERVICE_LOC)).rows
    assert [r["corrects_version"] for r in own if r["action"] == "corrected"] == [shared_grant]
    assert [r["corrects_version"] for r in other if r["action"] == "corrected"] == [
        shared_grant,
        withdrawal,
    ]


def test_r_con_4_a_partner_linked_in_two_roles_keeps_one_period_until_both_links_end(
    fleet: PartnerFleet, read: Reader
) -> None:
    """R-LNK-4, R-CON-4: the period lasts while the partner holds either role."""
    new_partner(fleet, SERVICE_LOC, service=True)
    link_new_servers(fleet, "C1", "S1", to=SERVICE_LOC, role="reseller")
    fleet.link_devices(CUSTOMER, "C1", ["S1"], to(SERVICE_LOC))
    fleet.unlink_devices(CUSTOMER, "C1", ["S1"], role="reseller")
    fleet.grant_consent(CUSTOMER, "C1", ["S1"])
    fleet.unlink_devices(CUSTOMER, "C1", ["S1"], role="service_partner")
    fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])

    with read() as tx:
        records = history(tx, AUDIT, Selection(partner=SERVICE_LOC)).rows

    assert [(r["action"], r["role"]) for r in records] == [
        ("linked", "reseller"),
        ("linked", "service_partner"),
        ("unlinked", "reseller"),
        ("granted", None),
        ("unlinked", "service_partner"),
    ]


def test_r_con_4_a_partner_and_a_device_together_narrow_the_history_to_both(
    fleet: PartnerFleet, read: Reader, relinked: None
) -> None:
    """R-CON-4: naming a device (or a customer) as well keeps that device's records only."""
    link_new_servers(fleet, "C1", "S2", to=SERVICE_LOC, role="service_partner")

    with read() as tx:
        of_s1 = history(tx, AUDIT, Selection(partner=SERVICE_LOC, serial="S1")).rows
        of_c1 = history(tx, AUDIT, Selection(partner=SERVICE_LOC, customer_id="C1")).rows
        of_c2 = history(tx, AUDIT, Selection(partner=SERVICE_LOC, customer_id="C2")).rows

    assert {r["serial"] for r in of_s1} == {"S1"}
    assert {r["serial"] for r in of_c1} == {"S1", "S2"}
    assert of_c2 == []


def test_r_con_3_the_answer_names_the_partner_link_it_relied_on(
    fleet: PartnerFleet, read: Reader, relinked: None
) -> None:
    """R-CON-3, R-LNK-4: role, Location ID and since when; none when not linked."""
    [s_linked, t_linked] = times_of(fleet, "S1", Device.PartnerLinked)
    [s_unlinked] = times_of(fleet, "S1", Device.PartnerUnlinked)

    with read() as tx:
        then = consent_in_effect(
            tx, AUDIT, "S1", SERVICE_LOC, s_unlinked - timedelta(microseconds=1)
        )
        now_s = consent_in_effect(tx, AUDIT, "S1", SERVICE_LOC, datetime.now(UTC))
        now_t = consent_in_effect(tx, AUDIT, "S1", OTHER_SERVICE_LOC, datetime.now(UTC))

    assert then.in_effect
    assert then.link == PartnerLink("service_partner", SERVICE_LOC, history_time(s_linked))
    assert now_s.link is None
    assert now_t.link == PartnerLink("service_partner", OTHER_SERVICE_LOC, history_time(t_linked))


def history_time(moment: datetime) -> str:
    """A moment as the consent view writes it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def replayed_from_partner_history(tx: Tx, partner: str, at: str) -> bool:
    """R-CON-4: what an auditor gets by replaying the partner's history alone up to `at`."""
    own = sorted(
        history(tx, AUDIT, Selection(partner=partner)).rows,
        key=lambda r: (r["device_id"], r["version"]),
    )
    state = replay((r for r in own if r["at"] <= at), partner)
    return state.granted and state.link is not None


def test_r_con_4_replaying_a_partners_history_alone_gives_the_devices_answers(
    fleet: PartnerFleet, read: Reader, relinked: None
) -> None:
    """R-CON-4: at every record's moment, the partner's own history answers as the device's."""
    fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])
    fleet.link_devices(CUSTOMER, "C1", ["S1"], to(SERVICE_LOC))
    fleet.grant_consent(CUSTOMER, "C1", ["S1"])

    with read() as tx:
        moments = [r["at"] for r in history(tx, AUDIT, Selection(serial="S1")).rows]
        for partner in (SERVICE_LOC, OTHER_SERVICE_LOC):
            for at in moments:
                instant = datetime.strptime(at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
                expected = consent_in_effect(tx, AUDIT, "S1", partner, instant).in_effect
                assert replayed_from_partner_history(tx, partner, at) == expected, (partner, at)
