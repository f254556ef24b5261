"""The HPE seed story clicked through in Chromium, on the demo (its own server):

Globex's IT admin links two of its servers to DEMO-RESELLER-1 and grants consent for them
(R-LNK-1, R-LNK-5, R-CON-1); anna, the reseller's admin, finds Globex among her customers,
stars it and more up to 25, and the 26th is refused (R-FAV-2); Favorites Only, searched in
(R-FAV-3, R-FAV-5); Globex's dashboard shows the two servers and its admins (R-LNK-1,
R-GRP-3); deleting the group is refused with every reason and the admins to contact, and
allowed once Globex has unlinked its servers (R-GRP-2, R-LNK-6).

A group made by a customer's link from My IT Environment is named by the Customer ID: the
page's link form sends no customer name (`link_devices(customer_name="")`), so the tile
and the dashboard say DEMO-CUSTOMER-GLOBEX, not "Globex Logistics".
"""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.screens import (
    Check,
    SignIn,
    search,
    sign_out,
    star_of,
    star_until_refused,
    tiles,
)
from tests.browser.support import screenshot

GLOBEX_ADMIN = "it-admin@globex.example"
ANNA = "anna@reseller.example"
ANNAS_FAVOURITES = 10  # infra/demo/seeding.py: partner_work
RESELLER = "DEMO-RESELLER-1"
GLOBEX = "DEMO-CUSTOMER-GLOBEX"  # its new group at the reseller is named by its id (see below)
SERVERS = ("CZJ000100", "CZJ000102")  # Globex's, linked to DEMO-RESELLER-2 by the demo


def select_servers(page: Page) -> None:
    """Tick Globex's two servers in My IT Environment."""
    for serial in SERVERS:
        page.get_by_label(f"Select {serial}", exact=True).check()


def row_of(page: Page, serial: str) -> str:
    """The text of a device's row in My IT Environment."""
    return page.get_by_role("row").filter(has=page.get_by_role("link", name=serial)).inner_text()


def test_hpe_link_consent_star_to_25_favorites_dashboard_and_delete_the_group(
    page: Page, sign_in: SignIn, axe: Check
) -> None:
    """R-LNK-1, R-CON-1, R-FAV-2, R-FAV-3, R-FAV-5, R-GRP-2, R-GRP-3, R-LNK-6: the HPE story."""
    sign_in(GLOBEX_ADMIN)
    axe()
    select_servers(page)
    page.locator("#selection-location").fill(RESELLER)
    page.locator("#selection-role").select_option("reseller")
    page.get_by_role("button", name="Link selected", exact=True).click()
    axe()
    for serial in SERVERS:
        assert RESELLER in row_of(page, serial)
    select_servers(page)
    page.get_by_role("button", name="Grant (text").click()
    axe()
    for serial in SERVERS:
        assert "Granted" in row_of(page, serial)
    screenshot(page, "my-it-environment")
    sign_out(page)

    sign_in(ANNA)
    axe()
    search(page, "Globex")
    axe()
    expect(tiles(page)).to_have_count(1)
    globex = tiles(page).first
    star_of(globex).click()
    expect(star_of(globex)).to_have_attribute("aria-pressed", "true")
    page.get_by_role("link", name="My Customers").click()
    axe()
    accepted, refused = star_until_refused(page, axe)

    assert accepted == 25 - ANNAS_FAVOURITES - 1
    expect(refused.get_by_role("alert")).to_contain_text("You already have 25 favourites")

    page.get_by_role("button", name="Favorites Only", exact=True).click()
    axe()
    search(page, "Globex")
    axe()
    expect(tiles(page)).to_have_count(1)
    expect(tiles(page)).to_contain_text(GLOBEX)

    tiles(page).get_by_role("heading").get_by_role("link").click()
    axe()
    dashboard = page.url
    expect(page.get_by_role("heading", level=1)).to_contain_text(GLOBEX)
    devices = page.locator("section[aria-labelledby=devices-heading]")
    for serial in SERVERS:
        expect(devices.get_by_role("link", name=serial)).to_be_visible()
    admins = page.locator("ul.admins")
    expect(admins).to_contain_text(ANNA)
    screenshot(page, "customer-dashboard")

    page.get_by_role("button", name="Delete customer group").click()

    refusal = page.locator("#delete-group").get_by_role("alert")
    expect(refusal).to_contain_text("2 device(s) are still linked to it")
    expect(refusal).to_contain_text("Admins to contact:")
    expect(refusal).to_contain_text(ANNA)
    axe()
    screenshot(page, "customer-group-deletion-refused")
    sign_out(page)

    sign_in(GLOBEX_ADMIN)
    axe()
    select_servers(page)
    page.locator("#selection-role").select_option("reseller")
    page.get_by_role("button", name="Unlink selected").click()
    axe()
    for serial in SERVERS:
        assert RESELLER not in row_of(page, serial)
    sign_out(page)

    sign_in(ANNA)
    axe()
    page.goto(dashboard)
    axe()
    expect(page.locator("section[aria-labelledby=devices-heading]")).to_contain_text(
        "No device of this customer is linked to you."
    )
    page.get_by_role("button", name="Delete customer group").click()

    expect(page).to_have_url(
        f"{page.url.split('/portal/')[0]}/portal/partners/{RESELLER}/customers"
    )
    axe()
    search(page, "Globex")
    axe()
    expect(tiles(page)).to_have_count(0)
