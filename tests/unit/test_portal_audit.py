"""The portal's consent audit pages (issue 10), without a browser: "was consent in effect
for device D and partner P at time T?" with the records it rests on and later corrections,
a device's / customer's / partner's history paged, its JSON Lines and CSV downloads under
the session, and corrections with a reason (R-CON-3, R-CON-4). The world is
tests/unit/audit_http.py's: S1 of C1 granted, withdrawn and granted again for LOC-1."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from infra.web.pages import audit
from projections.consent_queries import Selection, history
from tests.scenarios import event_count
from tests.scopes import AUDIT
from tests.unit.audit_http import CLAIMS, world
from tests.unit.portal_world import Portal, open_portal


@pytest.fixture
def portal() -> Iterator[Portal]:
    """The audit world's portal (tokens: auditor, ops, anna, acme ...)."""
    opened = open_portal(world(), CLAIMS)
    yield opened
    opened.close()


def s1_records(portal: Portal) -> list[dict[str, object]]:
    with portal.views.db.transaction() as tx:
        return history(tx, AUDIT, Selection(serial="S1")).rows


def ask(portal: Portal, **params: str) -> str:
    answer = portal.browser.get("/portal/audit", params=params)
    assert answer.status_code == 200, answer.text
    text: str = answer.text
    return text


def serials(page: str) -> set[str]:
    """The device serials of the record rows shown (not of the rest of the markup)."""
    return set(re.findall(r'<tr id="record-\d+">.*?</time></td>\s*<td>([^<\s]+)', page, re.S))


def answer_of(html: str) -> str:
    return html.split('id="answer"')[1].split("</section>", maxsplit=1)[0]


def test_r_con_3_without_a_session_the_audit_page_sends_to_sign_in(portal: Portal) -> None:
    answer = portal.browser.get("/portal/audit")

    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/portal/sign-in?next=%2Faudit")


def test_r_con_3_the_form_defaults_to_now_in_utc(portal: Portal) -> None:
    portal.browser.sign_in("auditor")

    page = portal.browser.get("/portal/audit")

    assert page.status_code == 200
    assert re.search(
        r'id="at" name="at" type="datetime-local"[^>]*value="\d{4}-\d\d-\d\dT', page.text
    )
    assert 'id="zone" name="zone" value="UTC"' in page.text
    assert 'id="answer"' not in page.text
    assert page.text.count("<h1>") == 1


def test_r_con_3_between_a_withdrawal_and_a_re_grant_consent_was_not_in_effect(
    portal: Portal,
) -> None:
    """R-CON-3: at the grant: yes; at the withdrawal: no, resting on the withdrawal and the
    link; at the re-grant: yes again."""
    _, granted, withdrawn, regranted = (str(r["at"]) for r in s1_records(portal))
    portal.browser.sign_in("auditor")

    yes, no, again = (
        answer_of(ask(portal, serial="S1", partner="LOC-1", at=moment, zone="UTC"))
        for moment in (granted, withdrawn, regranted)
    )

    assert "Yes: consent was in effect for S1 and LOC-1" in yes
    assert "No: consent was not in effect for S1 and LOC-1" in no
    assert "consent withdrawn" in no
    assert "linked" in no
    assert "Yes: consent was in effect" in again


def test_r_con_3_a_local_time_is_read_in_the_zone_given(portal: Portal) -> None:
    """R-CON-3: the withdrawal's instant written as Berlin wall-clock time is the same answer."""
    withdrawn = datetime.fromisoformat(str(s1_records(portal)[2]["at"]))
    berlin = withdrawn.astimezone(ZoneInfo("Europe/Berlin")).replace(tzinfo=None)
    portal.browser.sign_in("auditor")

    page = ask(portal, serial="S1", partner="LOC-1", at=berlin.isoformat(), zone="Europe/Berlin")

    assert "No: consent was not in effect" in answer_of(page)
    assert withdrawn.strftime("%Y-%m-%dT%H:%M:%S") in answer_of(page)


def test_r_con_3_a_time_given_with_an_offset_is_shown_in_the_zone_field(portal: Portal) -> None:
    """The datetime-local field cannot show an offset: it shows the same instant's wall clock."""
    portal.browser.sign_in("auditor")

    page = ask(portal, serial="S1", partner="LOC-1", at="2030-01-01T12:00:00Z", zone="+02:00")

    assert 'value="2030-01-01T14:00:00"' in page
    assert "at 2030-01-01T12:00:00.000000Z" in answer_of(page)


def test_r_con_4_a_later_correction_is_listed_beside_the_answer(portal: Portal) -> None:
    """R-CON-4: a correction of the grant in effect is listed, not rewriting the answer."""
    granted = s1_records(portal)[1]
    portal.browser.sign_in("auditor")
    portal.browser.post_form(
        "/portal/audit/devices/S1/consent-corrections",
        {"corrects_version": str(granted["version"]), "reason": "Signed on paper only"},
    )

    page = ask(portal, serial="S1", partner="LOC-1", at=str(granted["at"]), zone="UTC")

    later = answer_of(page).split("Corrections recorded later")[1]
    assert "Signed on paper only" in later
    assert "Yes: consent was in effect" in answer_of(page)


@pytest.mark.parametrize(
    ("params", "status", "words"),
    [
        ({"serial": "NOPE", "partner": "LOC-1"}, 404, "No device with serial number 'NOPE'"),
        ({"serial": "S1", "partner": "LOC-1", "zone": "Mars/Olympus"}, 422, "Mars/Olympus"),
        ({"serial": "S1", "partner": "LOC-1", "zone": "+25:00"}, 422, "+25:00"),
        ({"serial": "S1", "partner": "LOC-1", "at": "yesterday"}, 422, "yesterday"),
        ({"serial": "S1", "partner": "LOC-1", "at": "1700000000"}, 422, "1700000000"),
        ({"serial": "S1", "partner": "LOC-1", "at": "20260601"}, 422, "20260601"),
    ],
    ids=["unknown device", "unknown zone", "bad offset", "not a time", "digits", "ISO basic"],
)
def test_r_con_3_a_question_that_cannot_be_answered_says_why_next_to_the_form(
    portal: Portal, params: dict[str, str], status: int, words: str
) -> None:
    portal.browser.sign_in("auditor")

    page = portal.browser.get("/portal/audit", params=params)

    assert page.status_code == status
    assert 'role="alert"' in page.text
    assert words in html.unescape(page.text)
    assert 'id="serial" name="serial"' in page.text  # the form stays, with what was given
    assert 'id="answer"' not in page.text


@pytest.mark.parametrize("who", ["anna", "acme"])
def test_r_con_4_partners_and_customers_may_not_open_the_audit_pages(
    portal: Portal, who: str
) -> None:
    portal.browser.sign_in(who)

    pages = [
        portal.browser.get(path, params={"serial": "S1", "partner": "LOC-1"})
        for path in ("/portal/audit", "/portal/audit/history", "/portal/audit/history/export")
    ]

    assert [p.status_code for p in pages] == [403, 403, 403]
    assert all("granted" not in p.text for p in pages)


def test_r_con_4_an_auditor_may_not_open_a_partner_page(portal: Portal) -> None:
    portal.browser.sign_in("auditor")

    page = portal.browser.get("/portal/partners/LOC-1/customers")

    assert page.status_code == 403
    assert 'role="alert"' in page.text


def test_r_con_4_the_history_of_a_device_pages_in_store_order(
    portal: Portal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit, "PAGE_SIZE", 3)
    portal.browser.sign_in("auditor")

    first = portal.browser.get("/portal/audit/history", params={"serial": "S1"})
    link = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert link is not None
    second = portal.browser.get(link.group(1).replace("&amp;", "&"))
    forged = portal.browser.get("/portal/audit/history", params={"serial": "S2", "cursor": "x"})

    rows = re.findall(r'<tr id="record-(\d+)">', first.text + second.text)
    assert [int(r) for r in rows] == [r["position"] for r in s1_records(portal)]
    assert len(re.findall(r'<tr id="record-', first.text)) == 3
    assert 'rel="next"' not in second.text
    assert forged.status_code == 400


def test_r_con_4_an_operator_reads_a_partners_history_narrowed_to_a_customer(
    portal: Portal,
) -> None:
    portal.browser.sign_in("ops")

    page = portal.browser.get(
        "/portal/audit/history", params={"partner": "LOC-1", "customer_id": "C1"}
    )

    assert page.status_code == 200
    assert serials(page.text) == {"S1", "S2"}


def test_r_con_4_the_page_downloads_the_history_as_json_lines_and_csv_with_the_session(
    portal: Portal,
) -> None:
    portal.browser.sign_in("auditor")
    page = portal.browser.get("/portal/audit/history", params={"serial": "S1"})
    links = re.findall(r'href="(/portal/audit/history/export[^"]+)"', page.text)

    jsonl, csv = (portal.browser.get(link.replace("&amp;", "&")) for link in links)

    assert [r.status_code for r in (jsonl, csv)] == [200, 200]
    assert jsonl.headers["content-type"].startswith("application/jsonl")
    lines = [json.loads(line) for line in jsonl.text.splitlines()]
    assert [line["action"] for line in lines] == ["linked", "granted", "withdrawn", "granted"]
    assert csv.text.splitlines()[0].startswith("position,device_id,version,at,serial")
    assert len(csv.text.splitlines()) == 5
    assert csv.headers["content-disposition"] == 'attachment; filename="consent-history.csv"'


def test_r_con_4_an_export_of_an_unknown_device_is_a_404_page_before_any_byte(
    portal: Portal,
) -> None:
    portal.browser.sign_in("auditor")

    answer = portal.browser.get("/portal/audit/history/export", params={"serial": "NOPE"})

    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert "No device with serial number" in answer.text


def test_r_con_4_a_correction_with_a_reason_is_recorded_and_shown_in_the_history(
    portal: Portal,
) -> None:
    withdrawn = s1_records(portal)[2]
    portal.browser.sign_in("ops")
    page = portal.browser.get("/portal/audit/history", params={"serial": "S1"})
    assert 'name="corrects_version"' in page.text

    answer = portal.browser.post_form(
        "/portal/audit/devices/S1/consent-corrections",
        {"corrects_version": str(withdrawn["version"]), "reason": "Withdrawn by mistake"},
    )
    shown = portal.browser.get(answer.headers["location"])

    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/portal/audit/history?serial=S1")
    assert f"The correction of version {withdrawn['version']} is recorded." in shown.text
    assert "Withdrawn by mistake" in shown.text
    assert s1_records(portal)[-1]["reason"] == "Withdrawn by mistake"


def test_r_con_4_a_correction_without_the_csrf_token_is_refused_and_records_nothing(
    portal: Portal,
) -> None:
    portal.browser.sign_in("auditor")
    before = event_count(portal.fleet)

    answer = portal.browser.post(
        "/portal/audit/devices/S1/consent-corrections",
        data={"corrects_version": "2", "reason": "x", "csrf_token": "y" * 43},
    )

    assert answer.status_code == 403
    assert event_count(portal.fleet) == before


@pytest.mark.parametrize(
    ("who", "form", "status"),
    [
        ("anna", {"corrects_version": "2", "reason": "mine"}, 403),
        ("auditor", {"corrects_version": "2", "reason": "   "}, 409),
        ("auditor", {"corrects_version": "99", "reason": "no such record"}, 409),
        ("auditor", {"corrects_version": "0", "reason": "bad"}, 422),
    ],
    ids=["a partner", "a blank reason", "no such version", "version 0"],
)
def test_r_con_4_a_refused_correction_is_shown_and_records_nothing(
    portal: Portal, who: str, form: dict[str, str], status: int
) -> None:
    portal.browser.sign_in(who)
    before = event_count(portal.fleet)

    answer = portal.browser.post_form("/portal/audit/devices/S1/consent-corrections", form)

    assert answer.status_code == status
    assert 'role="alert"' in answer.text
    assert event_count(portal.fleet) == before
