"""The portal's own refusals in German (issue 10): a form without its CSRF token, a refused
sign-in, another tenant's page, each shown in the language the browser asks for."""

from __future__ import annotations

import html
from collections.abc import Iterator

import pytest

from handlers.access import Claims
from tests.scenarios import event_count
from tests.unit.access_world import OWN, world
from tests.unit.http_world import PRINCIPALS
from tests.unit.portal_world import Portal, open_portal

GERMAN = {"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"}
STAR = f"/portal/partners/{OWN.loc}/customers/{OWN.group}/favourite"


@pytest.fixture
def portal() -> Iterator[Portal]:
    """The access world's portal, with a token for a person no partner registered."""
    tokens = {**PRINCIPALS, "stranger": Claims("eve@LOC-1", "partner_user", OWN.loc)}
    opened = open_portal(world(), tokens)
    yield opened
    opened.close()


def text_of(page: str) -> str:
    return html.unescape(page)


def test_csrf_a_form_without_its_token_is_refused_in_german_and_records_nothing(
    portal: Portal,
) -> None:
    portal.browser.sign_in("anna")
    before = event_count(portal.fleet)

    answer = portal.browser.post(
        STAR, data={"favourite": "true", "csrf_token": "x" * 43}, headers=GERMAN
    )

    assert answer.status_code == 403
    assert "Dieses Formular ist abgelaufen oder wurde nicht von diesem Portal gesendet." in (
        text_of(answer.text)
    )
    assert event_count(portal.fleet) == before


def test_csrf_a_form_from_another_site_is_refused_in_english_without_a_language(
    portal: Portal,
) -> None:
    portal.browser.sign_in("anna")

    answer = portal.browser.post_form(
        STAR, {"favourite": "true"}, headers={"Origin": "https://evil.example"}
    )

    assert answer.status_code == 403
    assert "This form was sent from another site." in text_of(answer.text)


def test_a_token_the_verifier_refuses_is_shown_in_german_on_the_sign_in_page(
    portal: Portal,
) -> None:
    answer = portal.browser.post_form("/portal/sign-in", {"token": "forged"}, headers=GERMAN)

    assert answer.status_code == 401
    assert "Die Signatur des Tokens ist ungültig." in text_of(answer.text)


def test_r_par_2_a_person_no_partner_registered_is_refused_sign_in_in_german(
    portal: Portal,
) -> None:
    answer = portal.browser.post_form("/portal/sign-in", {"token": "stranger"}, headers=GERMAN)

    assert answer.status_code == 401
    assert (
        f"eve@LOC-1 ist kein unter der Standort-ID '{OWN.loc}' registrierter Benutzer."
        in text_of(answer.text)
    )


def test_r_lnk_1_another_partners_page_is_not_found_in_german(portal: Portal) -> None:
    portal.browser.sign_in("anna")

    answer = portal.browser.get("/portal/partners/LOC-2/customers", headers=GERMAN)

    assert answer.status_code == 404
    assert "Kein Partner mit der Standort-ID 'LOC-2' gefunden." in text_of(answer.text)
    assert 'lang="de"' in answer.text
