"""Defects found by attacking the portal (issue 10), each a test that failed before its fix."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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
