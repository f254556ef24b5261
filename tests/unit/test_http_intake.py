"""R-HLD-1, R-ALR-1 over HTTP: e2Open and alert batches beside the Kafka feeds, their
outcome, and the rejected reports HP/HPE operations read back."""

from __future__ import annotations

from typing import Any

import pytest

from tests.scenarios import event_count, report
from tests.unit.http_client import problem_of
from tests.unit.http_holding_world import LOC, World, bearer, wait_for, world

UNKNOWN = "LOC-NOWHERE"


def deliver(w: World, batch_id: str, reports: list[Any], token: str = "feed") -> Any:
    """An e2Open batch posted over the API; the answer."""
    body = {"batch_id": batch_id, "reports": reports}
    return w.api.post("/intake/e2open/batches", json=body, headers=bearer(token))


def mixed() -> list[Any]:
    """Two good reports, one malformed (no model), one for a partner nobody registered."""
    bad = {k: v for k, v in report("PC8").items() if k != "model"}
    return [report("PC6"), report("PC7"), bad, report("PC9", UNKNOWN)]


def test_r_hld_1_a_batch_lands_its_pcs_and_keeps_every_rejection_with_its_reason() -> None:
    """R-HLD-1: accepted PCs wait in the holding tenant; rejected reports are answered and
    listed for operations, each with its reason."""
    w = world(pcs=())

    answer = deliver(w, "B1", mixed())
    pcs = w.api.get(
        f"/partners/{LOC}/holding-tenant/pcs", headers={**bearer("anna"), **wait_for(answer)}
    )
    kept = w.api.get("/intake/e2open/rejected-reports?batch_id=B1", headers=bearer("ops"))

    outcome = answer.json()
    assert (answer.status_code, outcome["outcome"], outcome["accepted"]) == (
        200,
        "received",
        ["PC6", "PC7"],
    )
    assert [(r["index"], r["serial"]) for r in outcome["rejected"]] == [(2, "PC8"), (3, "PC9")]
    assert outcome["rejected"][0]["reason"] == "malformed report: model: Field required"
    assert outcome["rejected"][1]["reason"] == f"unknown partner Location ID {UNKNOWN}"
    assert [pc["serial"] for pc in pcs.json()["items"]] == ["PC6", "PC7"]
    listed = [(r["batch_id"], r["index"], r["reason"]) for r in kept.json()["items"]]
    assert listed == [
        ("B1", 2, outcome["rejected"][0]["reason"]),
        ("B1", 3, outcome["rejected"][1]["reason"]),
    ]


def test_r_hld_1_the_same_batch_again_answers_the_first_outcome_and_records_nothing() -> None:
    """R-HLD-1: the batch id is the idempotency key: a redelivery is recognised."""
    w = world(pcs=())
    first = deliver(w, "B1", mixed())
    events = event_count(w.fleet)

    again = deliver(w, "B1", mixed(), token="ops")

    assert again.json()["outcome"] == "redelivered"
    assert {k: again.json()[k] for k in ("accepted", "rejected")} == {
        k: first.json()[k] for k in ("accepted", "rejected")
    }
    assert event_count(w.fleet) == events


def test_r_hld_1_other_content_under_a_used_batch_id_is_refused_and_kept_as_rejected() -> None:
    """R-HLD-1: never a silent success: every report rejected, kept, listed for operations."""
    w = world(pcs=())
    deliver(w, "B1", [report("PC6")])

    refused = deliver(w, "B1", [report("PC7"), report("PC8")])
    kept = w.api.get(
        "/intake/e2open/rejected-reports", headers={**bearer("ops"), **wait_for(refused)}
    )

    body = refused.json()
    assert (refused.status_code, body["outcome"], body["accepted"]) == (200, "refused", [])
    reasons = {r["reason"] for r in body["rejected"]}
    assert reasons == {"batch id B1 was already received with different content"}
    assert [(r["serial"], r["fingerprint"] != "") for r in kept.json()["items"]] == [
        ("PC7", True),
        ("PC8", True),
    ]


def test_r_alr_1_an_alert_batch_raises_valid_alerts_and_rejects_the_rest() -> None:
    """R-ALR-1: alerts for known devices are raised; one for an unknown serial is rejected."""
    w = world(pcs=("PC1",))
    alerts = [
        {"serial": "PC1", "alert_id": "A1", "severity": "critical", "message": "Fan"},
        {"serial": "NOPE", "alert_id": "A2", "severity": "info", "message": "Disk"},
        {"serial": "PC1", "alert_id": "A3", "severity": "loud", "message": "Fan"},
    ]

    answer = w.api.post(
        "/intake/alerts/batches", json={"batch_id": "AB1", "alerts": alerts}, headers=bearer("feed")
    )

    body = answer.json()
    assert (answer.status_code, body["outcome"], body["accepted"]) == (200, "received", ["A1"])
    assert [(r["index"], r["serial"]) for r in body["rejected"]] == [(1, "NOPE"), (2, "PC1")]
    assert body["rejected"][0]["reason"] == "No device with serial number 'NOPE'."
    assert set(w.fleet.device("PC1").alerts) == {"A1"}


def test_r_hld_1_a_batch_over_one_mib_is_within_the_intake_bound() -> None:
    """R-HLD-1: /intake/ takes bodies up to 8 MiB; oversized reports are rejected one by one."""
    w = world(pcs=())
    huge = [report(f"PC{n}", model="x" * 60_000) for n in range(20)]

    answer = deliver(w, "B-big", huge)

    assert answer.status_code == 200
    assert len(answer.json()["rejected"]) == 20


@pytest.mark.parametrize(
    ("token", "body", "status", "kind"),
    [
        ("anna", {"batch_id": "B1", "reports": [{}]}, 403, "forbidden"),
        ("pc1-user", {"batch_id": "B1", "reports": [{}]}, 403, "forbidden"),
        ("feed", {"batch_id": "B1", "reports": []}, 422, "invalid-fields"),
        ("feed", {"batch_id": "", "reports": [{}]}, 422, "invalid-fields"),
        ("feed", {"reports": [{}]}, 422, "invalid-fields"),
    ],
)
def test_r_hld_1_only_a_feed_or_operations_delivers_a_whole_batch(
    token: str, body: dict[str, Any], status: int, kind: str
) -> None:
    """R-HLD-1: other roles 403; an empty batch or one without id is invalid; nothing kept."""
    w = world(pcs=())
    events = event_count(w.fleet)

    answer = w.api.post("/intake/e2open/batches", json=body, headers=bearer(token))

    assert (answer.status_code, problem_of(answer)["type"]) == (status, f"/problems/{kind}")
    assert event_count(w.fleet) == events


def test_r_hld_1_a_body_that_is_not_json_is_a_400() -> None:
    """R-HLD-1: a malformed body is refused whole before any report is read."""
    w = world(pcs=())

    answer = w.api.post(
        "/intake/e2open/batches",
        content=b'{"batch_id": "B1", "reports": [',
        headers={**bearer("feed"), "Content-Type": "application/json"},
    )

    assert (answer.status_code, problem_of(answer)["type"]) == (400, "/problems/malformed-request")


@pytest.mark.parametrize("token", ["anna", "auditor", "feed"])
def test_r_hld_1_rejected_reports_are_for_operations_only(token: str) -> None:
    """R-HLD-1: partners, auditors and the feed itself read no rejections (403)."""
    answer = world(pcs=()).api.get("/intake/e2open/rejected-reports", headers=bearer(token))

    assert (answer.status_code, problem_of(answer)["type"]) == (403, "/problems/forbidden")
