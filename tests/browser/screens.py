"""How the stories find their way around the portal's pages: the customer tiles and their
stars, signing out, and starring until the 26th favourite is refused (R-FAV-2)."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Locator, Page, expect

Check = Callable[[], None]
SignIn = Callable[[str], None]


def tiles(page: Page) -> Locator:
    """The customer tiles shown."""
    return page.locator("#customer-list li.tile")


def star_of(tile: Locator) -> Locator:
    """A tile's star button."""
    return tile.locator("form.star button")


def unstarred(page: Page) -> Locator:
    """The tiles whose customer is not a favourite."""
    return tiles(page).filter(has=page.locator("form.star button[aria-pressed=false]"))


def tile_id(tile: Locator) -> str:
    """The element id of a tile (`tile-<group id>`)."""
    found = tile.get_attribute("id")
    assert found is not None
    return found


def star_until_refused(page: Page, axe: Check) -> tuple[int, Locator]:
    """Star (mouse) one customer after another, going to the next page of the listing (and
    checking it) when this one has none left, until a star is refused: how many were
    accepted, and the tile of the refused one."""
    accepted = 0
    while True:
        if unstarred(page).count() == 0:
            page.locator("#customer-list a[rel=next]").click()  # in any language
            axe()
            continue
        tile = page.locator(f"#{tile_id(unstarred(page).first)}")
        star_of(tile).click()
        pressed = tile.locator("form.star button[aria-pressed=true]")
        expect(pressed.or_(tile.get_by_role("alert"))).to_be_visible()
        if pressed.count() == 0:
            return accepted, tile
        accepted += 1


def search(page: Page, text: str) -> None:
    """Search the customers shown (the filter form's Apply)."""
    page.get_by_label("Search customers").fill(text)
    page.get_by_role("button", name="Apply").click()


def sign_out(page: Page) -> None:
    """Sign out with the header's button; returns on the sign-in page."""
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", level=1, name="Sign in")).to_be_visible()
