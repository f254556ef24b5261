"""The portal's holding tenant page (issue 10), without a browser: Unassigned Devices,
transfers to a customer dashboard and back, creating a dashboard (the cPIN never comes
back), self-service notifications with R-ALR-4's conditions shown, missing-device requests
with their status, R-PAR-4 explained to a partner that is not certified, and the access
model (another tenant 404, another role 403, no session 303, no CSRF token 403)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
from structlog.testing import capture_logs

from domain import CustomerGroup
from handlers.access import Claims
from infra.web.pages.holding import MAX_SERIALS
from tests.actors import operator, partner_user
from tests.scenarios import event_count, report
from tests.unit.http_holding_world import LOC, OPS, SERVICE_LOC, TOKENS, premium_fleet
from tests.unit.portal_world import Portal, open_portal

PAGE = f"/portal/partners/{LOC}/holding"
TOKENS_HERE = TOKENS | {"rita": Claims("rita@LOC-3", "partner_user", "LOC-3")}
CPIN = "7391-zebra-quince"


@pytest.fixture
def portal() -> Iterator[Portal]:
    """LOC-1 (Anna, Ben) with PC1…PC3 unassigned; LOC-2 (Otto) a service partner; LOC-3
    (Rita) registered but not certified."""
    fleet = premium_fleet()
    fleet.register_partner(OPS, "LOC-3", "Partner LOC-3")
    fleet.register_partner_user(OPS, "LOC-3", "rita@LOC-3")
    opened = open_portal(fleet, TOKENS_HERE)
    yield opened
    opened.close()


def dashboard(portal: Portal, customer: str = "C1", location: str = LOC) -> str:
    """A customer dashboard made through the fleet (views caught up); its id."""
    user = "anna@LOC-1" if location == LOC else "otto@LOC-2"
    made = portal.fleet.create_customer_dashboard(
        partner_user(portal.fleet, location, user),
        location,
        customer,
        f"Customer {customer}",
        "4711",
    )
    portal.views.catch_up()
    return str(made)


def holding_tenant(portal: Portal) -> str:
    return str(tenant_id(portal))


def tenant_id(portal: Portal) -> UUID:
    found = portal.fleet.partner(LOC).holding_tenant_id
    assert found is not None
    return found


def section(html: str, name: str) -> str:
    """The markup of the page's <section id=name>."""
    return html.split(f'<section id="{name}"')[1].split("</section>", maxsplit=1)[0]


def unassigned(html: str) -> list[str]:
    return re.findall(r'name="serials" value="([^"]+)"', section(html, "unassigned"))


def test_r_par_4_without_a_session_the_page_sends_the_browser_to_sign_in(portal: Portal) -> None:
    answer = portal.browser.get(PAGE)

    assert answer.status_code == 303
    assert answer.headers["location"] == "/portal/sign-in?next=%2Fpartners%2FLOC-1%2Fholding"


def test_r_hld_1_the_partner_sees_its_unassigned_pcs_with_checkboxes(portal: Portal) -> None:
    portal.browser.sign_in("ben")

    page = portal.browser.get(PAGE)

    assert page.status_code == 200
    assert unassigned(page.text) == ["PC1", "PC2", "PC3"]
    assert page.text.count("<h1>") == 1
    assert '<label for="pc-1">PC1</label>' in page.text
    # no dashboard yet: the transfer is not offered, and the page says why
    assert "Create a customer dashboard first" in page.text


def test_r_hld_1_another_partners_holding_tenant_is_not_found(portal: Portal) -> None:
    portal.browser.sign_in("otto")

    page = portal.browser.get(PAGE)

    assert page.status_code == 404
    assert "PC1" not in page.text
    assert 'role="alert"' in page.text


def test_r_par_2_a_customer_may_not_open_a_holding_tenant(portal: Portal) -> None:
    portal.browser.sign_in("acme")

    page = portal.browser.get(PAGE)

    assert page.status_code == 403
    assert "PC1" not in page.text


def test_r_par_4_a_partner_not_certified_sees_why_it_has_no_holding_tenant(portal: Portal) -> None:
    portal.browser.sign_in("rita")

    page = portal.browser.get("/portal/partners/LOC-3/holding")

    assert page.status_code == 200
    assert "not certified for HP Premium or Premium+" in page.text
    assert "R-PAR-4" in page.text
    assert 'id="unassigned"' not in page.text
    assert "/holding/transfers" not in page.text


def test_r_hld_3_create_a_customer_dashboard_and_the_cpin_never_comes_back(
    portal: Portal,
) -> None:
    portal.browser.sign_in("anna")

    with capture_logs() as logs:
        answer = portal.browser.post_form(
            f"{PAGE}/dashboards",
            {"customer_id": "C7", "customer_name": "Initech", "cpin": CPIN},
        )
    page = portal.browser.get(PAGE)

    assert answer.status_code == 303
    assert answer.headers["location"] == PAGE
    assert portal.fleet.customer_group(CustomerGroup.id_for(LOC, "C7")).is_dashboard
    assert "Initech" in section(page.text, "dashboards")
    assert '<option value="' in section(page.text, "unassigned")  # now a transfer target
    assert CPIN not in page.text
    assert CPIN not in repr(logs)
    stored = portal.fleet.recorder.select_notifications(start=1, limit=10_000)
    assert all(CPIN.encode() not in n.state for n in stored)


def test_r_hld_3_a_refused_dashboard_is_shown_at_the_form_without_the_cpin(
    portal: Portal,
) -> None:
    portal.browser.sign_in("anna")
    before = event_count(portal.fleet)

    answer = portal.browser.post_form(
        f"{PAGE}/dashboards", {"customer_id": "C7", "customer_name": "Initech", "cpin": "7z"}
    )

    assert answer.status_code == 409
    form = section(answer.text, "new-dashboard")
    assert 'role="alert"' in form
    assert "at least 4 characters" in form
    assert 'value="Initech"' in form
    assert "7z" not in answer.text
    assert event_count(portal.fleet) == before


def test_r_hld_3_several_pcs_are_transferred_to_a_dashboard_and_the_transfer_reversed(
    portal: Portal,
) -> None:
    target = dashboard(portal)
    portal.browser.sign_in("anna")

    moved = portal.browser.post_form(
        f"{PAGE}/transfers",
        {
            "transfer_id": "T-1",
            "source_id": holding_tenant(portal),
            "target_id": target,
            "serials": ["PC1", "PC3"],
        },
    )
    after_move = portal.browser.get(PAGE).text
    reverse = section(after_move, "transfers").split("<form")[1].split("</form>")[0]
    fields = dict(re.findall(r'name="(source_id|target_id|transfer_id)" value="([^"]+)"', reverse))
    back = portal.browser.post_form(
        f"{PAGE}/transfers",
        {**fields, "serials": re.findall(r'name="serials" value="([^"]+)"', reverse)},
    )
    after_back = portal.browser.get(PAGE).text

    assert moved.status_code == 303
    assert unassigned(after_move) == ["PC2"]
    pcs = section(after_move, "dashboards")
    assert '<th scope="row">PC1</th>' in pcs
    assert '<th scope="row">PC3</th>' in pcs
    assert (fields["source_id"], fields["target_id"]) == (target, holding_tenant(portal))
    assert back.status_code == 303
    assert unassigned(after_back) == ["PC1", "PC2", "PC3"]
    assert portal.fleet.device("PC1").placement == portal.fleet.partner(LOC).holding_tenant_id
    assert "Not reversible" in section(after_back, "transfers")  # T-1's PCs left its target


def test_r_alr_4_the_switch_off_is_unavailable_without_a_premium_pc_and_says_why(
    portal: Portal,
) -> None:
    target = dashboard(portal)
    anna = partner_user(portal.fleet, LOC, "anna@LOC-1")
    tenant = tenant_id(portal)
    portal.fleet.transfer_devices(anna, LOC, ["PC1"], tenant, CustomerGroup.id_for(LOC, "C1"), "T1")
    portal.fleet.transfer_devices(anna, LOC, ["PC1"], CustomerGroup.id_for(LOC, "C1"), tenant, "T2")
    portal.views.catch_up()
    portal.browser.sign_in("anna")

    page = portal.browser.get(PAGE)

    card = section(page.text, "dashboards")
    assert "Self-service notifications: on" in card  # R-ALR-3: on with the first PC
    assert re.search(r'<button type="submit" disabled aria-describedby="off-' + target, card)
    assert "only once at least one HP Premium/Premium+ PC is in this customer dashboard" in card
    assert "R-ALR-4" in card


def test_r_alr_4_notifications_are_switched_off_with_a_premium_pc_then_alerts_reach_the_partner(
    portal: Portal,
) -> None:
    target = dashboard(portal)
    anna = partner_user(portal.fleet, LOC, "anna@LOC-1")
    portal.fleet.transfer_devices(
        anna,
        LOC,
        ["PC2"],
        tenant_id(portal),
        CustomerGroup.id_for(LOC, "C1"),
        "T1",
    )
    portal.views.catch_up()
    portal.browser.sign_in("anna")
    offered = section(portal.browser.get(PAGE).text, "dashboards")

    answer = portal.browser.post_form(
        f"{PAGE}/dashboards/{target}/self-service-notifications", {"on": "false"}
    )
    page = portal.browser.get(PAGE)

    assert not re.search(r"<button type=\"submit\" disabled aria-describedby=\"off-", offered)
    assert answer.status_code == 303
    assert not portal.fleet.customer_group(
        CustomerGroup.id_for(LOC, "C1")
    ).self_service_notifications
    card = section(page.text, "dashboards")
    assert "Self-service notifications: off" in card
    assert "alerts reach you, the partner, only" in card


def test_r_alr_4_a_forged_switch_off_without_a_premium_pc_is_refused_and_records_nothing(
    portal: Portal,
) -> None:
    target = dashboard(portal)
    portal.browser.sign_in("anna")
    before = event_count(portal.fleet)

    answer = portal.browser.post_form(
        f"{PAGE}/dashboards/{target}/self-service-notifications", {"on": "false"}
    )

    assert answer.status_code == 409
    assert "R-ALR-4" in answer.text
    assert 'role="alert"' in answer.text
    assert event_count(portal.fleet) == before


def test_r_hld_3_a_transfer_without_a_pc_chosen_is_refused_with_the_reason(portal: Portal) -> None:
    target = dashboard(portal)
    portal.browser.sign_in("anna")
    before = event_count(portal.fleet)

    answer = portal.browser.post_form(
        f"{PAGE}/transfers",
        {"transfer_id": "T-9", "source_id": holding_tenant(portal), "target_id": target},
    )

    assert answer.status_code == 409
    assert "Choose at least one PC to transfer." in answer.text
    assert event_count(portal.fleet) == before


def test_r_hld_3_a_transfer_into_another_partners_dashboard_is_not_found(portal: Portal) -> None:
    foreign = dashboard(portal, "C2", SERVICE_LOC)
    portal.browser.sign_in("anna")
    before = event_count(portal.fleet)

    answer = portal.browser.post_form(
        f"{PAGE}/transfers",
        {
            "transfer_id": "T-9",
            "source_id": holding_tenant(portal),
            "target_id": foreign,
            "serials": ["PC1"],
        },
    )

    assert answer.status_code == 404
    assert "Customer C2" not in answer.text
    assert event_count(portal.fleet) == before


def test_r_hld_2_a_missing_devices_request_lists_its_serials_and_status(portal: Portal) -> None:
    portal.browser.sign_in("anna")
    shown = portal.browser.get(PAGE).text
    request_id = re.findall(r'name="request_id" value="([^"]+)"', shown)[0]

    answer = portal.browser.post_form(
        f"{PAGE}/missing-device-requests",
        {"request_id": request_id, "serials": "MX1, mx2\nMX3"},
    )
    opened = section(portal.browser.get(PAGE).text, "missing")
    portal.fleet.resolve_missing_devices(operator(), LOC, request_id, "PCs re-sent by e2Open")
    resolved = section(portal.browser.get(PAGE).text, "missing")

    assert answer.status_code == 303
    assert f'<th scope="row">{request_id}</th>' in opened
    assert "MX1, MX2, MX3" in opened
    assert "Open" in opened
    assert "Resolved: PCs re-sent by e2Open" in resolved


def test_r_hld_2_a_request_without_serials_is_refused_at_the_form(portal: Portal) -> None:
    portal.browser.sign_in("anna")
    before = event_count(portal.fleet)

    answer = portal.browser.post_form(
        f"{PAGE}/missing-device-requests", {"request_id": "MDR-1", "serials": " , "}
    )

    assert answer.status_code == 409
    form = section(answer.text, "missing")
    assert 'role="alert"' in form
    assert "at least one serial number" in form
    assert event_count(portal.fleet) == before


def test_r_hld_2_too_many_serials_are_refused_in_german_and_record_nothing(
    portal: Portal,
) -> None:
    """Issue 10: the portal's own limit on a form is a Msg, shown from the German catalog."""
    portal.browser.sign_in("anna")
    before = event_count(portal.fleet)
    serials = " ".join(f"MX{n}" for n in range(MAX_SERIALS + 1))

    answer = portal.browser.post_form(
        f"{PAGE}/missing-device-requests",
        {"request_id": "MDR-1", "serials": serials},
        headers={"Accept-Language": "de-DE,de;q=0.9"},
    )

    assert answer.status_code == 422
    assert f"Geben Sie höchstens {MAX_SERIALS} Seriennummern an." in answer.text
    assert event_count(portal.fleet) == before


def test_r_hld_1_unassigned_devices_are_keyset_paged(portal: Portal) -> None:
    serials = [f"PX{n:03}" for n in range(55)]
    portal.fleet.receive_e2open_batch(OPS, "more", [report(s, LOC) for s in serials])
    portal.views.catch_up()
    portal.browser.sign_in("anna")

    first = portal.browser.get(PAGE).text
    link = re.findall(r'href="([^"]+)#unassigned" rel="next"', first)[0].replace("&amp;", "&")
    second = portal.browser.get(link).text

    shown = unassigned(first) + unassigned(second)
    assert len(unassigned(first)) == 50
    assert shown == sorted(["PC1", "PC2", "PC3", *serials])
    assert 'rel="next"' not in section(second, "unassigned")


FORMS: dict[str, tuple[str, dict[str, Any]]] = {
    "transfer": ("/transfers", {"transfer_id": "T-1", "serials": ["PC1"]}),
    "dashboard": ("/dashboards", {"customer_id": "C7", "customer_name": "I", "cpin": CPIN}),
    "switch": ("/dashboards/{dashboard}/self-service-notifications", {"on": "true"}),
    "missing": ("/missing-device-requests", {"request_id": "MDR-1", "serials": "MX1"}),
}


@pytest.mark.parametrize("form", FORMS)
def test_r_hld_3_each_form_without_its_csrf_token_is_forbidden_and_records_nothing(
    portal: Portal, form: str
) -> None:
    target = dashboard(portal)
    path, data = FORMS[form]
    data = {**data, "source_id": holding_tenant(portal), "target_id": target}
    portal.browser.sign_in("anna")
    before = event_count(portal.fleet)

    answer = portal.browser.post(PAGE + path.format(dashboard=target), data=data)

    assert answer.status_code == 403
    assert event_count(portal.fleet) == before


def test_r_hld_3_a_partner_sees_only_its_own_dashboards_and_transfers(portal: Portal) -> None:
    target = dashboard(portal)
    anna = partner_user(portal.fleet, LOC, "anna@LOC-1")
    portal.fleet.transfer_devices(anna, LOC, ["PC1"], tenant_id(portal), UUID(target), "T-ANNA")
    portal.views.catch_up()
    portal.browser.sign_in("otto")

    page = portal.browser.get(f"/portal/partners/{SERVICE_LOC}/holding")

    assert page.status_code == 200
    assert "Customer C1" not in page.text
    assert "T-ANNA" not in page.text
    assert "No transfers yet." in page.text
    assert "PC1" not in page.text
