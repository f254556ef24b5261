"""R-CON-3, R-CON-4, R-PAR-2 over HTTP: consent history, "in effect at T", streamed exports,
corrections, key claims and the demo JWKS (infra/http/routes/audit.py, well_known.py).

The world: partners LOC-1 and LOC-2; customer C1's S1 and S2 linked to LOC-1, S1 granted,
withdrawn and granted again; customer C2's S9 linked to LOC-2 and granted. The views run in
memory (SQLite) and are caught up by each request's Partnerfleet-Wait-For.
"""

from __future__ import annotations

import asyncio
import csv
import gc
import io
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient

from handlers import PartnerFleet
from handlers.access import AuthenticationError, Claims
from handlers.devices import PartnerChoice
from infra.bootstrap import local_jwks
from infra.http.app import create_api
from infra.http.auth import FileKeys, TokenVerifier
from infra.http.streaming import streamed
from infra.settings import Settings
from projections.consent import HISTORY_COLUMNS
from tests.actors import customer
from tests.auth_keys import (
    AUDIENCE,
    ISSUER,
    claims_body,
    jwks_file,
    private_pem,
    signed,
    signing_key,
)
from tests.scenarios import in_memory_fleet, servers
from tests.unit.http_client import TOKENS, bearer, problem_of, two_partners
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


@pytest.fixture
def fleet() -> PartnerFleet:
    """The world, in memory."""
    return world()


@pytest.fixture
def api(fleet: PartnerFleet) -> TestClient:
    """A client of the world."""
    return api_of(fleet)


def caught_up(fleet: PartnerFleet, name: str) -> dict[str, str]:
    """Headers of `name`'s read that waits for everything recorded so far."""
    return bearer(name, partnerfleet_wait_for=str(fleet.recorder.max_notification_id()))


def history(api: TestClient, fleet: PartnerFleet, path: str, name: str, **params: Any) -> Any:
    """The answer of one read of a history, caught up."""
    return api.get(path, params=params, headers=caught_up(fleet, name))


def all_pages(
    api: TestClient, fleet: PartnerFleet, path: str, name: str, **params: Any
) -> list[dict[str, Any]]:
    """Every record of a paged history, following `next_cursor`."""
    records: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = history(api, fleet, path, name, **params, **({"cursor": cursor} if cursor else {}))
        assert page.status_code == 200, page.text
        records += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return records


# --- history -------------------------------------------------------------------------------


def test_r_con_4_an_auditor_pages_through_a_devices_history_in_store_order(
    api: TestClient, fleet: PartnerFleet
) -> None:
    """R-CON-3, R-CON-4: every record with who, when, which wording; pages of 3 follow on."""
    first = history(api, fleet, "/audit/consent-history", "auditor", serial="S1", limit=3)

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
    answer = history(api, fleet, "/audit/consent-history", name, serial="S1")

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
    answer = history(api, fleet, "/audit/consent-history", "auditor", **params)

    problem = problem_of(answer)
    assert (answer.status_code, problem["type"]) == (422, "/problems/invalid-fields")
    assert field in json.dumps(problem["errors"])


def test_r_con_4_an_unknown_device_is_404(api: TestClient, fleet: PartnerFleet) -> None:
    """R-CON-4: "No device with serial number 'S404'."."""
    answer = history(api, fleet, "/audit/consent-history", "auditor", serial="S404")

    assert answer.status_code == 404
    assert problem_of(answer)["detail"] == "No device with serial number 'S404'."


def test_r_par_2_a_customer_reads_its_own_history_and_no_one_elses(
    api: TestClient, fleet: PartnerFleet
) -> None:
    """R-PAR-2, R-CON-3: acme sees C1's records only; C2, or C2's device, is not found."""
    own = all_pages(api, fleet, "/customers/C1/consent-history", "acme")
    other = history(api, fleet, "/customers/C2/consent-history", "acme")
    others_device = history(api, fleet, "/customers/C1/consent-history", "acme", serial="S9")
    auditor = history(api, fleet, "/customers/C1/consent-history", "auditor")

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
        history(
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

    naive = history(api, fleet, "/audit/consent-in-effect", "auditor", **params, at="2026-01-01")
    customer = history(
        api, fleet, "/audit/consent-in-effect", "acme", **params, at="2026-01-01T00:00:00Z"
    )

    assert naive.status_code == 422
    assert problem_of(naive)["errors"][0]["field"] == "at"
    assert customer.status_code == 403


# --- exports ---------------------------------------------------------------------------------


def export(api: TestClient, fleet: PartnerFleet, path: str, name: str, **params: Any) -> Any:
    """The answer of an export, caught up."""
    return history(api, fleet, path, name, **params)


def test_r_con_4_a_json_lines_export_carries_positions_and_resumes_after_one(
    api: TestClient, fleet: PartnerFleet
) -> None:
    """R-CON-4: one record a line, store order; `after` the second line gives the rest."""
    whole = export(api, fleet, "/audit/consent-history/export", "auditor", customer_id="C1")
    lines = [json.loads(line) for line in whole.text.splitlines()]

    rest = export(
        api,
        fleet,
        "/audit/consent-history/export",
        "auditor",
        customer_id="C1",
        after=lines[1]["position"],
    )

    assert whole.headers["content-type"] == "application/jsonl"
    assert len(lines) == 5
    assert set(lines[0]) == set(HISTORY_COLUMNS)
    assert [json.loads(line) for line in rest.text.splitlines()] == lines[2:]


def test_r_con_4_a_customer_exports_its_own_history_as_csv(
    api: TestClient, fleet: PartnerFleet
) -> None:
    """R-PAR-2, R-CON-4: CSV with the history columns first, one record a line."""
    answer = export(api, fleet, "/customers/C2/consent-history/export", "globex", format="csv")

    table = list(csv.DictReader(io.StringIO(answer.text)))
    assert answer.headers["content-disposition"] == 'attachment; filename="consent-history.csv"'
    assert answer.text.splitlines()[0] == ",".join(HISTORY_COLUMNS)
    assert [(r["serial"], r["action"]) for r in table] == [("S9", "linked"), ("S9", "granted")]


@pytest.mark.parametrize(
    ("path", "name", "params", "status"),
    [
        ("/audit/consent-history/export", "anna", {"serial": "S1"}, 403),
        ("/audit/consent-history/export", "auditor", {"serial": "S404"}, 404),
        ("/customers/C2/consent-history/export", "acme", {}, 404),
        ("/audit/consent-history/export", "auditor", {"serial": "S1", "after": "-1"}, 422),
    ],
    ids=["partner", "unknown device", "other customer", "negative after"],
)
def test_r_con_4_a_refused_export_is_a_problem_before_the_first_byte(
    api: TestClient,
    fleet: PartnerFleet,
    path: str,
    name: str,
    params: dict[str, str],
    status: int,
) -> None:
    """R-CON-4: checked before streaming: a problem document, never a broken 200."""
    answer = export(api, fleet, path, name, **params)

    assert problem_of(answer)["status"] == status


def test_r_con_4_the_views_are_free_again_after_an_export_on_sqlite(
    api: TestClient, fleet: PartnerFleet
) -> None:
    """R-CON-4: the export's transaction is opened and closed on its own thread, so SQLite's
    lock is released when it ends (and a read after it is answered)."""
    for _ in range(3):
        done = export(api, fleet, "/audit/consent-history/export", "auditor", serial="S1")
        assert done.status_code == 200

    after = history(api, fleet, "/audit/consent-history", "auditor", serial="S2")

    assert [r["action"] for r in after.json()["items"]] == ["linked"]


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


def test_the_demo_publishes_the_local_keys_public_half_and_nothing_else(
    fleet: PartnerFleet,
) -> None:
    """Issue 9: /.well-known/jwks.json serves the JWK Set it was given; without one, 404."""
    keys = {"keys": [{"kty": "EC", "crv": "P-256", "x": "x", "y": "y", "kid": "k1"}]}

    served = api_of(fleet, jwks=keys).get("/.well-known/jwks.json")
    none = api_of(fleet).get("/.well-known/jwks.json")

    assert (served.status_code, served.json()) == (200, keys)
    assert served.headers["cache-control"] == "public, max-age=300"
    assert (none.status_code, problem_of(none)["type"]) == (404, "/problems/not-found")


def test_the_audit_routes_are_documented_with_their_rule_ids(api: TestClient) -> None:
    """R-CON-3, R-CON-4: each operation's description starts with its rule IDs."""
    paths = api.get("/openapi.json").json()["paths"]
    ours = [
        op
        for path, ops in paths.items()
        if path.startswith(("/audit", "/operations")) or "consent-history" in path
        for op in ops.values()
    ]

    assert len(ours) == 7
    assert all(op["description"].startswith("R-") for op in ours)


class Traced:
    """Rows that note the thread of each step (first row, each next, the close)."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []  # objects: an ident is reused
        self.closed = threading.Event()

    def rows(self) -> Iterator[dict[str, int]]:
        """Three rows, as a query generator holding a transaction would give them."""
        try:
            for position in (1, 2, 3):
                self.threads.append(threading.current_thread())
                yield {"position": position}
        finally:
            self.threads.append(threading.current_thread())
            self.closed.set()


def started_elsewhere(rows: Iterator[dict[str, int]]) -> StreamingResponse:
    """`streamed(rows)` called on another thread, as a route runs on one of a pool's."""
    with ThreadPoolExecutor(1) as route:
        return route.submit(streamed, rows, "jsonl", "export").result()


async def body_of(response: StreamingResponse) -> list[str]:
    """The body's chunks, as Starlette would take them."""
    return [str(chunk) async for chunk in response.body_iterator]


def test_r_con_4_an_exports_rows_are_read_and_closed_on_one_thread() -> None:
    """R-CON-4: a read-model transaction belongs to the thread that opened it (SQLite's lock
    is a thread's): the first row, every next one and the close run on one thread."""
    traced = Traced()
    response = started_elsewhere(traced.rows())

    chunks = asyncio.run(body_of(response))

    assert [json.loads(c)["position"] for c in chunks] == [1, 2, 3]
    assert len(traced.threads) == 4
    assert all(thread is traced.threads[0] for thread in traced.threads)


def test_r_con_4_an_export_dropped_unsent_closes_its_rows_on_their_thread() -> None:
    """R-CON-4: a response never sent (the client went away first) still ends the export's
    transaction, on the thread that opened it."""
    traced = Traced()
    response = started_elsewhere(traced.rows())

    del response
    gc.collect()

    assert traced.closed.wait(timeout=10)
    assert all(thread is traced.threads[0] for thread in traced.threads)


def test_the_demo_serves_the_public_half_of_the_key_its_verifier_trusts(
    fleet: PartnerFleet, tmp_path: Path
) -> None:
    """Issue 9: `serve --demo` without a JWKS publishes the local key's public half (a demo
    token verifies with it, no private member shows); with JWKS_PATH, or outside demo
    mode, nothing is published."""
    key = signing_key()
    pem = tmp_path / "signing-key.pem"
    pem.write_text(private_pem(key), encoding="utf-8")
    settings = Settings(jwt_signing_key_path=pem)

    published = local_jwks(settings, demo=True)
    served = api_of(fleet, jwks=published).get("/.well-known/jwks.json").json()

    trusting = TokenVerifier(FileKeys(served, "served"), audience=AUDIENCE, issuer=ISSUER, leeway=0)
    assert trusting.claims(signed(claims_body())).subject == "anna@LOC-1"
    assert not any("d" in jwk for jwk in served["keys"])
    with_file = settings.model_copy(update={"jwks_path": jwks_file(tmp_path, key)})
    assert local_jwks(with_file, demo=True) is None
    assert local_jwks(settings, demo=False) is None
