"""The portal's device page and service-event list (issue 10), without a browser: the highest
active service level and all of them on request, configuration data only while R-CON-2
allows (else the reason in place), service events for the service partner only, and the
service partner's event list filtered by customer or device."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date

import pytest

from domain.service_level import ServiceLevel
from handlers.access import Claims
from handlers.devices import PartnerChoice
from tests.actors import customer
from tests.scenarios import OPS, in_memory_fleet, partner, servers
from tests.unit.portal_world import Portal, open_portal

SERVICE, RESELLER, OTHER = "LOC-S", "LOC-1", "LOC-T"
TOKENS = {
    "sam": Claims(f"anna@{SERVICE}", "partner_user", SERVICE),  # the service partner's admin
    "rita": Claims(f"anna@{RESELLER}", "partner_user", RESELLER),  # the reseller's admin
    "tom": Claims(f"anna@{OTHER}", "partner_user", OTHER),  # another service partner
    "c1": Claims("it@C1", "customer_admin", "C1"),
}
DEVICE = f"/portal/partners/{SERVICE}/devices"
EVENTS = f"/portal/partners/{SERVICE}/service-events"


@pytest.fixture
def portal() -> Iterator[Portal]:
    """C1's S1 (consent, data, three levels, two events) and S2 (no consent): reseller
    LOC-1, service partner LOC-S. C2's S9 is serviced by LOC-T. C3's S3 by LOC-S, with 60
    events."""
    fleet = in_memory_fleet()
    for location in (RESELLER,):
        partner(fleet, location)
    for location in (SERVICE, OTHER):
        partner(fleet, location, service=True)
    owner = customer("C1")
    fleet.register_devices(owner, "C1", servers("S1", "S2"), PartnerChoice(location_id=RESELLER))
    service = PartnerChoice(location_id=SERVICE, role="service_partner")
    fleet.link_devices(owner, "C1", ["S1", "S2"], service)
    fleet.grant_consent(owner, "C1", ["S1"])
    fleet.collect_configuration(OPS, "S1", {"bios": "U30 v2.9", "disks": [1, 2]})
    for kind, name, ends in (
        ("warranty", "Base warranty", date(2099, 1, 1)),
        ("care_pack", "Care Pack 24x7", date(2098, 1, 1)),
        ("support_agreement", "Expired agreement", date(2020, 1, 1)),
    ):
        fleet.add_service_level(OPS, "S1", ServiceLevel(kind, name, date(2019, 1, 1), ends))
    fleet.record_service_event(OPS, "S1", "E-CRIT", "critical", "PSU failed")
    fleet.record_service_event(OPS, "S1", "E-INFO", "info", "Firmware updated")
    other = customer("C2")
    fleet.register_devices(
        other, "C2", servers("S9"), PartnerChoice(location_id=OTHER, role="service_partner")
    )
    fleet.record_service_event(OPS, "S9", "E-OTHER", "critical", "Fan failed")
    third = customer("C3")
    fleet.register_devices(third, "C3", servers("S3"), service)
    for n in range(60):
        fleet.record_service_event(OPS, "S3", f"E{n:02}", "warning", f"Event {n}")
    opened = open_portal(fleet, TOKENS)
    yield opened
    opened.close()


def section(html: str, element_id: str) -> str:
    return html.split(f'id="{element_id}"')[1].split("</section>", maxsplit=1)[0]


# --- the device page -----------------------------------------------------------------------


def test_r_svc_3_the_device_page_shows_the_highest_active_service_level(portal: Portal) -> None:
    portal.browser.sign_in("sam")

    page = portal.browser.get(f"{DEVICE}/S1")

    assert page.status_code == 200
    levels = section(page.text, "service-levels")
    assert "Care Pack 24x7" in levels
    assert "Base warranty" not in levels
    assert "Expired agreement" not in levels
    assert f'href="{DEVICE}/S1?all=true"' in levels
    assert page.text.count("<h1>") == 1


def test_r_svc_3_show_all_lists_every_active_level_and_htmx_gets_only_the_section(
    portal: Portal,
) -> None:
    portal.browser.sign_in("sam")

    full = portal.browser.get(f"{DEVICE}/S1", params={"all": "true"})
    partial = portal.browser.get(
        f"{DEVICE}/S1",
        params={"all": "true"},
        headers={"HX-Request": "true", "HX-Target": "service-levels"},
    )

    levels = section(full.text, "service-levels")
    assert levels.index("Care Pack 24x7") < levels.index("Base warranty")
    assert "Expired agreement" not in levels
    assert partial.text.startswith('<section id="service-levels"')
    assert "Base warranty" in partial.text
    assert "<html" not in partial.text


def test_r_con_2_configuration_data_is_shown_while_consent_is_granted(portal: Portal) -> None:
    portal.browser.sign_in("sam")

    page = portal.browser.get(f"{DEVICE}/S1")

    configuration = section(page.text, "configuration")
    assert "U30 v2.9" in configuration
    assert "[1, 2]" in configuration


def test_r_con_2_without_consent_the_reason_is_shown_in_place_not_an_error_page(
    portal: Portal,
) -> None:
    portal.browser.sign_in("sam")

    page = portal.browser.get(f"{DEVICE}/S2")

    assert page.status_code == 200
    configuration = section(page.text, "configuration")
    assert "has not granted consent" in configuration
    assert "R-CON-2" in configuration


def test_r_con_3_a_withdrawal_ends_access_on_the_next_page(portal: Portal) -> None:
    portal.fleet.withdraw_consent(customer("C1"), "C1", ["S1"])
    portal.browser.sign_in("sam")

    page = portal.browser.get(f"{DEVICE}/S1")

    configuration = section(page.text, "configuration")
    assert "U30 v2.9" not in configuration
    assert "has not granted consent" in configuration


def test_r_svc_1_the_service_partner_sees_the_devices_events_critical_marked(
    portal: Portal,
) -> None:
    portal.browser.sign_in("sam")

    page = portal.browser.get(f"{DEVICE}/S1")

    events = section(page.text, "device-events")
    assert "PSU failed" in events
    assert "Firmware updated" in events
    critical = re.search(r'<tr class="critical-row">.*?</tr>', events, re.S)
    assert critical is not None
    assert "E-CRIT" in critical.group(0)
    assert f'href="{EVENTS}?serial=S1"' in events


def test_r_svc_1_a_reseller_sees_no_events_and_levels_say_why(portal: Portal) -> None:
    portal.browser.sign_in("rita")

    page = portal.browser.get(f"/portal/partners/{RESELLER}/devices/S1")

    assert page.status_code == 200
    assert 'id="device-events"' not in page.text
    assert "PSU failed" not in page.text
    assert "service partners only" in section(page.text, "service-levels")
    assert "U30 v2.9" in section(page.text, "configuration")  # R-CON-2: linked, consent


def test_r_lnk_1_another_partners_device_is_not_found(portal: Portal) -> None:
    portal.browser.sign_in("sam")

    page = portal.browser.get(f"{DEVICE}/S9")
    unknown = portal.browser.get(f"{DEVICE}/NOPE")

    assert page.status_code == 404
    assert "Fan failed" not in page.text
    assert unknown.status_code == 404
    assert 'role="alert"' in page.text
    assert "No device with serial number" in page.text  # the words for an unknown one
    assert "No device with serial number" in unknown.text


def test_r_lnk_1_another_partners_location_id_is_not_found(portal: Portal) -> None:
    portal.browser.sign_in("sam")

    page = portal.browser.get(f"/portal/partners/{OTHER}/devices/S9")

    assert page.status_code == 404
    assert "Fan failed" not in page.text


def test_r_par_2_a_customer_admin_may_not_open_a_partners_device_page(portal: Portal) -> None:
    portal.browser.sign_in("c1")

    page = portal.browser.get(f"{DEVICE}/S1")

    assert page.status_code == 403
    assert "U30 v2.9" not in page.text


def test_r_par_2_without_a_session_the_device_page_sends_to_sign_in(portal: Portal) -> None:
    answer = portal.browser.get(f"{DEVICE}/S1")

    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/portal/sign-in?next=")


def test_r_lnk_1_the_dashboard_links_each_device_to_its_page(portal: Portal) -> None:
    portal.browser.sign_in("sam")
    board = portal.browser.get(f"/portal/partners/{SERVICE}/customers")
    link = re.search(r'href="(/portal/partners/LOC-S/customers/[0-9a-f-]+)"', board.text)
    assert link is not None

    dashboard = portal.browser.get(link.group(1))

    assert f'href="{DEVICE}/S' in dashboard.text


# --- the service-event list ----------------------------------------------------------------


def test_r_svc_2_the_event_list_filters_by_customer_and_marks_critical_ones(
    portal: Portal,
) -> None:
    portal.browser.sign_in("sam")

    page = portal.browser.get(EVENTS, params={"customer_id": "C1"})

    assert page.status_code == 200
    listing = section(page.text, "event-list")
    assert "PSU failed" in listing
    assert "Firmware updated" in listing
    assert "Event 1" not in listing  # C3's
    assert "Fan failed" not in listing  # another service partner's
    assert listing.count('class="critical-row"') == 1
    assert 'value="C1"' in page.text


def test_r_svc_2_the_event_list_pages_by_key_and_htmx_gets_only_the_list(
    portal: Portal,
) -> None:
    portal.browser.sign_in("sam")

    first = portal.browser.get(EVENTS, params={"customer_id": "C3"})
    link = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert link is not None
    second = portal.browser.get(
        link.group(1).replace("&amp;", "&"),
        headers={"HX-Request": "true", "HX-Target": "event-list"},
    )
    forged = portal.browser.get(EVENTS, params={"cursor": "forged"})

    shown = re.findall(r"Event (\d+)<", first.text) + re.findall(r"Event (\d+)<", second.text)
    assert sorted(int(n) for n in shown) == list(range(60))
    assert len(set(shown)) == 60
    assert second.text.startswith('<section id="event-list"')
    assert forged.status_code == 400


def test_r_svc_2_a_customer_not_serviced_is_said_next_to_the_filter(portal: Portal) -> None:
    portal.browser.sign_in("sam")

    page = portal.browser.get(EVENTS, params={"customer_id": "C2"})

    assert page.status_code == 404
    assert 'id="customer-id"' in page.text  # the filter is still there to correct
    assert "Fan failed" not in page.text
    assert "No customer" in section(page.text, "event-list")


def test_r_svc_1_a_reseller_gets_403_for_the_event_list(portal: Portal) -> None:
    portal.browser.sign_in("rita")

    page = portal.browser.get(f"/portal/partners/{RESELLER}/service-events")

    assert page.status_code == 403
    assert "R-SVC-1" in page.text
    assert "PSU failed" not in page.text


def test_r_lnk_1_another_partners_event_list_is_not_found(portal: Portal) -> None:
    portal.browser.sign_in("sam")

    page = portal.browser.get(f"/portal/partners/{OTHER}/service-events")

    assert page.status_code == 404
    assert "Fan failed" not in page.text


def test_r_svc_2_all_customers_tiles_link_to_the_event_list(portal: Portal) -> None:
    portal.browser.sign_in("sam")

    page = portal.browser.get(f"/portal/partners/{SERVICE}/customers")
    listing = portal.browser.get(EVENTS, params={"customer_id": "C1"})

    assert f'href="{EVENTS}?customer_id=C1"' in page.text
    assert listing.status_code == 200
