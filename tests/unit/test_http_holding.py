"""R-HLD-1…3, R-ALR-3, R-ALR-4, R-PAR-4 over HTTP: the holding tenant, customer dashboards,
transfers and their reversal, cPIN enrolment, missing-device requests."""

from __future__ import annotations

import re

import pytest
from structlog.testing import capture_logs

from domain import CustomerGroup
from handlers.devices import PartnerChoice
from tests.actors import customer
from tests.scenarios import event_count, servers
from tests.unit.http_client import problem_of
from tests.unit.http_holding_world import LOC, SERVICE_LOC, bearer, wait_for, world

RULE = re.compile(r"^R-[A-Z]{3}-\d+")


def serials(answer: object) -> list[str]:
    """The serial numbers of a page of PCs."""
    return [pc["serial"] for pc in answer.json()["items"]]  # type: ignore[attr-defined]


def test_r_hld_3_a_partner_transfers_pcs_into_a_dashboard_and_reverses_it() -> None:
    """R-HLD-1, R-HLD-3, R-ALR-3: unassigned PCs, a dashboard, a transfer in and one back."""
    w = world()
    holding = w.holding_tenant()
    pcs = f"/partners/{LOC}/holding-tenant/pcs"
    before = w.api.get(pcs, headers=bearer("ben", partnerfleet_wait_for="1"))
    dashboard = w.dashboard()

    moved = w.transfer(["PC1", "PC2"], holding, dashboard, "T1")
    after_move = w.api.get(pcs, headers={**bearer("ben"), **wait_for(moved)})
    back = w.transfer(["PC2"], dashboard, holding, "T1-back")
    after_back = w.api.get(pcs, headers={**bearer("ben"), **wait_for(back)})
    settings = w.api.get(f"/partners/{LOC}/dashboards/{dashboard}", headers=bearer("ben"))

    assert serials(before) == ["PC1", "PC2", "PC3"]
    assert (moved.status_code, moved.json()["serials"]) == (201, ["PC1", "PC2"])
    assert serials(after_move) == ["PC3"]
    assert back.status_code == 201
    assert serials(after_back) == ["PC2", "PC3"]
    body = settings.json()
    assert (body["pcs"], body["premium_pcs"], body["self_service_notifications"]) == (1, 1, True)
    assert settings.headers["etag"].startswith(f'"{dashboard}.')


def test_r_hld_3_pcs_of_the_holding_tenant_are_paged_with_a_cursor() -> None:
    """R-HLD-1: a page of 2 and the next one, through the opaque cursor."""
    w = world()
    url = f"/partners/{LOC}/holding-tenant/pcs?limit=2"
    first = w.api.get(url, headers=bearer("anna", partnerfleet_wait_for="1"))

    second = w.api.get(f"{url}&cursor={first.json()['next_cursor']}", headers=bearer("anna"))

    assert serials(first) == ["PC1", "PC2"]
    assert (serials(second), second.json()["next_cursor"]) == (["PC3"], None)


@pytest.mark.parametrize(
    ("token", "status"), [("otto", 404), ("ops", 403), ("acme", 403), ("pc1-user", 403)]
)
def test_r_par_4_only_its_partner_sees_a_holding_tenant(token: str, status: int) -> None:
    """R-PAR-4: another partner gets 404 (it cannot tell the tenant exists); other roles 403."""
    w = world()

    answer = w.api.get(f"/partners/{LOC}/holding-tenant/pcs", headers=bearer(token))

    assert answer.status_code == status
    assert problem_of(answer)["type"] == (
        "/problems/not-found" if status == 404 else "/problems/forbidden"
    )


def test_r_hld_3_another_partners_dashboard_is_not_found_to_read_or_transfer_into() -> None:
    """R-HLD-3: Otto's dashboard, named by Anna: 404 for the read and for the transfer."""
    w = world()
    theirs = w.dashboard(SERVICE_LOC, "C2")

    read = w.api.get(f"/partners/{LOC}/dashboards/{theirs}", headers=bearer("anna"))
    moved = w.transfer(["PC1"], w.holding_tenant(), theirs, "T1")

    assert (read.status_code, moved.status_code) == (404, 404)
    assert problem_of(moved)["detail"] == f"Partner {LOC} has no tenant {theirs}."


def test_r_hld_3_a_customer_group_without_a_dashboard_is_no_dashboard_to_read() -> None:
    """R-HLD-3: the group a customer's link made (R-LNK-5) has no dashboard settings yet."""
    w = world(pcs=())
    w.fleet.register_devices(customer("C1"), "C1", servers("S1"), PartnerChoice(location_id=LOC))
    group_id = CustomerGroup.id_for(LOC, "C1")

    answer = w.api.get(f"/partners/{LOC}/dashboards/{group_id}", headers=bearer("anna"))

    assert answer.status_code == 404
    assert problem_of(answer)["detail"] == f"No customer dashboard {group_id}."


def test_r_hld_3_a_transfer_from_where_the_pc_is_not_is_refused_and_records_nothing() -> None:
    """R-HLD-3: each transfer has one source; a PC not in it is a 409 naming the PC."""
    w = world()
    dashboard = w.dashboard()
    events = event_count(w.fleet)

    answer = w.transfer(["PC1"], dashboard, w.holding_tenant(), "T1")

    assert answer.status_code == 409
    assert problem_of(answer)["detail"] == "PC PC1 is not in the transfer's source."
    assert event_count(w.fleet) == events


def test_r_alr_4_notifications_are_switched_off_under_if_match_and_a_stale_tag_is_412() -> None:
    """R-ALR-4: off for a dashboard with a Premium PC; the old ETag no longer matches."""
    w = world()
    dashboard = w.dashboard()
    w.transfer(["PC1"], w.holding_tenant(), dashboard, "T1")
    url = f"/partners/{LOC}/dashboards/{dashboard}"
    tag = w.api.get(url, headers=bearer("anna")).headers["etag"]

    off = w.api.put(
        f"{url}/self-service-notifications",
        json={"on": False},
        headers=bearer("anna", if_match=tag),
    )
    stale = w.api.put(
        f"{url}/self-service-notifications", json={"on": True}, headers=bearer("anna", if_match=tag)
    )
    now = w.api.get(url, headers=bearer("anna"))

    assert (off.status_code, off.json()) == (200, {"dashboard_id": dashboard, "on": False})
    assert off.headers["etag"] == now.headers["etag"] != tag
    assert (stale.status_code, problem_of(stale)["type"]) == (412, "/problems/precondition-failed")
    assert now.json()["self_service_notifications"] is False


def test_r_alr_4_the_holding_tenant_and_an_empty_dashboard_cannot_switch_them_off() -> None:
    """R-ALR-4: not for the holding tenant; not before a Premium PC is in the dashboard."""
    w = world()
    dashboard = w.dashboard()

    tenant = w.api.put(
        f"/partners/{LOC}/dashboards/{w.holding_tenant()}/self-service-notifications",
        json={"on": False},
        headers=bearer("ben"),
    )
    empty = w.api.put(
        f"/partners/{LOC}/dashboards/{dashboard}/self-service-notifications",
        json={"on": False},
        headers=bearer("ben"),
    )

    assert (tenant.status_code, problem_of(tenant)["type"]) == (409, "/problems/rule-refused")
    assert "holding tenant cannot be switched off" in problem_of(tenant)["detail"]
    assert (empty.status_code, problem_of(empty)["type"]) == (409, "/problems/rule-refused")


def test_r_hld_3_a_customer_enrols_a_pc_with_its_cpin_and_nothing_repeats_the_cpin() -> None:
    """R-HLD-3: the right cPIN enrols the PC into the dashboard; no answer and no log line
    carries the cPIN."""
    w = world(pcs=())

    with capture_logs() as logs:
        dashboard = w.dashboard(cpin="SECRET-4711")
        enrolled = w.api.post(
            f"/customers/C1/dashboards/{dashboard}/pcs",
            json={"cpin": "SECRET-4711", "serial": "PCX", "care_plan": "premium"},
            headers=bearer("acme"),
        )
    settings = w.api.get(f"/partners/{LOC}/dashboards/{dashboard}", headers=bearer("anna"))

    assert enrolled.status_code == 201
    assert enrolled.json() == {"serial": "PCX", "dashboard_id": dashboard, "customer_id": "C1"}
    assert settings.json()["pcs"] == 1
    assert "SECRET-4711" not in enrolled.text + settings.text
    assert [line["event"] for line in logs if line.get("command")] == ["command", "command"]
    assert "SECRET-4711" not in repr(logs)


@pytest.mark.parametrize(
    ("token", "customer", "cpin", "status", "kind"),
    [
        ("acme", "C1", "0000", 403, "forbidden"),  # the wrong cPIN
        ("globex", "C1", "4711", 404, "not-found"),  # another customer's path
        ("globex", "C2", "4711", 404, "not-found"),  # its own path, C1's dashboard
        ("anna", "C1", "4711", 403, "forbidden"),  # a partner never enrols by cPIN
    ],
)
def test_r_hld_3_enrolment_refusals(
    token: str, customer: str, cpin: str, status: int, kind: str
) -> None:
    """R-HLD-3: only the dashboard's own customer, with its cPIN; nothing recorded otherwise."""
    w = world(pcs=())
    dashboard = w.dashboard()
    events = event_count(w.fleet)

    answer = w.api.post(
        f"/customers/{customer}/dashboards/{dashboard}/pcs",
        json={"cpin": cpin, "serial": "PCX"},
        headers=bearer(token),
    )

    assert (answer.status_code, problem_of(answer)["type"]) == (status, f"/problems/{kind}")
    assert event_count(w.fleet) == events


def test_r_hld_3_a_too_short_cpin_is_a_422_naming_the_field_not_its_value() -> None:
    """R-HLD-3: a cPIN has at least 4 characters; the refusal never repeats it."""
    w = world(pcs=())

    answer = w.api.post(
        f"/partners/{LOC}/dashboards",
        json={"customer_id": "C1", "customer_name": "ACME", "cpin": "9x7"},
        headers=bearer("anna"),
    )

    [error] = problem_of(answer)["errors"]
    assert (answer.status_code, error["field"]) == (422, "cpin")
    assert "9x7" not in answer.text
    # Session 21: pydantic's words for a SecretStr were "Value should have at least 4 items
    # after validation, not 3": items, not characters, and the secret's length told back.
    assert error["message"] == "Should have at least 4 characters"


def test_r_hld_3_creating_a_dashboard_again_with_its_idempotency_key_replays_the_answer() -> None:
    """R-HLD-3: the same key and body give the first answer and record nothing new."""
    w = world(pcs=())
    body = {"customer_id": "C1", "customer_name": "ACME", "cpin": "4711"}
    headers = bearer("anna", idempotency_key='"dash-C1"')
    first = w.api.post(f"/partners/{LOC}/dashboards", json=body, headers=headers)
    events = event_count(w.fleet)

    again = w.api.post(f"/partners/{LOC}/dashboards", json=body, headers=headers)
    plain = w.api.post(f"/partners/{LOC}/dashboards", json=body, headers=bearer("anna"))

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["partnerfleet-position"] == first.headers["partnerfleet-position"]
    assert event_count(w.fleet) == events
    assert (plain.status_code, problem_of(plain)["detail"]) == (
        409,
        "ACME already has a customer dashboard.",
    )


def test_r_hld_2_open_missing_device_requests_for_the_partner_and_for_operations() -> None:
    """R-HLD-2: a partner lists its own open requests; operations every partner's."""
    w = world(pcs=())
    for token, location in (("anna", LOC), ("otto", SERVICE_LOC)):
        w.api.post(
            f"/partners/{location}/missing-device-requests",
            json={"request_id": f"R-{location}", "serials": ["PC7"]},
            headers=bearer(token),
        )
    w.api.post(
        f"/partners/{SERVICE_LOC}/missing-device-requests/R-{SERVICE_LOC}/resolution",
        json={"resolution": "found"},
        headers=bearer("ops"),
    )
    late = w.api.post(
        f"/partners/{LOC}/missing-device-requests",
        json={"request_id": "R-late", "serials": ["PC8"]},
        headers=bearer("anna"),
    )

    own = w.api.get(
        f"/partners/{LOC}/missing-device-requests", headers={**bearer("ben"), **wait_for(late)}
    )
    everyone = w.api.get(
        "/operations/missing-device-requests", headers={**bearer("ops"), **wait_for(late)}
    )
    refused = w.api.get("/operations/missing-device-requests", headers=bearer("anna"))

    assert [(r["request_id"], r["serials"]) for r in own.json()["items"]] == [
        ("R-LOC-1", ["PC7"]),
        ("R-late", ["PC8"]),
    ]
    assert [r["location_id"] for r in everyone.json()["items"]] == [LOC, LOC]
    assert (refused.status_code, problem_of(refused)["type"]) == (403, "/problems/forbidden")


def test_r_hld_3_every_route_of_the_group_names_its_rules_and_documents_problems() -> None:
    """R-HLD-1…3, R-ALR-1…4: each operation's description starts with a rule ID."""
    paths = world(pcs=()).api.get("/openapi.json").json()["paths"]
    tags = {"holding tenant and dashboards", "alerts and repair cases", "intake"}

    operations = [op for ops in paths.values() for op in ops.values() if tags & set(op["tags"])]

    assert len(operations) == 18
    assert all(RULE.match(op["description"]) for op in operations)
    assert all("application/problem+json" in op["responses"]["404"]["content"] for op in operations)
