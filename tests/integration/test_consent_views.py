"""The consent view on PostgreSQL and on a SQLite file: issue 8's kinds 1, 4 and 8."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from domain import Device, NotAllowedError
from handlers import PartnerFleet
from handlers.devices import PartnerChoice
from infra.bootstrap import build_fleet, build_view_runner
from infra.follow.view_runner import ViewRunner
from infra.settings import Settings
from projections.base import MomentError
from projections.consent_queries import Selection, configuration_for, consent_in_effect, history
from tests.actors import auditor
from tests.scenarios import CUSTOMER, OPS, partner, servers
from tests.scopes import AUDIT, partner_at

DPO = auditor("dpo@hp.example", "corr-dpo")
TICK = timedelta(microseconds=1)
PLUS_TWO = timezone(timedelta(hours=2))


@pytest.fixture
def stack(stored_settings: Settings, tmp_path: Path) -> Iterator[tuple[PartnerFleet, ViewRunner]]:
    """A fleet on the stored backend, with its views (PostgreSQL, or a SQLite file)."""
    settings = stored_settings.model_copy(update={"views_sqlite_path": tmp_path / "views.sqlite3"})
    fleet = build_fleet(settings)
    runner = build_view_runner(settings, fleet)
    yield fleet, runner
    runner.db.close()
    fleet.close()


def times_of(fleet: PartnerFleet, serial: str, event_type: type[Device.Event]) -> list[datetime]:
    """When the device's events of one type were recorded, oldest first."""
    events = fleet.events.get(Device.id_for(serial))
    return [e.timestamp for e in events if isinstance(e, event_type)]


def test_r_con_4_a_correction_of_a_past_grant_does_not_reopen_access_on_every_backend(
    stack: tuple[PartnerFleet, ViewRunner],
) -> None:
    """R-CON-3, R-CON-4 (issue 8, kind 1): grant, collect, withdraw, correct the first grant."""
    fleet, runner = stack
    partner(fleet, "LOC-A")
    fleet.register_devices(CUSTOMER, "C1", servers("D1"), PartnerChoice(location_id="LOC-A"))
    fleet.grant_consent(CUSTOMER, "C1", ["D1"])
    fleet.collect_configuration(OPS, "D1", {"cpu": "Xeon"})
    fleet.withdraw_consent(CUSTOMER, "C1", ["D1"])
    [first_grant, _] = fleet.device("D1").consent_versions

    fleet.correct_consent_record(DPO, "D1", first_grant, "wording version missing", "2025-06")

    runner.catch_up()
    with runner.db.transaction() as tx:
        assert (
            history(tx, AUDIT, Selection(serial="D1")).rows[-1]["corrects_version"] == first_grant
        )
        assert not consent_in_effect(tx, AUDIT, "D1", "LOC-A", datetime.now(UTC)).in_effect
        with pytest.raises(NotAllowedError, match="not granted consent"):
            configuration_for(tx, partner_at(fleet, "LOC-A"), "D1")
    assert not fleet.may_read_configuration("D1", "LOC-A")


def test_r_con_4_a_partners_history_holds_its_own_period_on_every_backend(
    stack: tuple[PartnerFleet, ViewRunner],
) -> None:
    """R-CON-4 (issue 8, kind 8): LOC-S sees its link, the grant of its period, its unlink."""
    fleet, runner = stack
    partner(fleet, "LOC-S", service=True)
    partner(fleet, "LOC-T", service=True)
    to_s = PartnerChoice(location_id="LOC-S", role="service_partner")
    fleet.register_devices(CUSTOMER, "C1", servers("S1"), to_s)
    fleet.grant_consent(CUSTOMER, "C1", ["S1"])
    fleet.link_devices(
        CUSTOMER, "C1", ["S1"], PartnerChoice(location_id="LOC-T", role="service_partner")
    )
    fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])
    fleet.grant_consent(CUSTOMER, "C1", ["S1"])

    runner.catch_up()
    with runner.db.transaction() as tx:
        records = history(tx, AUDIT, Selection(partner="LOC-S")).rows
        answer = consent_in_effect(tx, AUDIT, "S1", "LOC-T", datetime.now(UTC))

    assert [(r["action"], r["partner"]) for r in records] == [
        ("linked", "LOC-S"),
        ("granted", None),
        ("unlinked", "LOC-S"),
    ]
    assert answer.in_effect
    assert answer.link is not None
    assert (answer.link.role, answer.link.location_id) == ("service_partner", "LOC-T")


def test_r_con_3_moments_in_any_offset_compare_to_the_microsecond_on_every_backend(
    stack: tuple[PartnerFleet, ViewRunner],
) -> None:
    """R-CON-3, R-CON-4 (issue 8, kind 4): +02:00 and UTC name one instant; periods are
    [since, until) to the microsecond; naive moments are refused."""
    fleet, runner = stack
    partner(fleet, "LOC-1")
    fleet.register_devices(CUSTOMER, "C1", servers("S1"), PartnerChoice(location_id="LOC-1"))
    fleet.grant_consent(CUSTOMER, "C1", ["S1"])
    fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])
    [grant] = times_of(fleet, "S1", Device.ConsentGranted)
    [withdrawal] = times_of(fleet, "S1", Device.ConsentWithdrawn)

    runner.catch_up()
    with runner.db.transaction() as tx:
        answers = [
            consent_in_effect(tx, AUDIT, "S1", "LOC-1", at.astimezone(PLUS_TWO)).in_effect
            for at in (grant - TICK, grant, withdrawal - TICK, withdrawal)
        ]
        period = history(
            tx,
            AUDIT,
            Selection(customer_id="C1", since=grant.astimezone(PLUS_TWO), until=withdrawal),
        ).rows
        to_the_end = history(tx, AUDIT, Selection(customer_id="C1", since=withdrawal - TICK)).rows
        with pytest.raises(MomentError, match="no time zone"):
            consent_in_effect(tx, AUDIT, "S1", "LOC-1", grant.replace(tzinfo=None))

    assert answers == [False, True, True, False]
    assert [r["action"] for r in period] == ["granted"]
    assert [r["action"] for r in to_the_end] == ["withdrawn"]
