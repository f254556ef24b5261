"""Defects found by attacking the portal (issue 10), each a test that failed before its fix."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from domain.customer_group import CustomerGroup
from tests.unit.access_world import world
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
