"""R-PAR-1, R-PAR-4, R-HLD-2 over HTTP: the partners router, the pattern of every resource."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.scenarios import in_memory_fleet
from tests.unit.http_client import bearer, client

RULE = re.compile(r"^R-[A-Z]{3}-\d+")


def test_r_par_4_a_partner_from_registration_to_a_resolved_missing_device_request() -> None:
    """R-PAR-1, R-PAR-4, R-HLD-2: register, first user is admin, accredit, certify (holding
    tenant), report missing PCs, resolve; each command answers a growing position."""
    fleet = in_memory_fleet()
    api = client(fleet)
    ops, anna = bearer("ops"), bearer("anna")

    answers = [
        api.post("/partners", json={"location_id": "LOC-1", "name": "Partner One"}, headers=ops),
        api.post("/partners/LOC-1/users", json={"passport_id": "anna@LOC-1"}, headers=ops),
        api.post("/partners/LOC-1/accreditation", json={"csdp_account": "CSDP-7"}, headers=ops),
        api.post(
            "/partners/LOC-1/certifications", json={"programme": "service_delivery"}, headers=ops
        ),
        api.post(
            "/partners/LOC-1/missing-device-requests",
            json={"request_id": "R1", "serials": ["pc-1", "PC-2"]},
            headers=anna,
        ),
        api.post(
            "/partners/LOC-1/missing-device-requests/R1/resolution",
            json={"resolution": "found at the distributor"},
            headers=ops,
        ),
    ]

    assert [a.status_code for a in answers] == [201, 201, 200, 201, 201, 200]
    positions = [int(a.headers["partnerfleet-position"]) for a in answers]
    assert positions == sorted(positions)
    assert len(set(positions)) == 6
    assert answers[1].json() == {"passport_id": "anna@LOC-1", "role": "admin"}
    partner = api.get("/partners/LOC-1", headers=anna).json()
    assert partner["partner_type"] == "service_partner"
    assert partner["holding_tenant_id"] == answers[3].json()["holding_tenant_id"]
    assert (
        fleet.partner("LOC-1").missing_device_requests["R1"].resolution
        == "found at the distributor"
    )


def test_r_par_1_a_second_registration_of_a_location_id_is_a_409_saying_so() -> None:
    """R-PAR-1: a Location ID is registered once; the refusal says which."""
    api = client(in_memory_fleet())
    body = {"location_id": "LOC-1", "name": "Partner One"}
    api.post("/partners", json=body, headers=bearer("ops"))

    again = api.post("/partners", json=body, headers=bearer("ops"))

    assert again.status_code == 409
    assert again.json()["detail"] == "A partner with Location ID LOC-1 already exists."


def openapi(api: TestClient) -> dict[str, dict[str, dict[str, object]]]:
    """The operations of the OpenAPI document, by path and method."""
    paths: dict[str, dict[str, dict[str, object]]] = api.get("/openapi.json").json()["paths"]
    return paths


def test_r_par_1_every_partner_route_is_documented_with_its_rule_ids_and_problems() -> None:
    """R-PAR-1: each operation's description starts with rule IDs; errors are problem+json."""
    operations = [
        op
        for ops in openapi(client(in_memory_fleet())).values()
        for op in ops.values()
        if op.get("tags") == ["partners"]  # other routers' paths start /partners/... too
        if "partners" in op["tags"]  # type: ignore[operator]
        if op["tags"] == ["partners"]  # other resources' reads live under /partners/{id} too
    ]

    assert len(operations) == 8
    assert all(RULE.match(str(op["description"])) for op in operations)
    assert all("application/problem+json" in op["responses"]["404"]["content"] for op in operations)  # type: ignore[index]
