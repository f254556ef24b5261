"""R-ALR-1, R-ALR-2, R-ALR-4 over HTTP: alerts raised, repair cases submitted, and the
queues and alert lists the policies' decisions fill."""

from __future__ import annotations

from typing import Any

import pytest

from tests.scenarios import event_count
from tests.unit.http_client import problem_of
from tests.unit.http_holding_world import CSDP, LOC, SERVICE_LOC, World, bearer, wait_for, world


def raise_alert(w: World, serial: str, alert_id: str, token: str = "feed", **headers: str) -> Any:
    """An alert raised over the API; the answer."""
    body = {"alert_id": alert_id, "severity": "critical", "message": f"Battery of {serial}"}
    return w.api.post(f"/devices/{serial}/alerts", json=body, headers=bearer(token, **headers))


def submit(w: World, serial: str, alert_id: str, case_id: str, token: str, **extra: str) -> Any:
    """A repair case submitted over the API; the answer."""
    body = {"alert_id": alert_id, "case_id": case_id, **extra}
    return w.api.post(f"/devices/{serial}/repair-cases", json=body, headers=bearer(token))


def items(answer: Any, *fields: str) -> list[tuple[Any, ...]]:
    """The chosen fields of each item of a page."""
    assert answer.status_code == 200, answer.text
    return [tuple(item[f] for f in fields) for item in answer.json()["items"]]


def test_r_alr_1_an_alert_reaches_the_end_user_whose_case_goes_to_hp_for_a_reseller() -> None:
    """R-ALR-1, R-ALR-2: a PC in a reseller's holding tenant: pop-up to the end user; the
    case it submits waits unrouted, then sits in HP customer support's queue."""
    w = world()
    raised = raise_alert(w, "PC1", "A1")
    told = w.api.get(
        "/operations/alerts?audience=end_user", headers={**bearer("ops"), **w.decide()}
    )

    case = submit(w, "PC1", "A1", "K1", "pc1-user")
    unrouted = w.api.get(
        "/operations/repair-cases/unrouted", headers={**bearer("ops"), **wait_for(case)}
    )
    decided = w.decide()
    queue = w.api.get(
        "/operations/repair-queues/hp_customer_support", headers={**bearer("ops"), **decided}
    )
    after = w.api.get("/operations/repair-cases/unrouted", headers=bearer("ops"))

    assert (raised.status_code, raised.json()) == (
        201,
        {"serial": "PC1", "alert_id": "A1", "severity": "critical"},
    )
    [(alert_id, reason)] = items(told, "alert_id", "reason")
    assert alert_id == "A1"
    assert reason.startswith("R-ALR-1")
    assert (case.status_code, case.json()["state"]) == (201, "submitted")
    assert items(unrouted, "serial", "case_id", "source") == [("PC1", "K1", "self_service")]
    [(case_id, partner, reason)] = items(queue, "case_id", "partner", "reason")
    assert (case_id, partner) == ("K1", None)
    assert f"partner {LOC} is a reseller" in reason
    assert items(after, "case_id") == []


def test_r_alr_2_a_service_partners_case_is_in_its_csdp_queue_and_nobody_elses() -> None:
    """R-ALR-2, R-SVC-1: the service partner reads its CSDP queue; a reseller may not (403),
    another partner's Location ID is not found (404)."""
    w = world(service_pcs=("SP1",))
    raise_alert(w, "SP1", "A9", token="ops")
    submit(w, "SP1", "A9", "K9", "sp1-user")
    decided = w.decide()

    own = w.api.get(f"/partners/{SERVICE_LOC}/csdp-queue", headers={**bearer("otto"), **decided})
    queue = w.api.get(f"/operations/repair-queues/{CSDP}", headers=bearer("ops"))
    reseller = w.api.get(f"/partners/{LOC}/csdp-queue", headers=bearer("anna"))
    foreign = w.api.get(f"/partners/{LOC}/csdp-queue", headers=bearer("otto"))

    assert items(own, "serial", "case_id", "partner") == [("SP1", "K9", SERVICE_LOC)]
    assert items(queue, "case_id") == [("K9",)]
    assert (reseller.status_code, problem_of(reseller)["rule"]) == (403, "R-SVC-1")
    assert (foreign.status_code, problem_of(foreign)["type"]) == (404, "/problems/not-found")


def test_r_alr_4_with_notifications_off_the_partner_reads_the_alert_not_the_end_user() -> None:
    """R-ALR-4: a dashboard that switched pop-ups off: the alert is told to its partner."""
    w = world()
    dashboard = w.dashboard()
    w.transfer(["PC2"], w.holding_tenant(), dashboard, "T1")
    w.api.put(
        f"/partners/{LOC}/dashboards/{dashboard}/self-service-notifications",
        json={"on": False},
        headers=bearer("anna"),
    )
    raise_alert(w, "PC1", "A1")
    raise_alert(w, "PC2", "A2")
    decided = w.decide()

    partner = w.api.get(f"/partners/{LOC}/alerts", headers={**bearer("ben"), **decided})
    ops = w.api.get(f"/operations/alerts?partner={LOC}", headers=bearer("ops"))
    other = w.api.get(f"/partners/{SERVICE_LOC}/alerts", headers=bearer("otto"))

    [(serial, alert_id, reason)] = items(partner, "serial", "alert_id", "reason")
    assert (serial, alert_id) == ("PC2", "A2")
    assert reason.startswith("R-ALR-4")
    assert items(ops, "alert_id") == [("A2",)]
    assert items(other, "alert_id") == []


@pytest.mark.parametrize(
    ("token", "serial", "source", "status"),
    [
        ("pc1-user", "PC2", "self_service", 404),  # a PC the end user does not work on
        ("pc1-user", "PC1", "insight_rs", 403),  # Insight RS cases come from the feed
        ("anna", "PC1", "self_service", 403),  # a partner never submits cases
        ("globex", "PC1", "self_service", 404),  # not the customer's device
    ],
)
def test_r_alr_1_repair_cases_only_for_ones_own_pc(
    token: str, serial: str, source: str, status: int
) -> None:
    """R-ALR-1: end users and customers submit only for their own PCs; nothing recorded."""
    w = world()
    raise_alert(w, "PC1", "A1")
    raise_alert(w, "PC2", "A2")
    events = event_count(w.fleet)

    answer = submit(w, serial, f"A{serial[-1]}", "K1", token, source=source)

    assert answer.status_code == status
    assert problem_of(answer)["type"] == "/problems/" + (
        "not-found" if status == 404 else "forbidden"
    )
    assert event_count(w.fleet) == events


def test_r_alr_1_alerts_come_from_the_feed_or_operations_once_per_alert_id() -> None:
    """R-ALR-1: a partner may not raise one (403); the same alert id again is a 409."""
    w = world()
    raise_alert(w, "PC1", "A1")

    partner = raise_alert(w, "PC1", "A2", token="anna")
    again = raise_alert(w, "PC1", "A1", token="ops")
    unknown = raise_alert(w, "NOPE", "A3")

    assert (partner.status_code, problem_of(partner)["type"]) == (403, "/problems/forbidden")
    assert (again.status_code, problem_of(again)["detail"]) == (
        409,
        "Alert A1 was already raised for device PC1.",
    )
    assert (unknown.status_code, problem_of(unknown)["detail"]) == (
        404,
        "No device with serial number 'NOPE'.",
    )


def test_r_alr_1_raising_an_alert_again_under_its_idempotency_key_replays_the_answer() -> None:
    """R-ALR-1: the retried request answers the first 201 and records nothing."""
    w = world()
    first = raise_alert(w, "PC1", "A1", idempotency_key='"alert-A1"')
    events = event_count(w.fleet)

    again = raise_alert(w, "PC1", "A1", idempotency_key='"alert-A1"')

    assert (again.status_code, again.json()) == (201, first.json())
    assert event_count(w.fleet) == events


@pytest.mark.parametrize(
    ("token", "url", "status"),
    [
        ("anna", "/operations/alerts", 403),
        ("anna", "/operations/repair-cases/unrouted", 403),
        ("otto", f"/operations/repair-queues/{CSDP}", 403),
        ("ops", f"/partners/{LOC}/alerts", 403),
        ("ops", "/operations/repair-queues/nowhere", 422),
        ("ops", "/operations/alerts?audience=everyone", 422),
    ],
)
def test_r_alr_2_queues_are_operations_and_alert_lists_partners(
    token: str, url: str, status: int
) -> None:
    """R-ALR-2: the queues of every destination are for HP/HPE operations; a partner's own
    alerts for its users; an unknown destination or audience is an invalid field."""
    answer = world(pcs=()).api.get(url, headers=bearer(token))

    assert (answer.status_code, problem_of(answer)["status"]) == (status, status)
