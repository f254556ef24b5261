"""All Customers / Favorites Only clicked through in Chromium (R-FAV-1…5), on the demo.

Each story signs in as a different demo partner user, so they share one server:
- fay (DEMO-RESELLER-2 user, no favourite): keyboard only, star and unstar;
- anna (DEMO-RESELLER-1 admin, 10 favourites): the 26th star is refused next to its tile;
- erik (DEMO-RESELLER-2 admin, 2 favourites): Favorites Only, remembered, searched in;
- dana (DEMO-SERVICE-1 user, 2 favourites): the 26th star refused in German;
- ben (DEMO-RESELLER-1 user, Favorites Only by default): all of it without JavaScript.
"""

from __future__ import annotations

import re
from uuid import uuid4

from playwright.sync_api import Page, expect

from domain.base import Cause
from domain.passport import MAX_FAVOURITES, FavouriteError, Passport
from infra.web.i18n import refusal_text
from tests.browser.screens import (
    Check,
    SignIn,
    search,
    star_of,
    star_until_refused,
    tile_id,
    tiles,
    unstarred,
)
from tests.browser.support import DemoServer, screenshot, sign_in_as

FAVOURITES_FULL = (
    "You already have 25 favourites, the most allowed; remove one before adding another."
)
ERIKS_FAVOURITES = 2  # infra/demo/seeding.py: partner_work
BENS_FAVOURITES = 3
MAX_TABS = 200
ANNAS_FAVOURITES = 10  # infra/demo/seeding.py: partner_work


def tab_to(page: Page, selector: str) -> None:
    """Press Tab until the focused element matches `selector` (at most MAX_TABS times)."""
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement?.matches(s) ?? false", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


def focused_is(page: Page, selector: str) -> bool:
    """Whether the focused element matches `selector`."""
    return bool(page.evaluate("s => document.activeElement?.matches(s) ?? false", selector))


def test_r_fav_2_keyboard_only_star_and_unstar_a_customer(
    page: Page, sign_in: SignIn, axe: Check
) -> None:
    """R-FAV-2, R-FAV-3: with Tab, Enter and Space only (no mouse) fay stars her first
    customer, Favorites Only becomes available, and she unstars it again."""
    sign_in("fay@reseller2.example")
    axe()
    favorites_only = page.get_by_role("button", name="Favorites Only", exact=True)
    expect(favorites_only).to_be_disabled()
    first = tiles(page).first
    star = f"#{tile_id(first)} form.star button"

    tab_to(page, star)
    page.keyboard.press("Enter")

    expect(page.locator(star)).to_have_attribute("aria-pressed", "true")
    expect(favorites_only).to_be_enabled()
    assert focused_is(page, star), "focus left the star after starring it"
    axe()
    screenshot(page, "all-customers-starred")

    page.keyboard.press("Space")

    expect(page.locator(star)).to_have_attribute("aria-pressed", "false")
    expect(favorites_only).to_be_disabled()
    assert focused_is(page, star), "focus left the star after unstarring it"


def test_r_fav_2_the_26th_star_is_refused_next_to_its_tile(
    page: Page, sign_in: SignIn, axe: Check
) -> None:
    """R-FAV-2: anna stars customers up to 25; the 26th is refused with the domain's
    message inside that customer's tile, and the star stays off."""
    sign_in("anna@reseller.example")
    axe()
    accepted, refused = star_until_refused(page, axe)

    assert accepted == 25 - ANNAS_FAVOURITES
    alert = refused.get_by_role("alert")
    expect(alert).to_contain_text(FAVOURITES_FULL)
    expect(alert).to_contain_text("R-FAV-2")
    expect(star_of(refused)).to_have_attribute("aria-pressed", "false")
    axe()
    screenshot(page, "all-customers-26th-refused")


def test_r_fav_3_r_fav_4_r_fav_5_favorites_only_is_remembered_and_searched_in(
    page: Page, sign_in: SignIn, axe: Check
) -> None:
    """R-FAV-3: erik stars a third customer and switches to Favorites Only, which shows his
    three favourites only. R-FAV-4: it is his default when he comes back. R-FAV-5: a search
    applies to the favourites shown (a customer that is no favourite is not found)."""
    sign_in("erik@reseller2.example")
    axe()
    third = page.locator(f"#{tile_id(unstarred(page).first)}")
    third_name = third.get_by_role("heading").inner_text()
    other_name = unstarred(page).nth(1).get_by_role("heading").inner_text()
    star_of(third).click()
    expect(star_of(third)).to_have_attribute("aria-pressed", "true")

    page.get_by_role("button", name="Favorites Only", exact=True).click()

    axe()
    expect(page.get_by_role("heading", level=2, name="Favorites Only")).to_be_visible()
    expect(tiles(page)).to_have_count(ERIKS_FAVOURITES + 1)
    expect(unstarred(page)).to_have_count(0)
    screenshot(page, "favorites-only")

    page.reload()

    axe()
    expect(page.get_by_role("button", name="Favorites Only", exact=True)).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(tiles(page)).to_have_count(ERIKS_FAVOURITES + 1)

    search(page, third_name)

    axe()
    expect(page.locator("#messages")).to_be_empty()
    expect(tiles(page)).to_have_count(1)
    expect(tiles(page).get_by_role("heading")).to_have_text(third_name)
    expect(page).to_have_url(re.compile(r"search="))

    search(page, other_name)

    axe()
    expect(tiles(page)).to_have_count(0)
    expect(page.locator("#customer-list")).to_contain_text("No customer matches.")


def test_r_fav_2_the_26th_star_is_refused_in_german(
    page: Page, sign_in: SignIn, axe: Check
) -> None:
    """R-FAV-2 in German: dana switches the page to Deutsch, stars up to 25 and sees the
    refusal of the 26th next to its tile in the German of the portal's catalog."""
    german = refusal_text(favourites_full(), "de")
    assert german != refusal_text(favourites_full(), "en"), (
        "The German catalog (infra/web/locales/de) does not translate the R-FAV-2 refusal."
    )
    sign_in("dana@service.example")
    axe()

    page.get_by_label("Language").select_option("de")
    page.locator("form[action$='/language'] button[type=submit]").click()

    expect(page.locator("html")).to_have_attribute("lang", "de")
    axe()
    _, refused = star_until_refused(page, axe)
    alert = refused.get_by_role("alert")
    expect(alert).to_contain_text(german)
    expect(alert).not_to_contain_text(FAVOURITES_FULL)
    axe()
    screenshot(page, "all-customers-26th-refused-de")


def favourites_full() -> FavouriteError:
    """The domain's refusal of a 26th favourite (R-FAV-2), as the domain raises it."""
    passport = Passport.open(Cause("test", "browser"), "someone@example.com")
    passport.partner_location_id = "LOC-1"
    passport.favourites = [uuid4() for _ in range(MAX_FAVOURITES)]
    try:
        passport.add_favourite(Cause("test", "browser"), uuid4(), "LOC-1")
    except FavouriteError as refused:
        return refused
    raise AssertionError("The domain accepted a 26th favourite.")


def test_r_fav_2_r_fav_4_without_javascript_the_view_switch_and_the_star_are_plain_forms(
    no_script: Page, server: DemoServer
) -> None:
    """R-FAV-2, R-FAV-4 with JavaScript off: ben signs in, switches from his default
    Favorites Only to All Customers, stars a customer and unstars it, each a plain form
    that comes back to the listing (POST, 303, GET)."""
    page = no_script
    sign_in_as(page, server.url, "ben@reseller.example", lambda: None)
    expect(page.get_by_role("heading", level=2, name="Favorites Only")).to_be_visible()
    expect(tiles(page)).to_have_count(BENS_FAVOURITES)

    page.get_by_role("button", name="All Customers", exact=True).click()

    expect(page.get_by_role("heading", level=2, name="All Customers")).to_be_visible()
    tile = page.locator(f"#{tile_id(unstarred(page).first)}")
    star_of(tile).click()
    expect(star_of(tile)).to_have_attribute("aria-pressed", "true")
    expect(page).to_have_url(re.compile(r"/portal/partners/DEMO-RESELLER-1/customers$"))
    star_of(tile).click()
    expect(star_of(tile)).to_have_attribute("aria-pressed", "false")
