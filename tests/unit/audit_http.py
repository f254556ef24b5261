"""The consent audit over HTTP, for tests: a world, customer tokens, clients, reads.

The world: partners LOC-1 and LOC-2; customer C1's S1 and S2 linked to LOC-1, S1 granted,
withdrawn and granted again; customer C2's S9 linked to LOC-2 and granted. The views run in
memory (SQLite) and are caught up by each read's Partnerfleet-Wait-For. Tokens are those of
tests/unit/http_client.py and two customer admins, "acme" (C1) and "globex" (C2).
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from handlers import PartnerFleet
from handlers.access import AuthenticationError, Claims
from handlers.devices import PartnerChoice
from infra.http.app import create_api
from infra.settings import Settings
from tests.actors import customer
from tests.scenarios import in_memory_fleet, servers
from tests.unit.http_client import TOKENS, bearer, two_partners
from tests.views import memory_runner

C1 = customer("C1", "admin@c1.example")
C2 = customer("C2", "admin@c2.example")
CLAIMS: dict[str, Claims] = {
    **TOKENS,
    "acme": Claims("admin@c1.example", "customer_admin", "C1"),
    "globex": Claims("admin@c2.example", "customer_admin", "C2"),
}


class Verifier:
    """Accepts the tokens of `CLAIMS` (the shared test tokens and two customer admins)."""

    def claims(self, token: str) -> Claims:
        """The claims a known token names."""
        found = CLAIMS.get(token)
        if found is None:
            raise AuthenticationError("The token's signature does not verify.")
        return found


def world() -> PartnerFleet:
    """Two partners, two customers; S1's consent granted, withdrawn, granted again."""
    fleet = in_memory_fleet()
    two_partners(fleet)
    fleet.register_devices(C1, "C1", servers("S1", "S2"), PartnerChoice(location_id="LOC-1"))
    fleet.register_devices(C2, "C2", servers("S9"), PartnerChoice(location_id="LOC-2"))
    fleet.grant_consent(C1, "C1", ["S1"], text_version="2024-01")
    fleet.withdraw_consent(C1, "C1", ["S1"])
    fleet.grant_consent(C1, "C1", ["S1"], text_version="2025-06")
    fleet.grant_consent(C2, "C2", ["S9"], text_version="2025-06")
    return fleet


def api_of(fleet: PartnerFleet, **options: Any) -> TestClient:
    """A client of the API over `fleet` and in-memory views of it."""
    api = create_api(fleet, Settings(), memory_runner(fleet), verifier=Verifier(), **options)
    return TestClient(api, raise_server_exceptions=False)


def caught_up(fleet: PartnerFleet, name: str) -> dict[str, str]:
    """Headers of `name`'s read that waits for everything recorded so far."""
    return bearer(name, partnerfleet_wait_for=str(fleet.recorder.max_notification_id()))


def read(api: TestClient, fleet: PartnerFleet, path: str, name: str, **params: Any) -> Any:
    """The answer of one read of a history, caught up."""
    return api.get(path, params=params, headers=caught_up(fleet, name))


def all_pages(
    api: TestClient, fleet: PartnerFleet, path: str, name: str, **params: Any
) -> list[dict[str, Any]]:
    """Every record of a paged history, following `next_cursor`."""
    records: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = read(api, fleet, path, name, **params, **({"cursor": cursor} if cursor else {}))
        assert page.status_code == 200, page.text
        records += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return records
