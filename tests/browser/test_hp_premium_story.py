"""The HP Premium seed story clicked through in Chromium, on the demo (its own server):

the e2Open feed reports two Premium PCs resold by DEMO-SERVICE-1 over the HTTP intake, and
they appear in its Unassigned Devices (R-HLD-1); chris, its admin, creates a customer
dashboard, transfers both PCs into it, reverses the transfer and transfers them again
(R-HLD-3); with a Premium PC in it, he switches self-service notifications off (R-ALR-3,
R-ALR-4), and the next alert for one of them is told to the partner only (R-ALR-4).

The story runs at the service partner because the portal shows "Alerts told to you" on the
CSDP page, which is a service partner's page: an HP Premium reseller (DEMO-RESELLER-1) can
switch self-service off but has no page listing the alerts then told to it (only the API's
`GET /partners/{location_id}/alerts`).
"""

from __future__ import annotations

import re
import time

from playwright.sync_api import Locator, Page, expect

from tests.browser.screens import Check, SignIn
from tests.browser.support import DemoServer, screenshot

CHRIS = "chris@service.example"
PARTNER = "DEMO-SERVICE-1"
FEED = "remote-support-feed"
PCS = ("5CA0BRW001", "5CA0BRW002")  # before the demo's 5CG… PCs: on the first page
CUSTOMER_ID, CUSTOMER_NAME = "BROWSER-PREMIUM-1", "Aaron Browser GmbH"
ALERT = "ALR-BROWSER-1"


def e2open_batch() -> dict[str, object]:
    """The feed's batch: two PCs with HP Premium, resold by DEMO-SERVICE-1."""
    return {
        "batch_id": "browser-premium-1",
        "reports": [
            {
                "serial": serial,
                "model": "HP EliteBook 840 G11",
                "reseller_location_id": PARTNER,
                "distributor": "Ingram Micro",
                "ship_date": "2026-10-01",
                "end_customer": CUSTOMER_ID,
                "care_plan": "premium",
            }
            for serial in PCS
        ],
    }


def dashboard(page: Page) -> Locator:
    """The new customer dashboard's article on the holding tenant page."""
    return page.locator("article.dashboard").filter(
        has=page.get_by_role("heading", name=CUSTOMER_NAME)
    )


def unassigned(page: Page) -> Locator:
    """The Unassigned Devices section."""
    return page.locator("#unassigned")


def transfer_both(page: Page, axe: Check) -> None:
    """Select both PCs in Unassigned Devices and transfer them into the new dashboard."""
    for serial in PCS:
        unassigned(page).get_by_label(serial, exact=True).check()
    page.get_by_label("Transfer the selected PCs to").select_option(
        label=f"{CUSTOMER_NAME} ({CUSTOMER_ID})"
    )
    unassigned(page).get_by_role("button", name="Transfer", exact=True).click()
    axe()
    for serial in PCS:
        expect(dashboard(page).get_by_role("rowheader", name=serial)).to_be_visible()
        expect(unassigned(page).get_by_label(serial, exact=True)).to_have_count(0)


def reload_until(page: Page, shown: Locator, seconds: float = 15.0) -> None:
    """Reload until `shown` is visible (a policy decides after the command, so the read
    model shows its decision a moment later)."""
    deadline = time.monotonic() + seconds
    while not shown.is_visible():
        assert time.monotonic() < deadline, f"not shown after {seconds} s: {shown}"
        time.sleep(0.3)
        page.reload()


def test_hp_premium_e2open_dashboard_transfer_reverse_self_service_off_alert_to_partner(
    page: Page, sign_in: SignIn, axe: Check, server: DemoServer
) -> None:
    """R-HLD-1, R-HLD-3, R-ALR-3, R-ALR-4: the HP Premium story."""
    outcome = server.post_json("/intake/e2open/batches", e2open_batch(), FEED)
    assert outcome["accepted"] == list(PCS), outcome

    sign_in(CHRIS)
    axe()
    page.get_by_role("link", name="Holding tenant").click()
    axe()
    for serial in PCS:
        expect(unassigned(page).get_by_label(serial, exact=True)).to_be_visible()

    page.get_by_label("Customer ID").fill(CUSTOMER_ID)
    page.get_by_label("Customer name").fill(CUSTOMER_NAME)
    page.get_by_label("Customer's cPIN").fill("4711-browser")
    page.get_by_role("button", name="Create customer dashboard").click()
    axe()
    expect(dashboard(page)).to_contain_text("No PCs in this dashboard yet.")
    assert "4711-browser" not in page.content()

    transfer_both(page, axe)
    screenshot(page, "holding-tenant", start=page.locator("#dashboards"))

    page.locator("#transfers").get_by_role(
        "button", name=re.compile("^Reverse transfer")
    ).first.click()
    axe()
    for serial in PCS:
        expect(unassigned(page).get_by_label(serial, exact=True)).to_be_visible()
    expect(dashboard(page)).to_contain_text("No PCs in this dashboard yet.")

    transfer_both(page, axe)
    expect(dashboard(page)).to_contain_text("Self-service notifications: on")
    dashboard(page).get_by_role("button", name="Switch self-service notifications off").click()
    axe()
    expect(dashboard(page)).to_contain_text("Self-service notifications: off")

    server.post_json(
        f"/devices/{PCS[0]}/alerts",
        {"alert_id": ALERT, "severity": "critical", "message": "Battery failing"},
        FEED,
    )
    page.get_by_role("link", name="CSDP repair cases").click()
    axe()
    told = page.locator("#alerts").get_by_role("row").filter(has_text=ALERT)
    reload_until(page, told)

    expect(told).to_contain_text(PCS[0])
    expect(told).to_contain_text("Battery failing")
    axe()
    screenshot(page, "csdp-queue-alert-to-partner", start=page.locator("#alerts"))
