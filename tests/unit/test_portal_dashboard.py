"""The portal's customer dashboard (issue 10), without a browser: the devices linked to the
partner and why, the child groups the user may see, the admins shown to admins only, and the
actions (create, share and delete a child group; delete the customer group, refused with
every reason and the admins to contact), with and without htmx, and tenant isolation."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from handlers.access import Claims
from tests.scenarios import event_count
from tests.unit.access_world import EMPTY_GROUP, OTHER, OWN, world
from tests.unit.http_world import PRINCIPALS
from tests.unit.portal_world import Portal, open_portal

BOARD = f"/portal/partners/{OWN.loc}/customers/{OWN.group}"
EMPTY = f"/portal/partners/{OWN.loc}/customers/{EMPTY_GROUP}"
TOKENS = PRINCIPALS | {"cleo": Claims("cleo@LOC-1", "partner_user", OWN.loc)}


@pytest.fixture
def portal() -> Iterator[Portal]:
    """The access world: LOC-1's group of C1 has devices, Anna's unshared child group "g"
    (Racks) and admins Anna and Cleo; Ben is a plain user; LOC-1's group of C3 is empty."""
    opened = open_portal(world(), TOKENS)
    yield opened
    opened.close()


def section(html: str, element_id: str) -> str:
    return html.split(f'id="{element_id}"')[1].split("</section>", maxsplit=1)[0]


def child_names(html: str) -> list[str]:
    return re.findall(r'<li id="child-\d+">\s*<strong>([^<]+)</strong>', html)


def test_r_lnk_1_the_dashboard_lists_the_devices_linked_to_the_partner_and_why(
    portal: Portal,
) -> None:
    portal.browser.sign_in("anna")

    page = portal.browser.get(BOARD)

    assert page.status_code == 200
    assert page.text.count("<h1>") == 1
    devices = page.text.split('id="devices-heading"')[1].split("</section>")[0]
    assert f'href="/portal/partners/LOC-1/devices/{OWN.s("S")}"' in devices
    assert "linked to you as reseller" in devices
    assert "placed in this dashboard" in devices  # PD1, transferred from the holding tenant
    assert OTHER.s("S") not in page.text
    assert '<th scope="col">' in devices


def test_r_grp_3_the_admins_are_shown_to_an_admin_of_the_group(portal: Portal) -> None:
    portal.browser.sign_in("anna")

    page = portal.browser.get(BOARD)

    admins = section(page.text, "admins-heading")
    assert "anna@LOC-1" in admins
    assert "cleo@LOC-1" in admins
    assert child_names(page.text) == ["Racks"]


def test_r_grp_3_a_plain_user_sees_no_admins_no_actions_and_no_unshared_child_group(
    portal: Portal,
) -> None:
    portal.browser.sign_in("ben")

    page = portal.browser.get(BOARD)

    assert page.status_code == 200
    assert 'id="admins-heading"' not in page.text
    assert "cleo@LOC-1" not in page.text
    assert 'id="delete-group"' not in page.text
    assert child_names(page.text) == []  # R-GRP-1: Anna's group is not shared with Ben
    assert 'name="child_id"' not in page.text
    assert "Only the admins of this customer group" in page.text


def test_r_grp_1_create_a_child_group_without_javascript_posts_and_comes_back(
    portal: Portal,
) -> None:
    portal.browser.sign_in("anna")

    answer = portal.browser.post_form(
        f"{BOARD}/child-groups", {"name": "  Storage  ", "child_id": "new-1"}
    )
    page = portal.browser.get(BOARD)

    assert answer.status_code == 303
    assert answer.headers["location"] == BOARD
    assert child_names(page.text) == ["Racks", "Storage"]


def test_r_grp_1_create_with_htmx_swaps_the_child_groups_section(portal: Portal) -> None:
    portal.browser.sign_in("anna")

    answer = portal.browser.post_form(
        f"{BOARD}/child-groups", {"name": "Blades", "child_id": "new-2"}, htmx=True
    )

    assert answer.status_code == 200
    assert answer.text.startswith('<section id="child-groups"')
    assert child_names(answer.text) == ["Blades", "Racks"]


def test_r_grp_1_the_form_sent_twice_creates_one_group_the_second_refused_in_place(
    portal: Portal,
) -> None:
    portal.browser.sign_in("anna")
    form = {"name": "Blades", "child_id": "once"}
    portal.browser.post_form(f"{BOARD}/child-groups", form)
    before = event_count(portal.fleet)

    again = portal.browser.post_form(f"{BOARD}/child-groups", form)

    assert again.status_code == 409
    children = section(again.text, "child-groups")
    assert 'role="alert"' in children
    assert "already exists" in children
    assert child_names(again.text) == ["Blades", "Racks"]
    assert event_count(portal.fleet) == before


def test_r_grp_3_a_plain_user_creating_a_child_group_is_refused_and_nothing_recorded(
    portal: Portal,
) -> None:
    portal.browser.sign_in("ben")
    before = event_count(portal.fleet)

    answer = portal.browser.post_form(f"{BOARD}/child-groups", {"name": "X", "child_id": "x"})

    assert answer.status_code == 403
    assert "R-GRP-3" in section(answer.text, "child-groups")
    assert event_count(portal.fleet) == before


def test_r_grp_1_sharing_makes_the_child_group_visible_to_the_other_admin(
    portal: Portal,
) -> None:
    portal.browser.sign_in("cleo")
    hidden = portal.browser.get(BOARD)
    portal.browser.sign_in("anna")
    page = portal.browser.get(BOARD)
    assert '<option value="cleo@LOC-1">' in section(page.text, "child-groups")

    shared = portal.browser.post_form(
        f"{BOARD}/child-groups/g/shares", {"passport_id": "cleo@LOC-1"}
    )
    portal.browser.sign_in("cleo")
    seen = portal.browser.get(BOARD)

    assert child_names(hidden.text) == []
    assert shared.status_code == 303
    assert child_names(seen.text) == ["Racks"]
    assert "shared with you by anna@LOC-1" in seen.text


def test_r_grp_1_sharing_with_a_non_admin_is_refused_next_to_the_child_group(
    portal: Portal,
) -> None:
    portal.browser.sign_in("anna")
    before = event_count(portal.fleet)

    answer = portal.browser.post_form(
        f"{BOARD}/child-groups/g/shares", {"passport_id": "ben@LOC-1"}, htmx=True
    )

    assert answer.status_code == 403
    assert answer.text.startswith('<section id="child-groups"')
    item = answer.text.split('<li id="child-1">')[1].split("</li>")[0]
    assert "R-GRP-3" in item
    assert 'role="alert"' in item
    assert event_count(portal.fleet) == before


def test_r_grp_1_delete_a_child_group(portal: Portal) -> None:
    portal.browser.sign_in("anna")

    answer = portal.browser.post_form(f"{BOARD}/child-groups/g/delete")
    page = portal.browser.get(BOARD)

    assert answer.status_code == 303
    assert child_names(page.text) == []
    assert "No child group you can see." in page.text


def test_r_grp_2_a_refused_deletion_shows_every_reason_and_the_admins_to_contact(
    portal: Portal,
) -> None:
    portal.browser.sign_in("anna")
    before = event_count(portal.fleet)

    answer = portal.browser.post_form(f"{BOARD}/delete")

    assert answer.status_code == 409
    refusal = section(answer.text, "delete-group")
    assert 'role="alert"' in refusal
    reasons = re.findall(r"<li>([^<]+)</li>", refusal.split('class="reasons"')[1])
    assert len(reasons) == 2
    assert "device(s) are still linked" in reasons[0]
    assert "1 partner-created child group(s) remain" in reasons[1]
    assert "anna@LOC-1, cleo@LOC-1" in refusal
    assert "R-GRP-2" in refusal
    assert event_count(portal.fleet) == before


def test_r_grp_2_with_htmx_the_refusal_swaps_the_deletion_section(portal: Portal) -> None:
    portal.browser.sign_in("anna")

    answer = portal.browser.post_form(f"{BOARD}/delete", htmx=True)

    assert answer.status_code == 409
    assert answer.text.startswith('<section id="delete-group"')
    assert "cleo@LOC-1" in answer.text
    assert "<html" not in answer.text


def test_r_grp_2_an_empty_group_is_deleted_and_the_browser_goes_back_to_all_customers(
    portal: Portal,
) -> None:
    portal.browser.sign_in("anna")

    answer = portal.browser.post_form(f"{EMPTY}/delete")
    gone = portal.browser.get(EMPTY)
    listing = portal.browser.get(f"/portal/partners/{OWN.loc}/customers")

    assert answer.status_code == 303
    assert answer.headers["location"] == f"/portal/partners/{OWN.loc}/customers"
    assert gone.status_code == 404
    assert str(EMPTY_GROUP) not in listing.text


def test_r_grp_2_with_htmx_a_deletion_sends_the_browser_to_all_customers(
    portal: Portal,
) -> None:
    portal.browser.sign_in("anna")

    answer = portal.browser.post_form(f"{EMPTY}/delete", htmx=True)

    assert answer.status_code == 204
    assert answer.headers["HX-Location"] == f"/portal/partners/{OWN.loc}/customers"


def test_r_lnk_1_another_partners_group_is_not_found(portal: Portal) -> None:
    portal.browser.sign_in("anna")

    by_own_path = portal.browser.get(f"/portal/partners/{OWN.loc}/customers/{OTHER.group}")
    by_other_path = portal.browser.get(f"/portal/partners/{OTHER.loc}/customers/{OTHER.group}")

    assert by_own_path.status_code == 404
    assert by_other_path.status_code == 404
    assert OTHER.s("S") not in by_own_path.text + by_other_path.text
    assert "otto@LOC-2" not in by_own_path.text + by_other_path.text


def test_r_lnk_1_deleting_another_partners_group_is_not_found_and_records_nothing(
    portal: Portal,
) -> None:
    portal.browser.sign_in("anna")
    before = event_count(portal.fleet)

    answer = portal.browser.post_form(f"/portal/partners/{OWN.loc}/customers/{OTHER.group}/delete")

    assert answer.status_code == 404
    assert event_count(portal.fleet) == before


def test_r_par_2_a_customer_admin_may_not_open_a_dashboard(portal: Portal) -> None:
    portal.browser.sign_in("c1")

    page = portal.browser.get(BOARD)

    assert page.status_code == 403
    assert "Racks" not in page.text


def test_r_par_2_without_a_session_the_dashboard_sends_to_sign_in(portal: Portal) -> None:
    answer = portal.browser.get(BOARD)

    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/portal/sign-in?next=%2Fpartners%2FLOC-1")


FORMS = [
    (f"{BOARD}/child-groups", {"name": "X", "child_id": "x"}),
    (f"{BOARD}/child-groups/g/shares", {"passport_id": "cleo@LOC-1"}),
    (f"{BOARD}/child-groups/g/delete", {}),
    (f"{EMPTY}/delete", {}),
]


@pytest.mark.parametrize(("path", "form"), FORMS, ids=["create", "share", "delete", "group"])
def test_csrf_each_dashboard_form_without_the_token_is_refused_and_records_nothing(
    portal: Portal, path: str, form: dict[str, str]
) -> None:
    portal.browser.sign_in("anna")
    before = event_count(portal.fleet)

    answer = portal.browser.post(path, data=form)
    forged = portal.browser.post(path, data=form | {"csrf_token": "x" * 43})

    assert (answer.status_code, forged.status_code) == (403, 403)
    assert event_count(portal.fleet) == before


def test_r_con_2_a_placed_pc_not_linked_says_why_there_is_no_configuration_data(
    portal: Portal,
) -> None:
    portal.browser.sign_in("anna")

    page = portal.browser.get(f"/portal/partners/{OWN.loc}/devices/{OWN.s('PD')}")

    assert page.status_code == 200
    configuration = page.text.split('id="configuration"')[1].split("</section>")[0]
    assert "linked to you and its customer has granted consent" in configuration
    assert "placed in this dashboard" in page.text
