"""Moments passed in for "as of" questions mean one instant on any host (issue 8, kind 4)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest

from domain import Device
from handlers import PartnerFleet
from projections.base import MomentError, iso
from projections.consent_queries import Selection, consent_in_effect, history
from tests.scopes import AUDIT
from tests.unit.views_support import (
    CUSTOMER,
    LOC,
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

TICK = timedelta(microseconds=1)
PLUS_TWO = timezone(timedelta(hours=2))
MINUS_FIVE = timezone(timedelta(hours=-5))


@pytest.fixture
def granted(fleet: PartnerFleet) -> list[datetime]:
    """S1 linked to LOC-1, granted, withdrawn: the times of link, grant and withdrawal."""
    new_partner(fleet, LOC)
    link_new_servers(fleet, "C1", "S1", to=LOC)
    fleet.grant_consent(CUSTOMER, "C1", ["S1"])
    fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])
    [linked] = times_of(fleet, "S1", Device.PartnerLinked)
    [grant] = times_of(fleet, "S1", Device.ConsentGranted)
    [withdrawal] = times_of(fleet, "S1", Device.ConsentWithdrawn)
    return [linked, grant, withdrawal]


@pytest.fixture
def host_in_india() -> Iterator[None]:
    """The host's local time zone is UTC+05:30 for the test."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TZ", "Asia/Kolkata")
        time.tzset()
        yield
    time.tzset()


def test_r_con_3_a_moment_without_a_time_zone_is_refused_saying_what_to_pass(
    read: Reader, granted: list[datetime]
) -> None:
    """R-CON-3: a naive datetime would be another instant on each host: refused clearly."""
    naive = granted[1].replace(tzinfo=None)

    with read() as tx, pytest.raises(MomentError, match=r"no time zone.*aware datetime"):
        consent_in_effect(tx, AUDIT, "S1", LOC, naive)


@pytest.mark.parametrize("bound", ["since", "until"])
def test_r_con_4_a_period_bound_without_a_time_zone_is_refused(
    read: Reader, granted: list[datetime], bound: str
) -> None:
    """R-CON-4: exports by period take aware datetimes only."""
    naive, aware = granted[1].replace(tzinfo=None), granted[1]
    since, until = (naive, None) if bound == "since" else (aware, naive)

    with read() as tx, pytest.raises(MomentError, match="no time zone"):
        history(tx, AUDIT, Selection(serial="S1", since=since, until=until))


def test_r_con_3_the_same_instant_in_any_offset_gets_the_same_answer_to_the_microsecond(
    read: Reader, granted: list[datetime]
) -> None:
    """R-CON-3: +02:00, -05:00 and UTC name one instant; one microsecond before differs."""
    grant = granted[1]

    with read() as tx:
        answers = {
            zone: [
                consent_in_effect(tx, AUDIT, "S1", LOC, (at).astimezone(zone)).in_effect
                for at in (grant - TICK, grant)
            ]
            for zone in (UTC, PLUS_TWO, MINUS_FIVE)
        }

    assert answers == {zone: [False, True] for zone in (UTC, PLUS_TWO, MINUS_FIVE)}


def test_r_con_3_aware_moments_are_answered_the_same_whatever_the_hosts_time_zone(
    read: Reader, granted: list[datetime], host_in_india: None
) -> None:
    """R-CON-3: the host's local zone plays no part in an aware moment's meaning."""
    grant = granted[1]

    with read() as tx:
        answer = consent_in_effect(tx, AUDIT, "S1", LOC, grant.astimezone(PLUS_TWO))

    assert answer.in_effect
    assert answer.at == grant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_r_con_4_a_period_includes_its_start_and_excludes_its_end_to_the_microsecond(
    read: Reader, granted: list[datetime]
) -> None:
    """R-CON-4: [since, until), in any offset: exactly the grant, not the link or withdrawal."""
    [linked, grant, withdrawal] = granted

    with read() as tx:
        exact = history(
            tx, AUDIT, Selection(serial="S1", since=grant.astimezone(PLUS_TWO), until=withdrawal)
        ).rows
        wider = history(
            tx, AUDIT, Selection(serial="S1", since=linked + TICK, until=withdrawal + TICK)
        ).rows
        shifted = history(
            tx,
            AUDIT,
            Selection(serial="S1", since=grant + TICK, until=withdrawal.astimezone(MINUS_FIVE)),
        ).rows

    assert [r["action"] for r in exact] == ["granted"]
    assert [r["action"] for r in wider] == ["granted", "withdrawn"]
    assert shifted == []


def test_r_con_4_a_period_that_ends_before_it_starts_is_refused(
    read: Reader, granted: list[datetime]
) -> None:
    """R-CON-4: an export for an inverted period says so instead of returning nothing."""
    with read() as tx, pytest.raises(MomentError, match=r"ends .* before it starts"):
        history(tx, AUDIT, Selection(customer_id="C1", since=granted[2], until=granted[0]))


def test_r_con_3_a_moment_before_year_1000_is_still_before_every_record(
    read: Reader, granted: list[datetime]
) -> None:
    """R-CON-3: fixed-width years, so text order stays time order for any year."""
    with read() as tx:
        answer = consent_in_effect(tx, AUDIT, "S1", LOC, datetime(999, 1, 1, tzinfo=UTC))

    assert (answer.at, answer.partner_linked) == ("0999-01-01T00:00:00.000000Z", False)


def test_r_con_3_a_moment_beyond_year_9999_in_utc_is_refused_clearly() -> None:
    """R-CON-3: datetime.max at -05:00 is after 9999-12-31 in UTC: refused, not a crash."""
    with pytest.raises(MomentError, match="outside years 1-9999"):
        iso(datetime.max.replace(tzinfo=MINUS_FIVE))
