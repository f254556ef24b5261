"""The end user's My PCs page (issue 10), without a browser: its PCs, the self-service
pop-ups of their alerts (R-ALR-1), submitting a repair case for its own PC only, routed by
the policy (R-ALR-2), and nothing of an alert told to the partner only (R-ALR-4)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from handlers import PolicyRunner
from handlers.access import Claims
from tests.scenarios import OPS, event_count
from tests.unit.access_world import OTHER, OWN, world
from tests.unit.http_world import PRINCIPALS
from tests.unit.portal_world import Portal, open_portal

MY_PCS = "/portal/customers/C1/my-pcs"
# PD1 (in C1's dashboard, self-service on) and PT1 (LOC-1's holding tenant) have no
# customer recorded; PCC1 is C1's; PCC2 is C2's, named by the token but not the user's.
TOKENS = {
    **PRINCIPALS,
    "pat": Claims("pat@C1", "end_user", OWN.customer, ("PD1", "PT1", "PCC1", OTHER.s("PCC"))),
}


@pytest.fixture
def portal() -> Iterator[Portal]:
    """The access world with alerts on PD1, PT1 and PCC2, decided by the policies."""
    fleet = world()
    for serial in ("PD1", "PT1", OTHER.s("PCC")):
        fleet.raise_alert(OPS, serial, "AL-7", "critical", f"Battery failing on {serial}")
    PolicyRunner(fleet).catch_up()
    opened = open_portal(fleet, TOKENS)
    yield opened
    opened.close()


def section(html: str, serial: str) -> str:
    """The part of My PCs about one PC."""
    found = re.search(rf">PC {re.escape(serial)}[ <]", html)
    assert found is not None, serial
    return html[found.start() : html.find("</section>", found.start())]


def test_r_alr_1_without_a_session_my_pcs_sends_the_browser_to_sign_in(portal: Portal) -> None:
    answer = portal.browser.get(MY_PCS)

    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/portal/sign-in")


def test_r_alr_1_the_end_user_sees_its_pcs_and_their_pop_ups(portal: Portal) -> None:
    portal.browser.sign_in("pat")

    page = portal.browser.get(MY_PCS)

    assert page.status_code == 200
    assert page.text.count("<h1>") == 1
    assert "Battery failing on PD1" in section(page.text, "PD1")
    assert "Battery failing on PT1" in section(page.text, "PT1")
    assert "Submit a repair case for AL-7" in section(page.text, "PD1")
    assert "No alerts for this PC." in section(page.text, "PCC1")  # told to its partner


def test_r_alr_1_a_pc_of_another_customer_named_by_the_token_is_not_shown(
    portal: Portal,
) -> None:
    portal.browser.sign_in("pat")

    page = portal.browser.get(MY_PCS)

    assert OTHER.s("PCC") not in page.text


def test_r_alr_2_submitting_a_repair_case_from_a_pop_up_routes_it(portal: Portal) -> None:
    portal.browser.sign_in("pat")

    answer = portal.browser.post_form(f"{MY_PCS}/PD1/repair-cases", {"alert_id": "AL-7"})
    PolicyRunner(portal.fleet).catch_up()
    portal.views.catch_up()
    page = portal.browser.get(MY_PCS)

    assert answer.status_code == 303
    assert answer.headers["location"] == MY_PCS
    assert portal.fleet.device("PD1").alerts["AL-7"].repair_case_id == "CASE-AL-7"
    pd1 = section(page.text, "PD1")
    assert "Case CASE-AL-7 submitted" in pd1
    assert "with HP customer support" in pd1  # LOC-1 is a reseller (R-ALR-2)
    assert "Submit a repair case" not in pd1


def test_r_alr_1_a_second_case_for_the_same_alert_is_refused_on_the_page(portal: Portal) -> None:
    portal.browser.sign_in("pat")
    portal.browser.post_form(f"{MY_PCS}/PT1/repair-cases", {"alert_id": "AL-7"})
    before = event_count(portal.fleet)

    answer = portal.browser.post_form(f"{MY_PCS}/PT1/repair-cases", {"alert_id": "AL-7"})

    assert answer.status_code == 409
    assert 'role="alert"' in answer.text
    assert "already has repair case CASE-AL-7" in answer.text
    assert "<h1>My PCs</h1>" in answer.text
    assert event_count(portal.fleet) == before


def test_r_alr_1_a_case_for_a_pc_the_end_user_does_not_work_on_is_not_found(
    portal: Portal,
) -> None:
    portal.browser.sign_in("eu1")  # works on PCC1 only
    before = event_count(portal.fleet)

    answer = portal.browser.post_form(f"{MY_PCS}/PD1/repair-cases", {"alert_id": "AL-7"})
    other = portal.browser.post_form(
        f"{MY_PCS}/{OTHER.s('PCC')}/repair-cases", {"alert_id": "AL-7"}
    )

    assert (answer.status_code, other.status_code) == (404, 404)
    assert event_count(portal.fleet) == before


def test_r_alr_1_another_customers_my_pcs_is_not_found(portal: Portal) -> None:
    portal.browser.sign_in("pat")
    before = event_count(portal.fleet)

    page = portal.browser.get(f"/portal/customers/{OTHER.customer}/my-pcs")
    posted = portal.browser.post_form(
        f"/portal/customers/{OTHER.customer}/my-pcs/PD1/repair-cases", {"alert_id": "AL-7"}
    )

    assert (page.status_code, posted.status_code) == (404, 404)
    assert event_count(portal.fleet) == before


def test_r_par_2_a_customer_admin_or_partner_does_not_open_my_pcs(portal: Portal) -> None:
    portal.browser.sign_in("c1")
    admin = portal.browser.get(MY_PCS)
    portal.browser.sign_in("anna")
    partner = portal.browser.get(MY_PCS)

    assert (admin.status_code, partner.status_code) == (403, 403)


def test_r_par_2_an_end_user_does_not_open_my_it_environment(portal: Portal) -> None:
    portal.browser.sign_in("pat")

    page = portal.browser.get("/portal/customers/C1/environment")

    assert page.status_code == 403


def test_csrf_a_repair_case_without_the_token_is_refused_and_records_nothing(
    portal: Portal,
) -> None:
    portal.browser.sign_in("pat")
    before = event_count(portal.fleet)

    answer = portal.browser.post(
        f"{MY_PCS}/PD1/repair-cases", data={"alert_id": "AL-7", "csrf_token": "x" * 43}
    )

    assert answer.status_code == 403
    assert event_count(portal.fleet) == before
