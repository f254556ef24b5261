"""The portal's CSDP queue page (issue 10): a service partner's repair cases (R-ALR-2) and
the alerts told to the partner only (R-ALR-4), and who may open it (R-SVC-1)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from handlers import PolicyRunner
from handlers.access import Claims
from tests.actors import end_user, partner_user
from tests.unit.http_holding_world import OPS, SERVICE_LOC, TOKENS, premium_fleet
from tests.unit.portal_world import Portal, open_portal

PAGE = f"/portal/partners/{SERVICE_LOC}/csdp-queue"


@pytest.fixture
def portal() -> Iterator[Portal]:
    """Service partner LOC-2 (Otto) with SP1 and SP2: SP1's alert became case K9 in its
    CSDP queue; SP2 sits in a dashboard with self-service notifications off, so its alert
    A2 was told to the partner only. Reseller LOC-1 (Anna) besides."""
    fleet = premium_fleet(pcs=("PC1",), service_pcs=("SP1", "SP2"))
    otto = partner_user(fleet, SERVICE_LOC, "otto@LOC-2")
    board = fleet.create_customer_dashboard(otto, SERVICE_LOC, "C2", "Globex", "4711")
    tenant = fleet.partner(SERVICE_LOC).holding_tenant_id
    assert tenant is not None
    fleet.transfer_devices(otto, SERVICE_LOC, ["SP2"], tenant, board, "T1")
    fleet.switch_self_service_notifications(otto, SERVICE_LOC, board, False)
    fleet.raise_alert(OPS, "SP1", "A9", "critical", "Battery of SP1")
    fleet.submit_repair_case(end_user("C2", ["SP1"]), "SP1", "A9", "K9")
    fleet.raise_alert(OPS, "SP2", "A2", "warning", "Fan of SP2")
    PolicyRunner(fleet).catch_up()
    opened = open_portal(
        fleet, TOKENS | {"globex": Claims("it@globex.example", "customer_admin", "C2")}
    )
    yield opened
    opened.close()


def test_r_alr_2_without_a_session_the_page_sends_the_browser_to_sign_in(portal: Portal) -> None:
    answer = portal.browser.get(PAGE)

    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/portal/sign-in?next=")


def test_r_alr_2_the_service_partner_sees_the_cases_in_its_csdp_queue(portal: Portal) -> None:
    portal.browser.sign_in("otto")

    page = portal.browser.get(PAGE)

    assert page.status_code == 200
    cases = page.text.split('<section id="cases"')[1].split("</section>", maxsplit=1)[0]
    assert '<th scope="row">K9</th>' in cases
    assert "<td>SP1</td>" in cases
    assert "Self-service (end user)" in cases
    assert page.text.count("<h1>") == 1


def test_r_alr_4_an_alert_with_self_service_off_reaches_the_partner_only(portal: Portal) -> None:
    portal.browser.sign_in("otto")

    page = portal.browser.get(PAGE)

    alerts = page.text.split('<section id="alerts"')[1].split("</section>", maxsplit=1)[0]
    assert '<th scope="row">A2</th>' in alerts
    assert "<td>SP2</td>" in alerts
    assert "R-ALR-4" in alerts
    assert "A9" not in alerts  # SP1's alert went to its end user, not to the partner


def test_r_svc_1_a_reseller_may_not_open_a_csdp_queue(portal: Portal) -> None:
    portal.browser.sign_in("anna")

    page = portal.browser.get("/portal/partners/LOC-1/csdp-queue")

    assert page.status_code == 403
    assert "R-SVC-1" in page.text


def test_r_alr_2_another_partners_csdp_queue_is_not_found(portal: Portal) -> None:
    portal.browser.sign_in("anna")

    page = portal.browser.get(PAGE)

    assert page.status_code == 404
    assert "K9" not in page.text


def test_r_par_2_a_customer_may_not_open_a_csdp_queue(portal: Portal) -> None:
    portal.browser.sign_in("globex")

    page = portal.browser.get(PAGE)

    assert page.status_code == 403
    assert "K9" not in page.text


def test_r_alr_2_the_queue_is_keyset_paged_past_its_first_page(portal: Portal) -> None:
    """R-ALR-2: a queue longer than a page links to the rest; nothing is shown twice."""
    fleet = portal.fleet
    user = end_user("C2", ["SP1"])
    for n in range(55):
        fleet.raise_alert(OPS, "SP1", f"B{n:02}", "warning", "Disk")
        fleet.submit_repair_case(user, "SP1", f"B{n:02}", f"L{n:02}")
    PolicyRunner(fleet).catch_up()
    portal.views.catch_up()
    portal.browser.sign_in("otto")

    first = portal.browser.get(PAGE).text
    link = _next(first)
    second = portal.browser.get(link).text

    ids = _case_ids(first) + _case_ids(second)
    assert len(_case_ids(first)) == 50
    assert sorted(ids) == sorted(["K9", *(f"L{n:02}" for n in range(55))])


def _next(html: str) -> str:
    found = re.findall(r'href="([^"]+)#cases" rel="next"', html)
    assert found
    return str(found[0]).replace("&amp;", "&")


def _case_ids(html: str) -> list[str]:
    cases = html.split('<section id="cases"')[1].split("</section>", maxsplit=1)[0]
    return re.findall(r'<th scope="row">([^<]+)</th>', cases)


@pytest.fixture
def reseller() -> Iterator[Portal]:
    """Reseller LOC-1 (Anna, HP Premium) with PC1 in its dashboard for C1, self-service
    notifications off, so PC1's alert A1 was told to LOC-1 only (R-ALR-4)."""
    fleet = premium_fleet(pcs=("PC1",))
    anna = partner_user(fleet, "LOC-1", "anna@LOC-1")
    board = fleet.create_customer_dashboard(anna, "LOC-1", "C1", "Acme", "4711")
    tenant = fleet.partner("LOC-1").holding_tenant_id
    assert tenant is not None
    fleet.transfer_devices(anna, "LOC-1", ["PC1"], tenant, board, "T1")
    fleet.switch_self_service_notifications(anna, "LOC-1", board, False)
    fleet.raise_alert(OPS, "PC1", "A1", "critical", "Disk of PC1")
    PolicyRunner(fleet).catch_up()
    opened = open_portal(fleet, TOKENS)
    yield opened
    opened.close()


def test_r_alr_4_a_reseller_reads_the_alerts_told_to_it_only(reseller: Portal) -> None:
    """R-ALR-4: a reseller has no CSDP queue (R-SVC-1) but reads the alerts its switched-off
    dashboards send to it, from the navigation."""
    reseller.browser.sign_in("anna")

    page = reseller.browser.get("/portal/partners/LOC-1/alerts")
    queue = reseller.browser.get("/portal/partners/LOC-1/csdp-queue")

    assert page.status_code == 200
    assert '<th scope="row">A1</th>' in page.text
    assert "<td>PC1</td>" in page.text
    assert 'href="/portal/partners/LOC-1/alerts"' in page.text
    assert page.text.count("<h1>") == 1
    assert queue.status_code == 403


def test_r_alr_4_another_partners_alerts_are_not_found(reseller: Portal) -> None:
    reseller.browser.sign_in("otto")

    page = reseller.browser.get("/portal/partners/LOC-1/alerts")

    assert page.status_code == 404
    assert "PC1" not in page.text
