"""R-CON-3, R-CON-4, R-PAR-2 over HTTP: consent history, "in effect at T", corrections and
key claims (infra/http/routes/audit.py); the world is tests/unit/audit_http.py's."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from handlers import PartnerFleet
from tests.unit.audit_http import all_pages, api_of, read, world
from tests.unit.http_client import bearer, problem_of


@pytest.fixture
def fleet() -> PartnerFleet:
    """The world, in memory."""
    return world()


@pytest.fixture
def api(fleet: PartnerFleet) -> TestClient:
    """A client of the world."""
    return api_of(fleet)


# --- history -------------------------------------------------------------------------------


def test_r_con_4_an_auditor_pages_through_a_devices_history_in_store_order(
    api: TestClient, fleet: PartnerFleet
) -> None:
    """R-CON-3, R-CON-4: every record with who, when, which wording; pages of 3 follow on."""
    first = read(api, fleet, "/audit/consent-history", "auditor", serial="S1", limit=3)

    records = all_pages(api, fleet, "/audit/consent-history", "auditor", serial="S1", limit=3)

    assert len(first.json()["items"]) == 3
    assert first.json()["next_cursor"]
    assert [r["action"] for r in records] == ["linked", "granted", "withdrawn", "granted"]
    assert [r["text_version"] for r in records[1:]] == ["2024-01", "2024-01", "2025-06"]
    assert {r["principal"] for r in records[1:]} == {"admin@c1.example"}
    positions = [r["position"] for r in records]
    assert positions == sorted(set(positions))


def test_r_con_4_an_operator_reads_a_partners_history_narrowed_to_a_customer(
    api: TestClient, fleet: PartnerFleet
) -> None:
    """R-CON-4: the partner's link periods; `customer_id` narrows them; LOC-2's S9 is not there."""
    records = all_pages(
        api, fleet, "/audit/consent-history", "ops", partner="LOC-1", customer_id="C1"
    )

    assert {r["serial"] for r in records} == {"S1", "S2"}
    assert sum(r["action"] == "linked" for r in records) == 2


@pytest.mark.parametrize("name", ["anna", "otto", "acme"])
def test_r_con_4_partners_and_customers_may_not_read_the_audit_history(
    api: TestClient, fleet: PartnerFleet, name: str
) -> None:
    """R-CON-4 (docs/decisions.md, "Query scopes"): 403 for partner and customer roles."""
    answer = read(api, fleet, "/audit/consent-history", name, serial="S1")

    assert (answer.status_code, problem_of(answer)["type"]) == (403, "/problems/forbidden")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "query"),
        ({"serial": "S1", "since": "2026-01-01T00:00:00"}, "since"),
        ({"serial": "S1", "since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, ""),
    ],
    ids=["nothing named", "naive since", "until before since"],
)
def test_r_con_3_an_unanswerable_filter_is_422_naming_what_is_wrong(
    api: TestClient, fleet: PartnerFleet, params: dict[str, str], field: str
) -> None:
    """R-CON-3: name what to read, with moments that mean one instant, in order."""
    answer = read(api, fleet, "/audit/consent-history", "auditor", **params)

    problem = problem_of(answer)
    assert (answer.status_code, problem["type"]) == (422, "/problems/invalid-fields")
    assert field in json.dumps(problem["errors"])


def test_r_con_4_an_unknown_device_is_404(api: TestClient, fleet: PartnerFleet) -> None:
    """R-CON-4: "No device with serial number 'S404'."."""
    answer = read(api, fleet, "/audit/consent-history", "auditor", serial="S404")

    assert answer.status_code == 404
    assert problem_of(answer)["detail"] == "No device with serial number 'S404'."


def test_r_par_2_a_customer_reads_its_own_history_and_no_one_elses(
    api: TestClient, fleet: PartnerFleet
) -> None:
    """R-PAR-2, R-CON-3: acme sees C1's records only; C2, or C2's device, is not found."""
    own = all_pages(api, fleet, "/customers/C1/consent-history", "acme")
    other = read(api, fleet, "/customers/C2/consent-history", "acme")
    others_device = read(api, fleet, "/customers/C1/consent-history", "acme", serial="S9")
    auditor = read(api, fleet, "/customers/C1/consent-history", "auditor")

    assert {r["customer_id"] for r in own} == {"C1"}
    assert len(own) == 5
    assert [a.status_code for a in (other, others_device, auditor)] == [404, 404, 403]
    assert problem_of(others_device)["detail"] == "No device with serial number 'S9'."


# --- consent in effect ---------------------------------------------------------------------


def test_r_con_3_consent_in_effect_is_answered_for_any_past_moment(
    api: TestClient, fleet: PartnerFleet
) -> None:
    """R-CON-3: in effect after the first grant, not after the withdrawal, again after the
    second grant; never for a partner the device is not linked to."""
    records = all_pages(api, fleet, "/audit/consent-history", "auditor", serial="S1")
    moments = [r["at"] for r in records[1:]]  # granted, withdrawn, granted

    answers = [
        read(
            api, fleet, "/audit/consent-in-effect", "auditor", serial="S1", partner=p, at=at
        ).json()
        for p, at in [("LOC-1", m) for m in moments] + [("LOC-2", moments[-1])]
    ]

    assert [a["in_effect"] for a in answers] == [True, False, True, False]
    assert answers[0]["link"]["location_id"] == "LOC-1"
    assert [r["action"] for r in answers[0]["deciding_records"]] == ["granted", "linked"]
    assert answers[3]["partner_linked"] is False


def test_r_con_3_in_effect_needs_a_moment_with_an_offset_and_the_auditor(
    api: TestClient, fleet: PartnerFleet
) -> None:
    """R-CON-3: a naive `at` is 422 naming it; a customer may not ask (403)."""
    params = {"serial": "S1", "partner": "LOC-1"}

    naive = read(api, fleet, "/audit/consent-in-effect", "auditor", **params, at="2026-01-01")
    customer = read(
        api, fleet, "/audit/consent-in-effect", "acme", **params, at="2026-01-01T00:00:00Z"
    )

    assert naive.status_code == 422
    assert problem_of(naive)["errors"][0]["field"] == "at"
    assert customer.status_code == 403


# --- corrections -----------------------------------------------------------------------------


def correction(version: int, **changes: Any) -> dict[str, Any]:
    """A correction of the record at `version`."""
    return {"corrects_version": version, "reason": "signed on paper only", **changes}


def test_r_con_4_an_auditor_corrects_a_record_with_a_new_one_and_the_old_stays(
    api: TestClient, fleet: PartnerFleet
) -> None:
    """R-CON-4: 201 with the position; the history then holds the correction beside the
    record it corrects, with the auditor as principal and the reason."""
    before = all_pages(api, fleet, "/audit/consent-history", "auditor", serial="S1")
    granted = before[1]["version"]

    answer = api.post(
        "/audit/devices/S1/consent-corrections", json=correction(granted), headers=bearer("auditor")
    )

    position = answer.headers["partnerfleet-position"]
    after = api.get(
        "/audit/consent-history",
        params={"serial": "S1"},
        headers=bearer("auditor", partnerfleet_wait_for=position),
    ).json()["items"]
    assert answer.status_code == 201
    assert answer.json()["corrects_version"] == granted
    assert after[:4] == before
    assert (after[4]["action"], after[4]["corrects_version"]) == ("corrected", granted)
    assert (after[4]["principal"], after[4]["reason"]) == ("audit@example", "signed on paper only")
    assert after[4]["position"] == int(position)


def test_r_con_4_a_correction_sent_twice_with_one_key_is_recorded_once(
    api: TestClient, fleet: PartnerFleet
) -> None:
    """R-CON-4, issue 9: the same Idempotency-Key and body replay the first answer."""
    headers = bearer("ops", idempotency_key='"fix-S1-2"')

    first = api.post("/audit/devices/S1/consent-corrections", json=correction(3), headers=headers)
    head = fleet.recorder.max_notification_id()
    again = api.post("/audit/devices/S1/consent-corrections", json=correction(3), headers=headers)

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["partnerfleet-position"] == first.headers["partnerfleet-position"]
    assert fleet.recorder.max_notification_id() == head


@pytest.mark.parametrize(
    ("name", "serial", "body", "status", "kind"),
    [
        ("acme", "S1", correction(3), 403, "forbidden"),
        ("anna", "S1", correction(3), 403, "forbidden"),
        ("auditor", "S404", correction(3), 404, "not-found"),
        ("auditor", "S1", correction(99), 409, "rule-refused"),
        ("auditor", "S1", correction(3, reason="  "), 422, "invalid-fields"),
        ("auditor", "S1", correction(3, text_version="1999-01"), 409, "rule-refused"),
    ],
    ids=["customer", "partner", "unknown device", "no such record", "blank reason", "wording"],
)
def test_r_con_4_a_refused_correction_says_why_and_records_nothing(
    api: TestClient,
    fleet: PartnerFleet,
    name: str,
    serial: str,
    body: dict[str, Any],
    status: int,
    kind: str,
) -> None:
    """R-CON-4: only auditor or operator, of an existing record, with a reason."""
    head = fleet.recorder.max_notification_id()

    answer = api.post(
        f"/audit/devices/{serial}/consent-corrections", json=body, headers=bearer(name)
    )

    assert (answer.status_code, problem_of(answer)["type"]) == (status, f"/problems/{kind}")
    assert fleet.recorder.max_notification_id() == head


# --- operations and keys -----------------------------------------------------------------------


def test_r_par_1_an_operator_claims_the_stored_keys_and_an_auditor_may_not(
    api: TestClient,
) -> None:
    """R-PAR-1, R-PAR-3: 200 with no collisions for the operator; 403 for the auditor."""
    claimed = api.post("/operations/key-claims", headers=bearer("ops"))
    refused = api.post("/operations/key-claims", headers=bearer("auditor"))

    assert (claimed.status_code, claimed.json()) == (200, {"collisions": []})
    assert (refused.status_code, problem_of(refused)["type"]) == (403, "/problems/forbidden")


def test_the_audit_routes_are_documented_with_their_rule_ids(api: TestClient) -> None:
    """R-CON-3, R-CON-4: each operation's description starts with its rule IDs."""
    paths = api.get("/openapi.json").json()["paths"]
    ours = [
        op
        for path, ops in paths.items()
        if path.startswith(("/audit", "/operations")) or "consent-history" in path
        for op in ops.values()
    ]

    assert len(ours) >= 7  # the audit routes, and the customers' own history routes
    assert all(op["description"].startswith("R-") for op in ours)


def test_r_par_1_key_claims_sent_again_with_one_key_record_nothing_new(
    api: TestClient, fleet: PartnerFleet
) -> None:
    """R-PAR-1, issue 9: the Idempotency-Key of the claims replays the first answer."""
    headers = bearer("ops", idempotency_key='"claims-1"')
    first = api.post("/operations/key-claims", headers=headers)
    head = fleet.recorder.max_notification_id()

    again = api.post("/operations/key-claims", headers=headers)

    assert (again.status_code, again.json()) == (first.status_code, first.json())
    assert again.headers["partnerfleet-position"] == first.headers["partnerfleet-position"]
    assert fleet.recorder.max_notification_id() == head
