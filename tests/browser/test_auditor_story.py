"""The auditor's seed story clicked through in Chromium, on the demo (its own server):

ACME's IT admin withdraws consent for one of its servers and, a few seconds later, grants
it again (R-CON-1, R-CON-3); the auditor asks "was consent in effect for this device and
its reseller?" at a moment between the withdrawal and the re-grant (no, resting on the
withdrawal's record), and at a moment after the re-grant (yes) (R-CON-3, R-CON-4).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from playwright.sync_api import Page, expect

from tests.browser.screens import Check, SignIn, sign_out
from tests.browser.support import screenshot

ACME_ADMIN = "it-admin@acme.example"
AUDITOR = "auditor@example.com"
SERIAL, PARTNER = "CZJ000001", "DEMO-RESELLER-1"  # consent granted by the demo (ACME's reseller)


def consent_cell(page: Page) -> str:
    """The consent column of the device's row in My IT Environment."""
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=SERIAL, exact=True))
    return row.inner_text()


def a_moment_passes() -> str:
    """A moment (UTC, whole seconds, as the form's datetime-local takes it) with at least a
    second of nothing on either side."""
    time.sleep(1.1)
    moment = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    time.sleep(1.1)
    return moment


def ask(page: Page, moment: str) -> None:
    """Ask the audit page about SERIAL and PARTNER at `moment` (UTC)."""
    question = page.get_by_role("region", name="Was consent in effect?")
    question.get_by_label("Device serial").fill(SERIAL)
    question.get_by_label("Partner Location ID").fill(PARTNER)
    question.get_by_label("Date and time").fill(moment)
    question.get_by_label("Time zone").fill("UTC")
    question.get_by_role("button", name="Ask").click()


def test_r_con_3_consent_at_a_past_time_between_a_withdrawal_and_a_re_grant(
    page: Page, sign_in: SignIn, axe: Check
) -> None:
    """R-CON-3, R-CON-4: the answer follows the records in effect at the moment asked."""
    sign_in(ACME_ADMIN)
    axe()
    page.get_by_label(f"Select {SERIAL}", exact=True).check()
    page.get_by_role("button", name="Withdraw", exact=True).click()
    axe()
    assert "Withdrawn" in consent_cell(page)
    between = a_moment_passes()
    page.get_by_label(f"Select {SERIAL}", exact=True).check()
    page.get_by_role("button", name="Grant (text").click()
    axe()
    assert "Granted" in consent_cell(page)
    after = a_moment_passes()
    sign_out(page)

    sign_in(AUDITOR)
    axe()
    ask(page, between)

    axe()
    answer = page.locator("#answer")
    expect(answer.get_by_role("heading", level=3)).to_contain_text(
        f"No: consent was not in effect for {SERIAL} and {PARTNER}"
    )
    deciding = answer.locator("table.records").first
    expect(deciding).to_contain_text("consent withdrawn")
    expect(deciding).to_contain_text(ACME_ADMIN)
    screenshot(page, "consent-audit-between-withdrawal-and-re-grant")

    ask(page, after)

    axe()
    expect(page.locator("#answer").get_by_role("heading", level=3)).to_contain_text(
        f"Yes: consent was in effect for {SERIAL} and {PARTNER}"
    )
