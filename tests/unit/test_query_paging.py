"""Issue 9: every list query is keyset-paged on a unique key with a bounded `limit`.

Walking a list page by page (`after` = the page's `next_after`) gives exactly the rows of
one big page, in the same order, with no repeats, however small the pages; a limit
outside 1…200 and a key that is not this list's are `QueryError`s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from handlers import PartnerFleet, PolicyRunner
from handlers.devices import PartnerChoice
from projections import consent_queries, customer_queries, holding, repair_queues, service
from projections.base import QueryError, Tx
from projections.consent_queries import Selection
from projections.paging import MAX_LIMIT, Key, Page
from tests.actors import case_submitter, partner_user
from tests.actors import customer as customer_admin
from tests.scenarios import OPS, in_memory_fleet, partner, report, servers
from tests.scopes import AUDIT, OPERATIONS, partner_of
from tests.views import memory_runner

RESELLER, SERVICE = "LOC-1", "LOC-S"
SERIALS = [f"S{n}" for n in range(6)]


@pytest.fixture(scope="module")
def world() -> Iterator[tuple[PartnerFleet, Callable[[], Any]]]:
    """Six servers of three customers, each linked to LOC-1 (reseller) and LOC-S (service
    partner), consent granted; two service events each (the same event ids on every
    device), an alert and a routed case each, then three cases not routed yet; seven PCs
    of LOC-1 and four rejected reports; three open requests of LOC-1."""
    fleet = in_memory_fleet()
    partner(fleet, RESELLER)
    partner(fleet, SERVICE, service=True)
    for n, serial in enumerate(SERIALS):
        customer = f"C{n % 3}"
        fleet.register_devices(
            customer_admin(customer), customer, servers(serial), PartnerChoice(location_id=RESELLER)
        )
        choice = PartnerChoice(location_id=SERVICE, role="service_partner")
        fleet.link_devices(customer_admin(customer), customer, [serial], choice)
        fleet.grant_consent(customer_admin(customer), customer, [serial])
        for event_id in ("E1", "E2"):
            fleet.record_service_event(OPS, serial, event_id, "critical", "PSU")
        fleet.raise_alert(OPS, serial, "A1", "critical", "Failure predicted")
        fleet.submit_repair_case(case_submitter(fleet, serial), serial, "A1", "K1")
    PolicyRunner(fleet).catch_up()
    for serial in SERIALS[:3]:
        fleet.raise_alert(OPS, serial, "A2", "warning", "Fan")
        fleet.submit_repair_case(
            case_submitter(fleet, serial), serial, "A2", "K2"
        )  # no policy run: unrouted
    pcs = [report(f"PC{n}", RESELLER) for n in range(7)]
    bad = [report(f"PX{n}", "LOC-404") for n in range(4)]
    fleet.receive_e2open_batch(OPS, "b1", pcs + bad)
    for request in ("R1", "R2", "R3"):
        fleet.report_missing_devices(
            partner_user(fleet, RESELLER, f"anna@{RESELLER}"), RESELLER, request, ["PC9"]
        )
    runner = memory_runner(fleet)
    runner.catch_up()
    yield fleet, runner.db.transaction
    runner.db.close()


Lister = Callable[[Tx, PartnerFleet, Key | None, int], Page[Any]]
LISTS: dict[str, Lister] = {
    "unassigned_devices": lambda tx, f, a, n: holding.unassigned_devices(
        tx, partner_of(f, f"anna@{RESELLER}"), after=a, limit=n
    ),
    "rejected_reports": lambda tx, _, a, n: holding.rejected_reports(
        tx, OPERATIONS, after=a, limit=n
    ),
    "open_missing_device_requests": lambda tx, f, a, n: holding.open_missing_device_requests(
        tx, partner_of(f, f"anna@{RESELLER}"), after=a, limit=n
    ),
    "open_missing_device_requests(operator)": lambda tx, _, a, n: (
        holding.open_missing_device_requests(tx, OPERATIONS, after=a, limit=n)
    ),
    "csdp_queue": lambda tx, f, a, n: repair_queues.csdp_queue(
        tx, partner_of(f, f"anna@{SERVICE}"), after=a, limit=n
    ),
    "repair_queue": lambda tx, _, a, n: repair_queues.repair_queue(
        tx, OPERATIONS, f"csdp:CSDP-{SERVICE}", after=a, limit=n
    ),
    "unrouted_repair_cases": lambda tx, _, a, n: repair_queues.unrouted_repair_cases(
        tx, OPERATIONS, after=a, limit=n
    ),
    "alert_notifications": lambda tx, f, a, n: repair_queues.alert_notifications(
        tx, partner_of(f, f"anna@{SERVICE}"), after=a, limit=n
    ),
    "alert_notifications(operator)": lambda tx, _, a, n: repair_queues.alert_notifications(
        tx, OPERATIONS, after=a, limit=n
    ),
    "service_events": lambda tx, f, a, n: service.service_events(
        tx, partner_of(f, f"anna@{SERVICE}"), after=a, limit=n
    ),
    "service_summary": lambda tx, f, a, n: service.service_summary(
        tx, partner_of(f, f"anna@{SERVICE}"), after=a, limit=n
    ),
    "history(customer)": lambda tx, _, a, n: consent_queries.history(
        tx, AUDIT, Selection(customer_id="C0"), after=a, limit=n
    ),
    "history(partner)": lambda tx, _, a, n: consent_queries.history(
        tx, AUDIT, Selection(partner=SERVICE), after=a, limit=n
    ),
}


def walk(tx: Tx, fleet: PartnerFleet, lister: Lister, limit: int) -> tuple[list[Any], int]:
    """Every row of every page, and how many pages there were."""
    rows: list[Any] = []
    after: Key | None = None
    pages = 0
    while True:
        page = lister(tx, fleet, after, limit)
        rows += page.rows
        pages += 1
        if page.next_after is None:
            return rows, pages
        after = page.next_after


@pytest.mark.parametrize("limit", [1, 2, 5])
@pytest.mark.parametrize("name", sorted(LISTS))
def test_issue_9_walking_a_list_page_by_page_gives_the_one_big_page(
    world: tuple[PartnerFleet, Callable[[], Any]], name: str, limit: int
) -> None:
    fleet, transaction = world
    with transaction() as tx:
        whole = LISTS[name](tx, fleet, None, MAX_LIMIT)
        walked, pages = walk(tx, fleet, LISTS[name], limit)

    assert whole.next_after is None
    assert len(whole.rows) > 2
    assert walked == whole.rows
    assert pages == -(-len(whole.rows) // limit)


@pytest.mark.parametrize("limit", [0, -1, MAX_LIMIT + 1])
@pytest.mark.parametrize("name", sorted(LISTS))
def test_issue_9_a_limit_outside_1_to_200_is_refused(
    world: tuple[PartnerFleet, Callable[[], Any]], name: str, limit: int
) -> None:
    fleet, transaction = world
    with transaction() as tx, pytest.raises(QueryError, match="1 to 200"):
        LISTS[name](tx, fleet, None, limit)


@pytest.mark.parametrize("after", [("x",) * 9, (1.5,), ("a\x00",)], ids=["long", "float", "nul"])
@pytest.mark.parametrize("name", sorted(LISTS))
def test_issue_9_a_key_that_is_not_this_lists_is_refused(
    world: tuple[PartnerFleet, Callable[[], Any]], name: str, after: Key
) -> None:
    fleet, transaction = world
    with transaction() as tx, pytest.raises(QueryError, match="cursor"):
        LISTS[name](tx, fleet, after, 10)


def test_r_fav_1_list_customers_pages_after_its_plain_key_as_after_its_cursor(
    world: tuple[PartnerFleet, Callable[[], Any]],
) -> None:
    """R-FAV-1: `next_after` (plain values, for the HTTP layer's signed cursor) and
    `next_cursor` (this module's own) continue at the same row."""
    fleet, transaction = world
    scope = partner_of(fleet, f"anna@{RESELLER}")
    with transaction() as tx:
        first = customer_queries.list_customers(tx, scope, limit=1)
        by_cursor = customer_queries.list_customers(tx, scope, cursor=first.next_cursor)
        by_key = customer_queries.list_customers(tx, scope, after=first.next_after)

    assert first.next_after is not None
    assert by_key.rows == by_cursor.rows
    assert [r.customer_id for r in first.rows + by_key.rows] == ["C0", "C1", "C2"]
