"""The portal's operator pages (issue 10), without a browser: partners and their users,
registering a partner and a user, accreditation and certification, and the e2Open intake's
rejected reports with their reasons (R-PAR-1, R-PAR-4, R-HLD-1)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest

from domain import PartnerTenant
from infra.web.pages import operations
from tests.actors import feed
from tests.scenarios import event_count, in_memory_fleet, partner, report
from tests.unit.http_world import PRINCIPALS
from tests.unit.portal_world import Portal, open_portal

PARTNER = "/portal/operations/partners/LOC-1"


@pytest.fixture
def portal() -> Iterator[Portal]:
    """LOC-1 (reseller, with Anna) and LOC-2; batch B1 with one good and two bad reports."""
    fleet = in_memory_fleet()
    partner(fleet, "LOC-1")
    partner(fleet, "LOC-2")
    fleet.receive_e2open_batch(
        feed(),
        "B1",
        [report("PC1"), report("PC8", model=""), report("PC9", location_id="LOC-404")],
    )
    opened = open_portal(fleet, PRINCIPALS)
    yield opened
    opened.close()


def locations(page: str) -> list[str]:
    return re.findall(
        r'<th scope="row"><a href="/portal/operations/partners/[^"]+">([^<]+)</a>', page
    )


def test_r_par_1_without_a_session_operations_send_to_sign_in(portal: Portal) -> None:
    answer = portal.browser.get("/portal/operations")

    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/portal/sign-in?next=%2Foperations")


def test_r_par_1_an_operator_sees_every_partner_with_its_type_and_users(portal: Portal) -> None:
    portal.browser.sign_in("ops")

    page = portal.browser.get("/portal/operations")

    assert page.status_code == 200
    assert locations(page.text) == ["LOC-1", "LOC-2"]
    assert page.text.count("<h1>") == 1
    assert 'aria-current="page"' in page.text


def test_r_par_1_operations_page_through_partners(
    portal: Portal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(operations, "PAGE_SIZE", 1)
    portal.browser.sign_in("ops")

    first = portal.browser.get("/portal/operations")
    link = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert link is not None
    second = portal.browser.get(link.group(1).replace("&amp;", "&"))

    assert (locations(first.text), locations(second.text)) == (["LOC-1"], ["LOC-2"])
    assert 'rel="next"' not in second.text


def test_r_par_1_registering_a_partner_and_its_first_user_makes_that_user_its_admin(
    portal: Portal,
) -> None:
    portal.browser.sign_in("ops")

    registered = portal.browser.post_form(
        "/portal/operations/partners", {"location_id": "LOC-7", "name": "Seven GmbH"}
    )
    added = portal.browser.post_form(
        "/portal/operations/partners/LOC-7/users", {"passport_id": "sieben@loc7.example"}
    )
    page = portal.browser.get("/portal/operations/partners/LOC-7")

    assert registered.status_code == 303
    assert registered.headers["location"] == "/portal/operations/partners/LOC-7"
    assert added.status_code == 303
    assert "Seven GmbH" in page.text
    assert re.search(r"<th scope=\"row\">sieben@loc7.example</th><td>admin</td>", page.text)
    assert portal.fleet.partner("LOC-7").users == {"sieben@loc7.example": "admin"}


def test_r_par_1_r_par_4_accreditation_then_certification_creates_the_holding_tenant(
    portal: Portal,
) -> None:
    portal.browser.sign_in("ops")
    before = portal.browser.get(PARTNER)
    assert 'name="csdp_account"' in before.text

    accredited = portal.browser.post_form(f"{PARTNER}/accreditation", {"csdp_account": "CSDP-42"})
    certified = portal.browser.post_form(
        f"{PARTNER}/certifications", {"programme": "service_delivery"}
    )
    page = portal.browser.get(PARTNER)

    assert (accredited.status_code, certified.status_code) == (303, 303)
    assert "service partner (accredited" in page.text
    assert "HP Premium+: service delivery" in page.text
    assert 'name="csdp_account"' not in page.text
    assert "CSDP-42" not in page.text  # the account is not shown back
    tenant = portal.fleet.partner("LOC-1")
    assert tenant.holding_tenant_id == PartnerTenant.holding_tenant_id_for("LOC-1")


def test_r_par_4_a_refused_certification_is_shown_and_records_nothing(portal: Portal) -> None:
    """R-PAR-4: a reseller cannot be certified for service delivery."""
    portal.browser.sign_in("ops")
    before = event_count(portal.fleet)

    answer = portal.browser.post_form(
        f"{PARTNER}/certifications", {"programme": "service_delivery"}
    )

    assert answer.status_code == 409
    assert 'role="alert"' in answer.text
    assert "service_delivery" in html.unescape(answer.text)
    assert event_count(portal.fleet) == before


def test_r_par_1_an_unknown_partner_is_a_404_page(portal: Portal) -> None:
    portal.browser.sign_in("ops")

    page = portal.browser.get("/portal/operations/partners/LOC-404")

    assert page.status_code == 404
    assert "LOC-404" in html.unescape(page.text)


def test_r_par_1_an_unknown_partner_is_named_in_german_for_a_german_browser(
    portal: Portal,
) -> None:
    """Issue 10: the read model's "not found" is a Msg, shown from the German catalog."""
    portal.browser.sign_in("ops")

    page = portal.browser.get(
        "/portal/operations/partners/LOC-404", headers={"Accept-Language": "de-DE,de;q=0.9"}
    )

    assert page.status_code == 404
    assert "Kein Partner mit der Standort-ID 'LOC-404'." in html.unescape(page.text)


@pytest.mark.parametrize(
    ("path", "form"),
    [
        ("/portal/operations/partners", {"location_id": "LOC-8", "name": "Eight"}),
        (f"{PARTNER}/users", {"passport_id": "x@loc1.example"}),
        (f"{PARTNER}/accreditation", {"csdp_account": "CSDP-1"}),
        (f"{PARTNER}/certifications", {"programme": "resell_view_monitor"}),
    ],
    ids=["register", "add user", "accredit", "certify"],
)
def test_csrf_each_operations_form_without_the_token_is_refused_and_records_nothing(
    portal: Portal, path: str, form: dict[str, str]
) -> None:
    portal.browser.sign_in("ops")
    before = event_count(portal.fleet)

    answer = portal.browser.post(path, data={**form, "csrf_token": "z" * 43})

    assert answer.status_code == 403
    assert event_count(portal.fleet) == before


@pytest.mark.parametrize("who", ["auditor", "anna", "c1"])
def test_r_par_1_no_one_but_operations_opens_or_posts_the_operator_pages(
    portal: Portal, who: str
) -> None:
    portal.browser.sign_in(who)
    before = event_count(portal.fleet)

    pages = [
        portal.browser.get(path)
        for path in ("/portal/operations", PARTNER, "/portal/operations/rejected-reports")
    ]
    posted = portal.browser.post_form(
        "/portal/operations/partners", {"location_id": "LOC-9", "name": "Nine"}
    )

    assert [p.status_code for p in pages] == [403, 403, 403]
    assert posted.status_code == 403
    assert all("LOC-2" not in p.text for p in pages)
    assert event_count(portal.fleet) == before


def test_r_hld_1_operations_read_the_rejected_reports_with_their_reasons(portal: Portal) -> None:
    portal.browser.sign_in("ops")

    page = portal.browser.get("/portal/operations/rejected-reports")
    other_batch = portal.browser.get(
        "/portal/operations/rejected-reports", params={"batch_id": "B2"}
    )

    text = html.unescape(page.text)
    assert page.status_code == 200
    assert text.count('<tr class="rejected-report">') == 2
    assert "PC8" in text
    assert "malformed report: model" in text
    assert "unknown partner Location ID LOC-404" in text
    assert "PC1" not in text
    assert "No rejected report." in other_batch.text


def test_r_hld_1_rejected_reports_are_paged(
    portal: Portal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(operations, "PAGE_SIZE", 1)
    portal.browser.sign_in("ops")

    first = portal.browser.get("/portal/operations/rejected-reports", params={"batch_id": "B1"})
    link = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert link is not None
    second = portal.browser.get(link.group(1).replace("&amp;", "&"))

    assert "PC8" in first.text
    assert "PC9" in second.text
    assert 'rel="next"' not in second.text
