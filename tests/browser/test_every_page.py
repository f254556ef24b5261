"""Every page of the portal, as the principal it is for, passes the accessibility scan
(axe-core: no violation of impact serious or critical) and has one <h1>; the main ones are
saved as screenshots for README. Read-only visits on the demo, so they share a server.

Pages the stories change data on are scanned there too (test_*_story.py)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.screens import Check, SignIn
from tests.browser.support import screenshot

ACME = "DEMO-CUSTOMER-ACME"
# (who, pages: (path under /portal, screenshot name or None))
VISITS: list[tuple[str, list[tuple[str, str | None]]]] = [
    (
        "chris@service.example",
        [
            ("/partners/DEMO-SERVICE-1/customers", None),
            ("/partners/DEMO-SERVICE-1/service-events", "service-events"),
            (f"/partners/DEMO-SERVICE-1/service-events?customer_id={ACME}", None),
            ("/partners/DEMO-SERVICE-1/devices/CZJ000001", "partner-device"),
            ("/partners/DEMO-SERVICE-1/csdp-queue", None),
            ("/partners/DEMO-SERVICE-1/holding", None),
        ],
    ),
    (
        "anna@reseller.example",
        [
            ("/partners/DEMO-RESELLER-1/customers", "all-customers"),
            ("/partners/DEMO-RESELLER-1/holding", None),
            ("/partners/DEMO-RESELLER-1/alerts", None),
            ("/partners/DEMO-RESELLER-1/devices/CZJ000001", None),
            ("/partners/DEMO-RESELLER-1/customers/not-a-group", None),
        ],
    ),
    (
        "it-admin@acme.example",
        [
            (f"/customers/{ACME}/environment", None),
            (f"/customers/{ACME}/devices/CZJ000001", "customer-device"),
            (f"/customers/{ACME}/consent-history", "consent-history"),
            (f"/customers/{ACME}/devices/CZJ000001/consent-history", None),
            ("/customers/DEMO-CUSTOMER-GLOBEX/environment", None),
        ],
    ),
    ("user-5cg00001@acme.example", [(f"/customers/{ACME}/my-pcs", "my-pcs")]),
    (
        "auditor@example.com",
        [
            ("/audit", None),
            ("/audit/history?serial=CZJ000001", "consent-audit-history"),
            ("/audit/history?partner=DEMO-RESELLER-1", None),
        ],
    ),
    (
        "hp-ops@example.com",
        [
            ("/operations", "operations-partners"),
            ("/operations/partners/DEMO-SERVICE-1", None),
            ("/operations/rejected-reports", "operations-rejected-reports"),
        ],
    ),
    ("remote-support-feed", [("/no-pages", None)]),
]


@pytest.mark.parametrize(("who", "pages"), VISITS, ids=[who for who, _ in VISITS])
def test_every_page_passes_the_accessibility_scan(
    page: Page, sign_in: SignIn, axe: Check, who: str, pages: list[tuple[str, str | None]]
) -> None:
    """Each page (and a refused one: another customer, no such group) for its principal."""
    sign_in(who)
    axe()

    for path, name in pages:
        page.goto(f"/portal{path}")

        axe()
        expect(page.locator("h1")).to_have_count(1)
        if name:
            screenshot(page, name)
