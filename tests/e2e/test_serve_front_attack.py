"""Attack on the served All Customers page (session 18): PlainFront and, on PostgreSQL, the
partner's version read beside the views' positions, over `partnerfleet serve` (two
`--workers` parts on PostgreSQL: each caches the partner and remembers the path).

A membership recorded by ANOTHER process (this test's own fleet, as the CLI would) counts on
the very next request to any part; another partner's page is "not found"; a refused token is
a problem; every connection of the service ended answers 503 problem details or the page,
never a hang, and the page again right after.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from handlers.devices import PartnerChoice
from infra.bootstrap import build_fleet
from infra.settings import Settings
from tests.actors import customer
from tests.auth_keys import ISSUER, claims_body, jwks_file, signed, signing_key
from tests.conftest import url_of
from tests.e2e.test_serve import CLI, free_port, get_health, unconfigured
from tests.pg_faults import terminate_backends
from tests.scenarios import OPS, partner, servers

PAGE = "/partners/LOC-1/customer-groups"
Answer = tuple[int, dict[str, str], bytes]


def get(port: int, token: str, path: str = PAGE) -> Answer:
    """One GET on a connection of its own (so that either serving part may take it)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        answer = connection.getresponse()
        headers = {k.lower(): v for k, v in answer.getheaders()}
        return answer.status, headers, answer.read()
    finally:
        connection.close()


def token(subject: str, tenant: str = "LOC-1") -> str:
    return signed(claims_body(sub=subject, tenant=tenant))


def is_problem(answer: Answer, status: int) -> bool:
    return answer[0] == status and answer[1]["content-type"] == "application/problem+json"


@pytest.mark.parametrize("storage", ["postgres", "sqlite"])
def test_membership_by_another_process_counts_on_the_next_request_to_every_part(
    tmp_path: Path, storage: str, request: pytest.FixtureRequest
) -> None:
    settings: Settings = (
        request.getfixturevalue("postgres_settings")
        if storage == "postgres"
        else Settings(database_url=f"sqlite:///{tmp_path / 'events.sqlite3'}")
    )
    fleet = build_fleet(settings)
    partner(fleet, "LOC-1")
    partner(fleet, "LOC-2")
    choice = PartnerChoice(location_id="LOC-1")
    fleet.register_devices(customer("C1"), "C1", servers("S1"), choice, customer_name="Acme")
    port = free_port()
    env = {
        **unconfigured(),
        "PORT": str(port),
        "DATABASE_URL": url_of(settings),
        "JWKS_PATH": str(jwks_file(tmp_path, signing_key())),
        "JWT_ISSUER": ISSUER,
    }
    workers = ["--workers", "2"] if storage == "postgres" else []
    server = subprocess.Popen(
        [str(CLI), "serve", *workers], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL
    )
    try:
        get_health(port, timeout=60)
        anna, zed = token("anna@LOC-1"), token("zed@LOC-1")
        warm = [get(port, anna) for _ in range(8)]  # every part: partner cached, path known
        before = [get(port, zed) for _ in range(4)]
        fleet.register_partner_user(OPS, "LOC-1", "zed@LOC-1")  # another process
        at_once = [get(port, zed) for _ in range(8)]  # the views may lag: not the store
        get_health(port, timeout=60)
        after = [get(port, zed) for _ in range(8)]
        other = [get(port, token("anna@LOC-2", "LOC-2")) for _ in range(4)]
        forged = get(port, anna[:-4] + "AAAA")
        down: list[Answer] = []
        if storage == "postgres":
            assert terminate_backends(settings.storage.schema) >= 2
            started = time.monotonic()
            down = [get(port, anna) for _ in range(4)]
            assert time.monotonic() - started < 30  # no request waited for a pool's timeout
        again = [get(port, anna) for _ in range(4)]
    finally:
        server.terminate()
        server.wait(timeout=30)
        fleet.close()

    assert [a[0] for a in warm] == [200] * 8
    assert json.loads(warm[0][2])["items"][0]["name"] == "Acme"
    assert all(is_problem(a, 401) for a in before), before
    # authenticate admits zed at once on every part (never 401); the page's own check of
    # the Passport is the views' (R-PAR-2, 403 until they apply the registration)
    assert all(a[0] == 200 or (is_problem(a, 403) and b"R-PAR-2" in a[2]) for a in at_once)
    assert [a[0] for a in after] == [200] * 8, after
    assert {a[2] for a in after} == {warm[0][2]}
    assert all(is_problem(a, 404) for a in other), other
    assert is_problem(forged, 401)
    assert all(a[0] == 200 or is_problem(a, 503) for a in down), down
    assert [a[0] for a in again] == [200] * 4, again
    assert all(answer_of(a) == answer_of(warm[0]) for a in again)


def answer_of(answer: Answer) -> tuple[Any, ...]:
    """Status, headers but the request id and date, body."""
    headers = {k: v for k, v in answer[1].items() if k not in {"x-request-id", "date"}}
    return answer[0], headers, answer[2]
