"""A customer's devices over HTTP, for tests of infra/http/routes/devices.py: tokens of
two customer admins, fixtures (`fleet`, `api`), Acme's registered devices, and reads that
wait for a command's position (read-your-writes)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from handlers import PartnerFleet
from handlers.access import Claims
from tests.scenarios import in_memory_fleet
from tests.unit.http_client import OPS, TOKENS, bearer, client, two_partners
from tests.views import memory_runner

CUSTOMERS = {
    "acme": Claims("it@acme.example", "customer_admin", "C1"),
    "globex": Claims("it@globex.example", "customer_admin", "C2"),
}
HOST = {"serial": "HOST1", "connection": "direct_connect", "is_hosting_device": True}
CENTRAL = [
    {"serial": f"cc{n}", "connection": "central_connect", "hosting_serial": "HOST1"} for n in (1, 2)
]
DIRECT = [{"serial": f"d{n}", "connection": "direct_connect", "model": "DL380"} for n in (1, 2)]
LOC_1 = {"location_id": "LOC-1", "role": "reseller"}


@pytest.fixture
def fleet(monkeypatch: pytest.MonkeyPatch) -> PartnerFleet:
    """LOC-1 (Anna, Ben), service partner LOC-2 (Otto); admins of C1 (acme), C2 (globex)."""
    for name, claims in CUSTOMERS.items():
        monkeypatch.setitem(TOKENS, name, claims)
    fleet = in_memory_fleet()
    two_partners(fleet)
    fleet.accredit_service_partner(OPS, "LOC-2", "CSDP-2")
    return fleet


@pytest.fixture
def api(fleet: PartnerFleet) -> TestClient:
    """A client over the fleet and its views (read with Partnerfleet-Wait-For)."""
    return client(fleet, memory_runner(fleet))


def registered(api: TestClient, customer: str = "acme", cid: str = "C1") -> str:
    """Acme's host with two central-connect devices and two direct ones, d1 and d2 linked
    to LOC-1 as reseller; the answer's position."""
    body = {"devices": [HOST, *CENTRAL], "customer_name": "ACME"}
    api.post(f"/customers/{cid}/devices", json=body, headers=bearer(customer))
    answer = api.post(
        f"/customers/{cid}/devices",
        json={"devices": DIRECT, "partner": LOC_1, "customer_name": "ACME"},
        headers=bearer(customer),
    )
    assert answer.status_code == 201, answer.text
    return str(answer.headers["partnerfleet-position"])


def read(api: TestClient, path: str, position: str, who: str = "acme", **params: Any) -> Any:
    """GET `path` as `who` once the views reached `position` (read-your-writes)."""
    answer = api.get(path, params=params, headers=bearer(who, partnerfleet_wait_for=position))
    assert answer.status_code == 200, answer.text
    return answer.json()


def post(api: TestClient, path: str, body: dict[str, Any], who: str = "acme") -> Any:
    """A command as `who`; the answer."""
    return api.post(path, json=body, headers=bearer(who))
