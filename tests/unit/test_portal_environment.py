"""The portal's customer pages (issue 10), without a browser: My IT Environment grouped by
hosting device, setting and removing the partner per selection, per device and on a hosting
device, the consent wording and its grant and withdrawal, registration, the consent history
of a device and of the customer, paging, tenant isolation, roles and CSRF."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from domain import CustomerGroup
from domain.consent import CONSENT_TEXTS, CURRENT_CONSENT_TEXT
from handlers.devices import NewDevice
from tests.actors import auditor, customer
from tests.scenarios import event_count, in_memory_fleet, partner
from tests.unit.access_world import OTHER, OWN, world
from tests.unit.portal_world import Portal, open_portal

ENV = "/portal/customers/C1/environment"
BASE = "/portal/customers/C1"


@pytest.fixture
def portal() -> Iterator[Portal]:
    """The access world's portal: C1 has S1 (consent), SN1, PCC1, hosts H1 (CC1) and HC1
    (CCC1, consent on the host), all linked to LOC-1."""
    opened = open_portal(world())
    yield opened
    opened.close()


@pytest.fixture
def big() -> Iterator[Portal]:
    """C1 with 120 direct-connect servers (B000 … B119), none linked."""
    fleet = in_memory_fleet()
    partner(fleet, "LOC-1")
    devices = [NewDevice(serial=f"B{n:03}", connection="direct_connect") for n in range(120)]
    fleet.register_devices(customer("C1"), "C1", devices)
    opened = open_portal(fleet)
    yield opened
    opened.close()


def device_row(html: str, serial: str) -> str:
    """The table row of `serial` on My IT Environment."""
    start = html.index(f'value="{serial}" id="pick-')
    return html[start : html.index("</tr>", start)]


def serials_on(html: str) -> list[str]:
    return re.findall(r'name="serials" value="([^"]+)" id="pick-', html)


def test_r_par_2_without_a_session_the_environment_sends_the_browser_to_sign_in(
    portal: Portal,
) -> None:
    answer = portal.browser.get(ENV)

    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/portal/sign-in?next=")


def test_r_par_2_the_customer_sees_its_devices_grouped_by_hosting_device(portal: Portal) -> None:
    portal.browser.sign_in("c1")

    page = portal.browser.get(ENV)

    assert page.status_code == 200
    assert page.text.count("<h1>") == 1
    headings = re.findall(r'<h3 id="group-\d+">([^<]+)</h3>', page.text)
    assert headings == [
        "Direct-connect devices and PCs",
        "Insight RS hosting device H1",
        "Insight RS hosting device HC1",
    ]
    host_group = page.text.split("Insight RS hosting device H1")[1].split("<h3")[0]
    assert serials_on(host_group) == ["H1", "CC1"]  # the host first, then what it manages
    assert "LOC-1" in device_row(page.text, "S1")
    assert "Granted" in device_row(page.text, "S1")
    assert "set on hosting device HC1" in device_row(page.text, "CCC1")
    assert OTHER.s("S") not in page.text


def test_r_con_3_the_consent_section_shows_the_version_and_wording_it_grants(
    portal: Portal,
) -> None:
    portal.browser.sign_in("c1")

    page = portal.browser.get(ENV)

    assert CONSENT_TEXTS[CURRENT_CONSENT_TEXT] in page.text
    assert f"version {CURRENT_CONSENT_TEXT}" in page.text
    assert f'name="text_version" value="{CURRENT_CONSENT_TEXT}"' in page.text


def test_r_par_2_another_customers_environment_is_not_found(portal: Portal) -> None:
    portal.browser.sign_in("c1")

    page = portal.browser.get(f"/portal/customers/{OTHER.customer}/environment")
    device = portal.browser.get(f"{BASE}/devices/{OTHER.s('S')}")

    assert (page.status_code, device.status_code) == (404, 404)
    assert OTHER.s("S") not in page.text
    assert 'role="alert"' in page.text


def test_r_par_2_a_partner_may_not_open_my_it_environment(portal: Portal) -> None:
    portal.browser.sign_in("anna")

    page = portal.browser.get(ENV)

    assert page.status_code == 403
    assert "S1" not in page.text


def test_r_lnk_3_link_a_selection_of_devices_to_one_location_id(portal: Portal) -> None:
    portal.browser.sign_in("c1")

    answer = portal.browser.post_form(
        f"{ENV}/links",
        {"serials": ["SN1", "PCC1"], "location_id": OTHER.loc, "role": "reseller"},
    )

    assert answer.status_code == 303
    assert answer.headers["location"] == ENV
    for serial in ("SN1", "PCC1"):
        assert portal.fleet.device(serial).links == {"reseller": OTHER.loc}
    page = portal.browser.get(ENV)
    assert OTHER.loc in device_row(page.text, "SN1")
    assert OTHER.loc not in device_row(page.text, "S1")


def test_r_lnk_6_unlink_the_selection_in_a_role(portal: Portal) -> None:
    portal.browser.sign_in("c1")

    answer = portal.browser.post_form(
        f"{ENV}/link-removals", {"serials": ["SN1"], "role": "reseller"}
    )

    assert answer.status_code == 303
    assert portal.fleet.device("SN1").links == {}
    assert portal.fleet.device("S1").links == {"reseller": OWN.loc}


def test_r_lnk_3_link_one_device_on_its_own_page_and_come_back_to_it(portal: Portal) -> None:
    portal.browser.sign_in("c1")
    page = portal.browser.get(f"{BASE}/devices/SN1")
    assert page.status_code == 200
    assert "<h1>Device SN1</h1>" in page.text

    answer = portal.browser.post_form(
        f"{ENV}/links",
        {"serials": "SN1", "location_id": OTHER.loc, "next": "/customers/C1/devices/SN1"},
    )

    assert answer.status_code == 303
    assert answer.headers["location"] == f"{BASE}/devices/SN1"
    assert portal.fleet.device("SN1").links == {"reseller": OTHER.loc}


def test_r_lnk_2_the_partner_set_on_a_hosting_device_applies_to_every_device_it_manages(
    portal: Portal,
) -> None:
    portal.browser.sign_in("c1")

    answer = portal.browser.post_form(
        f"{BASE}/hosting-devices/H1/partner", {"location_id": OTHER.loc, "role": "reseller"}
    )

    assert answer.status_code == 303
    assert portal.fleet.device("H1").links == {"reseller": OTHER.loc}
    assert portal.fleet.device("CC1").links == {"reseller": OTHER.loc}
    assert portal.fleet.device("S1").links == {"reseller": OWN.loc}


def test_r_con_1_consent_granted_once_on_a_hosting_device_then_withdrawn(portal: Portal) -> None:
    portal.browser.sign_in("c1")

    granted = portal.browser.post_form(
        f"{BASE}/hosting-devices/H1/consent", {"text_version": CURRENT_CONSENT_TEXT}
    )
    page = portal.browser.get(ENV)
    withdrawn = portal.browser.post_form(f"{BASE}/hosting-devices/H1/consent-withdrawal")

    assert (granted.status_code, withdrawn.status_code) == (303, 303)
    assert "Granted" in device_row(page.text, "CC1")
    assert "set on hosting device H1" in device_row(page.text, "CC1")
    assert portal.fleet.device("CC1").consent is None
    assert portal.fleet.device("H1").consent is None


def test_r_con_1_consent_per_chosen_direct_connect_device_on_the_wording_shown(
    portal: Portal,
) -> None:
    portal.browser.sign_in("c1")

    answer = portal.browser.post_form(
        f"{ENV}/consent-grants", {"serials": ["SN1", "PCC1"], "text_version": "2024-01"}
    )

    assert answer.status_code == 303
    for serial in ("SN1", "PCC1"):
        consent = portal.fleet.device(serial).consent
        assert consent is not None
        assert (consent.text_version, consent.scope) == ("2024-01", "device")


def test_r_con_3_withdraw_consent_for_the_selection(portal: Portal) -> None:
    portal.browser.sign_in("c1")

    answer = portal.browser.post_form(f"{ENV}/consent-withdrawals", {"serials": ["S1"]})
    page = portal.browser.get(ENV)

    assert answer.status_code == 303
    assert portal.fleet.device("S1").consent is None
    assert "Withdrawn" in device_row(page.text, "S1")


def test_r_con_1_consent_on_a_central_connect_device_alone_is_refused_on_the_page(
    portal: Portal,
) -> None:
    portal.browser.sign_in("c1")
    before = event_count(portal.fleet)

    answer = portal.browser.post_form(
        f"{ENV}/consent-grants",
        {"serials": ["SN1", "CC1"], "text_version": CURRENT_CONSENT_TEXT},
    )

    assert answer.status_code == 409
    assert 'role="alert"' in answer.text
    assert "R-CON-1" in answer.text
    assert "hosting device H1" in answer.text
    assert "<h1>My IT Environment" in answer.text  # the page the form was on, with its forms
    assert event_count(portal.fleet) == before  # SN1 was not granted either


def test_r_lnk_1_an_unknown_location_id_is_refused_on_the_page_and_records_nothing(
    portal: Portal,
) -> None:
    portal.browser.sign_in("c1")
    before = event_count(portal.fleet)

    answer = portal.browser.post_form(
        f"{ENV}/links",
        {"serials": "SN1", "location_id": "LOC-404", "next": "/customers/C1/devices/SN1"},
    )

    assert answer.status_code == 404
    assert "No partner has Location ID &#39;LOC-404&#39;" in answer.text
    assert "<h1>Device SN1</h1>" in answer.text
    assert event_count(portal.fleet) == before


def test_r_lnk_3_nothing_selected_is_refused_with_a_reason(portal: Portal) -> None:
    portal.browser.sign_in("c1")
    before = event_count(portal.fleet)

    answer = portal.browser.post_form(f"{ENV}/links", {"location_id": OWN.loc})

    assert answer.status_code == 409
    assert "Choose at least one device." in answer.text
    assert event_count(portal.fleet) == before


def test_r_lnk_1_a_link_without_a_location_id_is_refused_on_the_page(portal: Portal) -> None:
    portal.browser.sign_in("c1")
    before = event_count(portal.fleet)

    answer = portal.browser.post_form(f"{ENV}/links", {"serials": "SN1", "location_id": " "})

    assert answer.status_code == 422
    assert "Enter the partner&#39;s Location ID" in answer.text
    assert "<h1>My IT Environment" in answer.text
    assert event_count(portal.fleet) == before


def test_r_lnk_3_register_a_device_linked_to_a_partner_then_it_is_listed(
    portal: Portal,
) -> None:
    portal.browser.sign_in("c1")

    answer = portal.browser.post_form(
        f"{ENV}/registrations",
        {
            "serial": "new1",
            "connection": "direct_connect",
            "model": "DL360",
            "location_id": OWN.loc,
        },
    )
    page = portal.browser.get(ENV)

    assert answer.status_code == 303
    assert portal.fleet.device("NEW1").links == {"reseller": OWN.loc}
    assert "DL360" in device_row(page.text, "NEW1")


def test_r_lnk_2_a_device_registered_under_a_host_follows_its_partner(portal: Portal) -> None:
    portal.browser.sign_in("c1")

    answer = portal.browser.post_form(
        f"{ENV}/registrations",
        {"serial": "CC9", "connection": "central_connect", "hosting_serial": "HC1"},
    )

    assert answer.status_code == 303
    added = portal.fleet.device("CC9")
    assert added.links == {"reseller": OWN.loc}
    assert added.consent is not None  # R-CON-1: the host's one setting


def test_r_par_3_registering_a_serial_twice_is_refused_on_the_page(portal: Portal) -> None:
    portal.browser.sign_in("c1")
    before = event_count(portal.fleet)

    answer = portal.browser.post_form(
        f"{ENV}/registrations", {"serial": "S1", "connection": "direct_connect"}
    )

    assert answer.status_code == 409
    assert "already registered" in answer.text
    assert event_count(portal.fleet) == before


def test_r_lnk_1_a_partner_may_not_link_a_customers_devices(portal: Portal) -> None:
    portal.browser.sign_in("anna")
    before = event_count(portal.fleet)

    answer = portal.browser.post_form(f"{ENV}/links", {"serials": "SN1", "location_id": OTHER.loc})

    assert answer.status_code == 403
    assert event_count(portal.fleet) == before


def test_r_par_2_another_customers_device_cannot_be_linked_through_the_form(
    portal: Portal,
) -> None:
    portal.browser.sign_in("c1")
    before = event_count(portal.fleet)

    other_tenant = portal.browser.post_form(
        f"/portal/customers/{OTHER.customer}/environment/links",
        {"serials": OTHER.s("S"), "location_id": OWN.loc},
    )
    other_device = portal.browser.post_form(
        f"{ENV}/links", {"serials": OTHER.s("S"), "location_id": OWN.loc}
    )

    assert other_tenant.status_code == 404
    assert other_device.status_code == 404
    assert event_count(portal.fleet) == before


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/environment/links", {"serials": "SN1", "location_id": "LOC-2"}),
        ("/environment/link-removals", {"serials": "S1"}),
        ("/environment/consent-grants", {"serials": "SN1", "text_version": "2025-06"}),
        ("/environment/consent-withdrawals", {"serials": "S1"}),
        ("/hosting-devices/H1/partner", {"location_id": "LOC-2"}),
        ("/hosting-devices/H1/consent", {"text_version": "2025-06"}),
        ("/hosting-devices/HC1/consent-withdrawal", {}),
        ("/environment/registrations", {"serial": "X1", "connection": "direct_connect"}),
    ],
)
def test_csrf_every_environment_form_without_the_token_is_refused_and_records_nothing(
    portal: Portal, path: str, data: dict[str, str]
) -> None:
    portal.browser.sign_in("c1")
    before = event_count(portal.fleet)

    answer = portal.browser.post(BASE + path, data={**data, "csrf_token": "x" * 43})

    assert answer.status_code == 403
    assert event_count(portal.fleet) == before


def test_r_par_2_a_long_environment_is_keyset_paged(big: Portal) -> None:
    big.browser.sign_in("c1")

    first = big.browser.get(ENV)
    link = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert link is not None
    second = big.browser.get(link.group(1).replace("&amp;", "&"))
    forged = big.browser.get(ENV, params={"cursor": "not-a-cursor"})

    assert serials_on(first.text) == [f"B{n:03}" for n in range(50)]
    assert serials_on(second.text) == [f"B{n:03}" for n in range(50, 100)]
    assert forged.status_code == 400


def test_r_con_3_a_devices_consent_history_lists_grant_withdrawal_and_wording(
    portal: Portal,
) -> None:
    owner = customer("C1")
    portal.fleet.withdraw_consent(owner, "C1", ["S1"])
    portal.fleet.grant_consent(owner, "C1", ["S1"], "2024-01")
    portal.views.catch_up()
    portal.browser.sign_in("c1")

    page = portal.browser.get(f"{BASE}/devices/S1/consent-history")

    assert page.status_code == 200
    actions = re.findall(r"(Consent granted|Consent withdrawn|Partner linked)", page.text)
    assert actions == ["Partner linked", "Consent granted", "Consent withdrawn", "Consent granted"]
    assert CONSENT_TEXTS["2024-01"] in page.text
    assert CONSENT_TEXTS["2025-06"] in page.text


def test_r_con_4_a_correction_is_shown_as_a_record_of_its_own(portal: Portal) -> None:
    version = portal.fleet.device("S1").consent_versions[-1]
    portal.fleet.correct_consent_record(auditor(), "S1", version, "Granted by mistake", None)
    portal.views.catch_up()
    portal.browser.sign_in("c1")

    page = portal.browser.get(f"{BASE}/devices/S1/consent-history")

    assert "Consent granted" in page.text  # the corrected record is still there
    assert f"Record {version} corrected" in page.text
    assert "Granted by mistake" in page.text


def test_r_con_3_the_customer_wide_history_names_each_device_and_no_other_customers(
    portal: Portal,
) -> None:
    portal.browser.sign_in("c1")

    page = portal.browser.get(f"{BASE}/consent-history")

    assert page.status_code == 200
    assert 'href="/portal/customers/C1/devices/HC1/consent-history"' in page.text
    assert OTHER.s("S") not in page.text


def test_r_con_3_another_customers_device_history_is_not_found(portal: Portal) -> None:
    portal.browser.sign_in("c1")

    page = portal.browser.get(f"{BASE}/devices/{OTHER.s('S')}/consent-history")
    other = portal.browser.get(f"/portal/customers/{OTHER.customer}/consent-history")

    assert (page.status_code, other.status_code) == (404, 404)


def test_r_con_3_an_auditor_reads_history_on_the_audit_pages_not_here(portal: Portal) -> None:
    portal.browser.sign_in("auditor")

    page = portal.browser.get(f"{BASE}/consent-history")

    assert page.status_code == 403


def test_the_environment_is_german_with_accept_language(portal: Portal) -> None:
    portal.browser.sign_in("c1")

    page = portal.browser.get(ENV, headers={"Accept-Language": "de"})

    assert '<html lang="de">' in page.text
    assert page.status_code == 200


def test_r_fav_1_a_link_to_a_new_partner_names_its_customer_group_as_the_customer_says(
    portal: Portal,
) -> None:
    """R-FAV-1, R-LNK-5: the partner's new customer group shows the company name the customer
    gave on the link form (issue 10 browser stories: it showed the customer id); without a
    name it is the customer id, as over HTTP."""
    portal.browser.sign_in("c1")

    answer = portal.browser.post_form(
        f"{ENV}/links",
        {
            "serials": ["SN1"],
            "location_id": OTHER.loc,
            "role": "reseller",
            "customer_name": "Acme Hosting GmbH",
        },
    )

    assert answer.status_code == 303
    group: CustomerGroup = portal.fleet.repository.get(
        CustomerGroup.id_for(OTHER.loc, OWN.customer)
    )
    assert group.customer_name == "Acme Hosting GmbH"
    page = portal.browser.get(ENV)
    assert page.text.count('name="customer_name"') >= 2  # the selection and registration forms
