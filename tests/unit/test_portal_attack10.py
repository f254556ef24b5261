"""Defects found by attacking the portal (issue 10), each a test that failed before its fix."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from domain.customer_group import CustomerGroup
from handlers.devices import NewDevice, PartnerChoice
from tests.actors import customer, operator
from tests.unit.access_world import OWN, world
from tests.unit.portal_world import Portal, open_portal


@pytest.fixture
def portal() -> Iterator[Portal]:
    """The access world's portal (tokens are principals' names)."""
    opened = open_portal(world())
    yield opened
    opened.close()


def test_the_language_switch_returns_to_the_page_with_its_query(portal: Portal) -> None:
    portal.browser.sign_in("anna")

    answer = portal.browser.post_form(
        "/portal/language",
        {"locale": "de", "next": "/partners/LOC-1/customers?search=a b&view=all"},
    )
    page = portal.browser.get(answer.headers["location"])

    assert answer.status_code == 303
    assert answer.headers["location"] == "/portal/partners/LOC-1/customers?search=a+b&view=all"
    assert page.status_code == 200


def test_sign_in_returns_to_the_page_asked_for_with_its_query(portal: Portal) -> None:
    answer = portal.browser.post_form(
        "/portal/sign-in", {"token": "anna", "next": "/partners/LOC-1/customers?search=a"}
    )

    assert answer.status_code == 303
    assert answer.headers["location"] == "/portal/partners/LOC-1/customers?search=a"


def test_r_fav_2_a_star_without_javascript_returns_to_the_searched_listing(portal: Portal) -> None:
    portal.browser.sign_in("anna")
    group = CustomerGroup.id_for("LOC-1", "C1")

    answer = portal.browser.post_form(
        f"/portal/partners/LOC-1/customers/{group}/favourite",
        {"favourite": "false", "next": "/partners/LOC-1/customers?search=C"},
    )
    page = portal.browser.get(answer.headers["location"])

    assert answer.headers["location"] == "/portal/partners/LOC-1/customers?search=C"
    assert page.status_code == 200


def test_r_lnk_3_a_form_on_a_later_page_of_my_it_environment_returns_to_that_page(
    portal: Portal,
) -> None:
    portal.browser.sign_in("c1")

    answer = portal.browser.post_form(
        "/portal/customers/C1/environment/links",
        {
            "serials": "SN1",
            "location_id": "LOC-1",
            "next": "/customers/C1/environment?cursor=abc",
        },
    )

    assert answer.status_code == 303
    assert answer.headers["location"] == "/portal/customers/C1/environment?cursor=abc"


def test_r_lnk_1_a_device_link_on_the_dashboard_opens_a_serial_with_a_non_ascii_letter() -> None:
    """Serials are letters or digits, not only ASCII ones; the link is percent-encoded once
    (a server decodes a path once; the test client decodes twice, so the href is compared)."""
    fleet = world()
    fleet.register_devices(
        customer("C1"),
        "C1",
        [NewDevice(serial="SNÄ7", connection="direct_connect")],
        PartnerChoice(location_id="LOC-1"),
    )
    opened = open_portal(fleet)
    try:
        opened.browser.sign_in("anna")
        dashboard = opened.browser.get(f"/portal/partners/LOC-1/customers/{OWN.group}")
        device = opened.browser.get("/portal/partners/LOC-1/devices/SN%C3%847")

        assert 'href="/portal/partners/LOC-1/devices/SN%C3%847"' in dashboard.text
        assert device.status_code == 200
    finally:
        opened.close()


def test_r_par_1_the_operations_link_opens_a_partner_whose_location_id_needs_quoting() -> None:
    fleet = world()
    fleet.register_partner(operator(), "LOC 9", "Partner with a space")
    opened = open_portal(fleet)
    try:
        opened.browser.sign_in("ops")
        listing = opened.browser.get("/portal/operations")
        page = opened.browser.get("/portal/operations/partners/LOC%209")

        assert 'href="/portal/operations/partners/LOC%209"' in listing.text
        assert page.status_code == 200
    finally:
        opened.close()
