"""The portal's All Customers / Favorites Only page (issue 10), without a browser: the
markup a partner gets, the star with and without htmx, the 26th star refused next to its
tile, the view switch remembered as the default, filters, and tenant isolation."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from domain import CustomerGroup
from handlers.access import Claims
from handlers.devices import PartnerChoice
from tests.actors import customer, partner_user
from tests.scenarios import event_count, in_memory_fleet, partner, servers
from tests.unit.access_world import OTHER, OWN, world
from tests.unit.portal_world import Portal, open_portal

LISTING = "/portal/partners/LOC-1/customers"


@pytest.fixture
def portal() -> Iterator[Portal]:
    """The access world's portal."""
    opened = open_portal(world())
    yield opened
    opened.close()


@pytest.fixture
def many() -> Iterator[Portal]:
    """LOC-1 with 30 customers (C00 … C29), one server each; Anna is its admin."""
    fleet = in_memory_fleet()
    partner(fleet, "LOC-1")
    for n in range(30):
        fleet.register_devices(
            customer(f"C{n:02}"),
            f"C{n:02}",
            servers(f"S{n:02}"),
            PartnerChoice(location_id="LOC-1"),
            customer_name=f"Customer {n:02}",
        )
    tokens = {"anna": Claims("anna@LOC-1", "partner_user", "LOC-1")}
    opened = open_portal(fleet, tokens)
    yield opened
    opened.close()


def group(n: int) -> str:
    return str(CustomerGroup.id_for("LOC-1", f"C{n:02}"))


def tiles(html: str) -> list[str]:
    return re.findall(r'<li class="tile" id="tile-([0-9a-f-]+)"', html)


def test_r_par_2_without_a_session_the_page_sends_the_browser_to_sign_in(portal: Portal) -> None:
    answer = portal.browser.get(LISTING)

    assert answer.status_code == 303
    assert answer.headers["location"] == "/portal/sign-in?next=%2Fpartners%2FLOC-1%2Fcustomers"


def test_r_fav_1_a_partner_user_sees_customer_tiles_not_devices(portal: Portal) -> None:
    portal.browser.sign_in("anna")

    page = portal.browser.get(LISTING)

    assert page.status_code == 200
    assert str(OWN.group) in tiles(page.text)
    assert str(OTHER.group) not in page.text
    assert OWN.s("S") not in page.text  # devices are not listed, customers are
    assert "<main" in page.text
    assert "<h1>" in page.text


def test_r_lnk_1_another_partners_customers_are_not_found(portal: Portal) -> None:
    portal.browser.sign_in("anna")

    page = portal.browser.get(f"/portal/partners/{OTHER.loc}/customers")

    assert page.status_code == 404
    assert OTHER.customer not in page.text
    assert 'role="alert"' in page.text


def test_r_lnk_1_a_star_on_another_partners_group_without_javascript_is_not_found(
    portal: Portal,
) -> None:
    """Session 21: without htmx, a star whose group is not on the page (another partner's,
    or one deleted meanwhile) answered the whole list with 409 and no message at all: the
    refusal waited for a tile that is never shown. Now it is the refusal page, 404."""
    portal.browser.sign_in("anna")
    before = event_count(portal.fleet)

    answer = portal.browser.post_form(f"{LISTING}/{OTHER.group}/favourite", {"favourite": "true"})

    assert answer.status_code == 404
    assert 'role="alert"' in answer.text
    assert f"No customer group {OTHER.group}" in answer.text
    assert OTHER.customer not in answer.text
    assert event_count(portal.fleet) == before


def test_r_fav_2_a_star_without_javascript_posts_and_comes_back(many: Portal) -> None:
    many.browser.sign_in("anna")

    answer = many.browser.post_form(f"{LISTING}/{group(3)}/favourite", {"favourite": "true"})

    assert answer.status_code == 303
    assert answer.headers["location"] == LISTING
    page = many.browser.get(LISTING)
    assert f'id="tile-{group(3)}"' in page.text
    tile = page.text.split(f'id="tile-{group(3)}"')[1].split("</li>")[0]
    assert 'aria-pressed="true"' in tile


def test_r_fav_2_the_26th_star_is_refused_next_to_its_tile_and_records_nothing(
    many: Portal,
) -> None:
    anna = partner_user(many.fleet, "LOC-1", "anna@LOC-1")
    for n in range(25):
        many.fleet.add_favourite(anna, CustomerGroup.id_for("LOC-1", f"C{n:02}"))
    many.browser.sign_in("anna")
    before = event_count(many.fleet)

    answer = many.browser.post_form(
        f"{LISTING}/{group(27)}/favourite", {"favourite": "true"}, htmx=True
    )

    assert answer.status_code == 409
    assert answer.text.startswith(f'<li class="tile" id="tile-{group(27)}"')
    assert 'role="alert"' in answer.text
    assert "25" in answer.text
    assert "R-FAV-2" in answer.text
    assert event_count(many.fleet) == before


def test_r_fav_3_favorites_only_is_unavailable_until_a_star_then_offered_out_of_band(
    many: Portal,
) -> None:
    many.browser.sign_in("anna")
    page = many.browser.get(LISTING)
    switch = page.text.split('id="view-switch"')[1].split("</form>")[0]
    assert re.search(r'value="favorites_only"[^>]*disabled', switch)

    answer = many.browser.post_form(
        f"{LISTING}/{group(1)}/favourite", {"favourite": "true"}, htmx=True
    )

    assert answer.status_code == 200
    oob = answer.text.split('id="view-switch"')[1].split("</form>")[0]
    assert 'hx-swap-oob="true"' in oob
    assert not re.search(r'value="favorites_only"[^>]*disabled', oob)


def test_r_fav_4_the_view_chosen_is_remembered_as_the_default(many: Portal) -> None:
    anna = partner_user(many.fleet, "LOC-1", "anna@LOC-1")
    many.fleet.add_favourite(anna, CustomerGroup.id_for("LOC-1", "C05"))
    many.browser.sign_in("anna")

    chosen = many.browser.post_form(f"{LISTING}/view", {"view": "favorites_only"})
    page = many.browser.get(LISTING)

    assert chosen.status_code == 303
    assert many.fleet.passport("anna@LOC-1").default_view == "favorites_only"
    assert tiles(page.text) == [group(5)]


def test_r_fav_5_search_applies_to_the_set_shown_and_htmx_gets_only_the_list(
    many: Portal,
) -> None:
    many.browser.sign_in("anna")

    full = many.browser.get(LISTING, params={"search": "customer 1"})
    partial = many.browser.get(
        LISTING,
        params={"search": "customer 1"},
        headers={"HX-Request": "true", "HX-Target": "customer-list"},
    )

    expected = [group(n) for n in range(10, 20)]
    assert tiles(full.text) == expected
    assert tiles(partial.text) == expected
    assert partial.text.startswith('<section id="customer-list"')


def test_r_fav_5_the_filter_form_as_a_browser_sends_it_searches_all_connections(
    many: Portal,
) -> None:
    """The form sends `connection=` for "All connections" (found in Chromium: it was 422)."""
    many.browser.sign_in("anna")

    answer = many.browser.get(LISTING, params={"search": "customer 2", "connection": ""})

    assert answer.status_code == 200
    assert tiles(answer.text) == [group(n) for n in range(20, 30)]


def test_keyset_paging_follows_the_next_link_and_a_forged_cursor_is_refused(many: Portal) -> None:
    many.browser.sign_in("anna")

    first = many.browser.get(LISTING)
    link = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert link is not None
    second = many.browser.get(link.group(1).replace("&amp;", "&"))
    forged = many.browser.get(LISTING, params={"cursor": "not-a-cursor"})

    assert tiles(first.text) == [group(n) for n in range(24)]
    assert tiles(second.text) == [group(n) for n in range(24, 30)]
    assert forged.status_code == 400


def test_csrf_a_star_without_the_token_is_refused_and_records_nothing(many: Portal) -> None:
    many.browser.sign_in("anna")
    before = event_count(many.fleet)

    answer = many.browser.post(
        f"{LISTING}/{group(1)}/favourite", data={"favourite": "true", "csrf_token": "x" * 43}
    )
    cross_site = many.browser.post_form(
        f"{LISTING}/{group(1)}/favourite",
        {"favourite": "true"},
        headers={"Origin": "https://evil.example"},
    )

    assert (answer.status_code, cross_site.status_code) == (403, 403)
    assert event_count(many.fleet) == before


def test_r_svc_1_service_events_on_tiles_for_service_partners_only(portal: Portal) -> None:
    portal.browser.sign_in("anna")  # LOC-1 is a reseller in the access world

    page = portal.browser.get(LISTING)

    assert "service-events" not in page.text


def test_the_page_is_english_or_german_by_accept_language_or_the_switch(many: Portal) -> None:
    many.browser.sign_in("anna")

    german = many.browser.get(LISTING, headers={"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"})
    switched = many.browser.post_form("/portal/language", {"locale": "en", "next": "/"})
    english = many.browser.get(LISTING, headers={"Accept-Language": "de"})

    assert '<html lang="de">' in german.text
    assert "Alle Kunden" in german.text
    assert switched.status_code == 303
    assert '<html lang="en">' in english.text
    assert "All Customers" in english.text
