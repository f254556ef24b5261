"""An HP Premium world over HTTP for the holding, repairs and intake routers' tests.

Two certified partners: reseller LOC-1 (admin Anna, user Ben) and service partner LOC-2
(admin Otto, CSDP account CSDP-LOC-2); customers C1 (ACME) and C2 (Globex); end users
working on PC1 (of C1) and on SP1 (of C2). Tokens are names of claims (`TOKENS`), as in
tests/unit/http_client.py, with the customer, end-user and feed principals besides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient

from handlers import PartnerFleet, PolicyRunner
from handlers.access import AuthenticationError, Claims
from infra.follow.view_runner import ViewRunner
from infra.http.app import create_api
from infra.settings import Settings
from tests.actors import operator
from tests.scenarios import in_memory_fleet, report
from tests.views import memory_runner

OPS = operator("ops")
LOC, SERVICE_LOC = "LOC-1", "LOC-2"
CSDP = f"csdp:CSDP-{SERVICE_LOC}"
TOKENS: dict[str, Claims] = {
    "ops": Claims("ops", "operator"),
    "auditor": Claims("audit@example", "auditor"),
    "feed": Claims("feed:e2open", "feed"),
    "anna": Claims("anna@LOC-1", "partner_user", LOC),  # LOC-1's admin (first user)
    "ben": Claims("ben@LOC-1", "partner_user", LOC),
    "otto": Claims("otto@LOC-2", "partner_user", SERVICE_LOC),  # LOC-2's admin
    "acme": Claims("it@acme.example", "customer_admin", "C1"),
    "globex": Claims("it@globex.example", "customer_admin", "C2"),
    "pc1-user": Claims("user@acme.example", "end_user", "C1", ("PC1",)),
    "sp1-user": Claims("user@globex.example", "end_user", "C2", ("SP1",)),
}


class Verifier:
    """Accepts exactly the tokens of `TOKENS` (signatures are infra/http/auth.py's)."""

    def claims(self, token: str) -> Claims:
        """The claims a known token names."""
        found = TOKENS.get(token)
        if found is None:
            raise AuthenticationError("The token's signature does not verify.")
        return found


def bearer(name: str, **headers: str) -> dict[str, str]:
    """Headers of a request by the principal `name`, with `headers` besides."""
    return {
        "Authorization": f"Bearer {name}",
        **{k.replace("_", "-"): v for k, v in headers.items()},
    }


@dataclass
class World:
    """The fleet, its views, the policies and a client of the API over them."""

    fleet: PartnerFleet
    views: ViewRunner
    api: TestClient

    def decide(self) -> dict[str, str]:
        """Run the policies (alerts told, cases routed); the header to read their decisions."""
        PolicyRunner(self.fleet).catch_up()
        return {"Partnerfleet-Wait-For": str(self.fleet.recorder.max_notification_id() or 0)}

    def holding_tenant(self, location_id: str = LOC) -> str:
        """The partner's holding tenant id."""
        return str(self.fleet.partner(location_id).holding_tenant_id)

    def dashboard(self, location_id: str = LOC, customer: str = "C1", cpin: str = "4711") -> str:
        """A customer dashboard created over the API; its id."""
        answer = self.api.post(
            f"/partners/{location_id}/dashboards",
            json={"customer_id": customer, "customer_name": f"Customer {customer}", "cpin": cpin},
            headers=bearer("anna" if location_id == LOC else "otto"),
        )
        assert answer.status_code == 201, answer.text
        return str(answer.json()["dashboard_id"])

    def transfer(self, serials: list[str], source: str, target: str, transfer_id: str) -> Any:
        """Transfer PCs of LOC-1 over the API, as Anna; the answer."""
        body = {
            "transfer_id": transfer_id,
            "serials": serials,
            "source_id": source,
            "target_id": target,
        }
        return self.api.post(f"/partners/{LOC}/transfers", json=body, headers=bearer("anna"))


def world(pcs: tuple[str, ...] = ("PC1", "PC2", "PC3"), service_pcs: tuple[str, ...] = ()) -> World:
    """LOC-1 and LOC-2 certified, `pcs` in LOC-1's holding tenant and `service_pcs` in
    LOC-2's, all reported through e2Open (premium care plans)."""
    fleet = premium_fleet(pcs, service_pcs)
    views = memory_runner(fleet)
    return World(fleet, views, _client_over(fleet, views))


def premium_fleet(
    pcs: tuple[str, ...] = ("PC1", "PC2", "PC3"), service_pcs: tuple[str, ...] = ()
) -> PartnerFleet:
    """The fleet of `world`: LOC-1 and LOC-2 certified, their PCs reported through e2Open."""
    fleet = in_memory_fleet()
    for location, users in ((LOC, ("anna@LOC-1", "ben@LOC-1")), (SERVICE_LOC, ("otto@LOC-2",))):
        fleet.register_partner(OPS, location, f"Partner {location}")
        for user in users:
            fleet.register_partner_user(OPS, location, user)
    fleet.accredit_service_partner(OPS, SERVICE_LOC, f"CSDP-{SERVICE_LOC}")
    fleet.certify_partner(OPS, LOC, "resell_view_monitor")
    fleet.certify_partner(OPS, SERVICE_LOC, "service_delivery")
    reports = [report(s, LOC) for s in pcs] + [report(s, SERVICE_LOC) for s in service_pcs]
    if reports:
        fleet.receive_e2open_batch(OPS, "world", reports)
    return fleet


_clients: list[TestClient] = []


def _client_over(fleet: PartnerFleet, views: ViewRunner) -> TestClient:
    """One API for every world of the session, pointed at this world's fleet and views:
    building the routes of an app costs more than most tests' requests together."""
    if not _clients:
        api = create_api(fleet, Settings(), views, verifier=Verifier())
        _clients.append(TestClient(api, raise_server_exceptions=False))
    client = _clients[0]
    client.app.state.fleet, client.app.state.views = fleet, views  # type: ignore[attr-defined]
    return client


def wait_for(answer: Any) -> dict[str, str]:
    """The read-your-writes header for a command's answer."""
    return {"Partnerfleet-Wait-For": answer.headers["partnerfleet-position"]}
