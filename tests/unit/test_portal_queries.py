"""No query per row on any portal page (issue 10, "Quality a user notices"), and the All
Customers page's weight.

Each page is rendered in a small world (3 rows on it: customers, devices, events, cases,
reports, partners, users, records) and in the same world with many more rows (40), and the
SQL statements the page runs on the read models (every `query`/`stream` of the views'
transactions, caught-up checks included) and the event-store reads (`select_events`,
`select_notifications`, `max_notification_id`) are counted: the counts must be equal.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from domain import CustomerGroup
from handlers import PartnerFleet, PolicyRunner
from handlers.access import Claims
from handlers.devices import PartnerChoice
from tests.actors import customer, end_user, feed, partner_user
from tests.scenarios import OPS, in_memory_fleet, partner, report, servers
from tests.unit.portal_world import Portal, open_portal

LOC = "LOC-S"  # a service partner: its tiles carry service-event summaries
HOST = "C00"  # the customer with all the devices
SMALL, LARGE = 3, 40
TOKENS = {
    "anna": Claims(f"anna@{LOC}", "partner_user", LOC),  # LOC-S's admin
    "ben": Claims(f"ben@{LOC}", "partner_user", LOC),  # stars every customer (25 at most)
    "acme": Claims("it@c00.example", "customer_admin", HOST),
    "auditor": Claims("dpo@example", "auditor"),
    "ops": Claims("ops", "operator"),
}
STORE_READS = ("select_events", "select_notifications", "max_notification_id")


def serial(k: int) -> str:
    return f"S{k:03d}"


def pcs(n: int) -> list[str]:
    return [f"PC{k:03d}" for k in range(n)]


def build(n: int) -> PartnerFleet:
    """Service partner LOC-S with `n` of everything a page lists: customers (one server each
    besides C00, which has `n` servers with consent, a withdrawal and a re-grant, and `n`
    service events on its first), `n` users, `n` partners besides, `n` e2Open PCs in the
    holding tenant (with `n` rejected reports), `n` alerts that became repair cases and `n`
    alerts told to the partner only (self-service notifications off)."""
    fleet = in_memory_fleet()
    partner(fleet, LOC, service=True)
    fleet.certify_partner(OPS, LOC, "service_delivery")
    link = PartnerChoice(location_id=LOC, role="service_partner")
    acme = customer(HOST, "it@c00.example")
    fleet.register_devices(acme, HOST, servers(*map(serial, range(n))), link, "ACME")
    for k in range(1, n):
        fleet.register_devices(
            customer(f"C{k:02}"), f"C{k:02}", servers(f"X{k:03d}"), link, f"Customer {k:02}"
        )
    serials = [serial(k) for k in range(n)]
    fleet.grant_consent(acme, HOST, serials)
    fleet.withdraw_consent(acme, HOST, serials)
    fleet.grant_consent(acme, HOST, serials)
    for k in range(n):
        fleet.record_service_event(OPS, serial(0), f"E{k:03d}", ("critical", "info")[k % 2], "PSU")
        fleet.register_partner(OPS, f"LOC-P{k:03d}", f"Partner {k}")
        fleet.register_partner_user(OPS, LOC, f"user{k:03d}@{LOC}")
    ben = partner_user(fleet, LOC, f"ben@{LOC}")
    for k in range(min(n, 25)):
        fleet.add_favourite(ben, CustomerGroup.id_for(LOC, f"C{k:02}"))
    fleet.choose_default_view(ben, "favorites_only")
    holding(fleet, n)
    PolicyRunner(fleet).catch_up()
    return fleet


def holding(fleet: PartnerFleet, n: int) -> None:
    """`2n` PCs reported (and `n` rejected): `n` in a dashboard with self-service off (their
    alerts told to the partner), `n` left unassigned with repair cases in the CSDP queue."""
    good = [report(s, LOC) for s in pcs(2 * n)]
    bad = [report(f"BAD{k:03d}", LOC, model="") for k in range(n)]
    fleet.receive_e2open_batch(feed(), "B1", good + bad)
    anna = partner_user(fleet, LOC, f"anna@{LOC}")
    tenant = fleet.partner(LOC).holding_tenant_id
    assert tenant is not None
    board = fleet.create_customer_dashboard(anna, LOC, "C90", "Globex", "4711")
    moved = pcs(2 * n)[n:]
    fleet.transfer_devices(anna, LOC, moved, tenant, board, "T1")
    fleet.switch_self_service_notifications(anna, LOC, board, False)
    for k, pc in enumerate(pcs(n)):
        fleet.raise_alert(OPS, pc, f"A{k:03d}", "critical", f"Battery of {pc}")
        fleet.submit_repair_case(end_user("C91", [pc]), pc, f"A{k:03d}", f"K{k:03d}")
    for k, pc in enumerate(moved):
        fleet.raise_alert(OPS, pc, f"W{k:03d}", "warning", f"Fan of {pc}")


@dataclass(frozen=True)
class Counts:
    """What one page request ran."""

    sql: int
    store: int


class Counter:
    """Counts the read models' statements and the event store's reads of a portal."""

    def __init__(self, portal: Portal) -> None:
        self.sql = 0
        self.store = 0
        db = portal.views.db
        plain = db.transaction

        @contextmanager
        def counted() -> Iterator[Any]:
            with plain() as tx:
                yield _CountingTx(tx, self)

        db.transaction = counted  # type: ignore[method-assign]
        recorder = portal.fleet.recorder
        for name in STORE_READS:
            setattr(recorder, name, self._store_read(getattr(recorder, name)))

    def _store_read(self, read: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.store += 1
            return read(*args, **kwargs)

        return counted

    def page(self, portal: Portal, who: str, path: str) -> tuple[Counts, str]:
        """Counts of one GET of `path` as `who` (which must answer 200), and its markup."""
        portal.browser.sign_in(who)
        self.sql = self.store = 0
        answer = portal.browser.get(path)
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:500])
        return Counts(self.sql, self.store), answer.text


class _CountingTx:
    def __init__(self, tx: Any, counter: Counter) -> None:
        self._tx, self._counter = tx, counter

    def execute(self, statement: str, params: Any = ()) -> None:
        self._counter.sql += 1
        self._tx.execute(statement, params)

    def executemany(self, statement: str, rows: Any) -> None:
        self._counter.sql += 1
        self._tx.executemany(statement, rows)

    def query(self, statement: str, params: Any = ()) -> list[tuple[Any, ...]]:
        self._counter.sql += 1
        rows: list[tuple[Any, ...]] = self._tx.query(statement, params)
        return rows

    def stream(self, statement: str, params: Any = ()) -> Iterator[tuple[Any, ...]]:
        self._counter.sql += 1
        return iter(self._tx.stream(statement, params))


@pytest.fixture(scope="module")
def worlds() -> Iterator[dict[int, tuple[Portal, Counter]]]:
    """The small and the large world, each with a portal whose reads are counted."""
    opened = {n: open_portal(build(n), TOKENS) for n in (SMALL, LARGE)}
    yield {n: (p, Counter(p)) for n, p in opened.items()}
    for p in opened.values():
        p.close()


def group(customer_id: str) -> str:
    return str(CustomerGroup.id_for(LOC, customer_id))


AT = "2099-01-01T00:00"
PAGES: dict[str, tuple[str, str, str]] = {
    # page: (who, path, what the large world's page shows many of)
    "All Customers": ("anna", f"/portal/partners/{LOC}/customers", 'class="tile"'),
    "All Customers, search": (
        "anna",
        f"/portal/partners/{LOC}/customers?search=Customer",
        'class="tile"',
    ),
    "Favorites Only": ("ben", f"/portal/partners/{LOC}/customers", 'class="tile"'),
    "customer dashboard": ("anna", f"/portal/partners/{LOC}/customers/{group(HOST)}", "S03"),
    "device page": ("anna", f"/portal/partners/{LOC}/devices/{serial(0)}", "E03"),
    "service events": ("anna", f"/portal/partners/{LOC}/service-events", "E03"),
    "holding tenant": ("anna", f"/portal/partners/{LOC}/holding", "PC03"),
    "CSDP queue": ("anna", f"/portal/partners/{LOC}/csdp-queue", "K03"),
    "alerts told to the partner": ("anna", f"/portal/partners/{LOC}/alerts", "W03"),
    "My IT Environment": ("acme", f"/portal/customers/{HOST}/environment", "S03"),
    "consent history (customer)": ("acme", f"/portal/customers/{HOST}/consent-history", "S0"),
    "consent history (device)": (
        "acme",
        f"/portal/customers/{HOST}/devices/{serial(0)}/consent-history",
        "S000",
    ),
    "audit: consent at a time": (
        "auditor",
        f"/portal/audit?serial={serial(0)}&partner={LOC}&at={AT}",
        "S000",
    ),
    "audit history (customer)": ("auditor", f"/portal/audit/history?customer_id={HOST}", "S0"),
    "audit history (partner)": ("auditor", f"/portal/audit/history?partner={LOC}", "S0"),
    "operations: partners": ("ops", "/portal/operations", "LOC-P003"),
    "operations: a partner and its users": ("ops", f"/portal/operations/partners/{LOC}", "user003"),
    "operations: rejected reports": ("ops", "/portal/operations/rejected-reports", "BAD003"),
}


@pytest.mark.parametrize("page", PAGES)
def test_issue_10_no_query_per_row_r_fav_1_r_svc_2_r_con_3_r_alr_2(
    worlds: dict[int, tuple[Portal, Counter]], page: str
) -> None:
    """Every page runs as many read-model statements and event-store reads for 40 rows as
    for 3 (R-FAV-1, R-SVC-2, R-LNK-1, R-HLD-1, R-ALR-2, R-CON-3, R-CON-4, R-PAR-1)."""
    who, path, many = PAGES[page]
    small, _ = worlds[SMALL][1].page(worlds[SMALL][0], who, path)
    large, html = worlds[LARGE][1].page(worlds[LARGE][0], who, path)

    assert many in html  # the large world's page does show its many rows
    assert small.sql > 0
    assert large == small, f"{page}: {small} with {SMALL} rows, {large} with {LARGE}"


def test_issue_10_a_full_all_customers_page_weighs_under_200_kb_r_fav_1(
    worlds: dict[int, tuple[Portal, Counter]],
) -> None:
    """R-FAV-1: All Customers with a full page of 24 tiles (service-event summaries on each)
    weighs under 200 KB with every style sheet and script it loads."""
    portal, counter = worlds[LARGE]
    _, html = counter.page(portal, "anna", f"/portal/partners/{LOC}/customers")
    assets = re.findall(r'<link rel="stylesheet" href="([^"]+)"', html)
    assets += re.findall(r'<script[^>]* src="([^"]+)"', html)
    loaded = [portal.browser.get(url.replace("&amp;", "&")) for url in assets]

    assert html.count('<li class="tile"') == 24
    assert len(assets) >= 2  # the style sheet, htmx and portal.js
    assert all(a.status_code == 200 for a in loaded)
    total = len(html.encode()) + sum(len(a.content) for a in loaded)
    assert total < 200 * 1024, f"{total:,} bytes"
    zipped = len(gzip.compress(html.encode())) + sum(len(gzip.compress(a.content)) for a in loaded)
    assert zipped < total
