"""R-CON-2, R-SVC-1…3 over HTTP: remote support reports configuration data, service events
and service levels; the linked partner reads configuration data under consent, and only
the service partner reads service events, summaries and levels."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from handlers import PartnerFleet
from handlers.access import Claims
from handlers.fleet import PartnerChoice
from tests.actors import customer
from tests.scenarios import event_count, in_memory_fleet, servers
from tests.unit.http_client import OPS, TOKENS, bearer, client, problem_of, two_partners
from tests.views import memory_runner

ACME = customer("C1")
LEVEL = {"kind": "warranty", "name": "Base warranty", "starts": "2025-01-01", "ends": "2027-12-31"}
CARE_PACK = {"kind": "care_pack", "name": "CP 4h", "starts": "2026-01-01", "ends": "2026-06-30"}


@pytest.fixture
def fleet(monkeypatch: pytest.MonkeyPatch) -> PartnerFleet:
    """Acme's S1 and S2 linked to LOC-1 as reseller and to LOC-2 (Otto) as service
    partner; S3 linked to LOC-1 only. Tokens for the feed and Acme's admin."""
    monkeypatch.setitem(TOKENS, "feed", Claims("feed:insight-rs", "feed"))
    monkeypatch.setitem(TOKENS, "acme", Claims("it@acme.example", "customer_admin", "C1"))
    fleet = in_memory_fleet()
    two_partners(fleet)
    fleet.accredit_service_partner(OPS, "LOC-2", "CSDP-2")
    fleet.register_devices(ACME, "C1", servers("S1", "S2", "S3"), customer_name="ACME")
    fleet.link_devices(ACME, "C1", ["S1", "S2", "S3"], PartnerChoice(location_id="LOC-1"))
    service = PartnerChoice(location_id="LOC-2", role="service_partner")
    fleet.link_devices(ACME, "C1", ["S1", "S2"], service)
    return fleet


@pytest.fixture
def api(fleet: PartnerFleet) -> TestClient:
    """A client over the fleet and its views."""
    return client(fleet, memory_runner(fleet))


def report(api: TestClient, serial: str, event_id: str, severity: str, who: str = "feed") -> Any:
    """Remote support reports a service event."""
    body = {"event_id": event_id, "severity": severity, "summary": f"{severity} on {serial}"}
    return api.post(f"/devices/{serial}/service-events", json=body, headers=bearer(who))


def read(api: TestClient, path: str, position: Any, who: str = "otto", **params: Any) -> Any:
    """GET `path` as `who` once the views reached `position`; the answer."""
    headers = bearer(who, partnerfleet_wait_for=str(position))
    return api.get(path, params=params, headers=headers)


def test_r_svc_2_the_service_partner_lists_events_newest_first_and_per_device(
    api: TestClient,
) -> None:
    """R-SVC-1, R-SVC-2: three events on two devices: all newest first, over two pages;
    filtered by device, only that device's."""
    report(api, "S1", "E1", "critical")
    report(api, "S2", "E2", "info")
    last = report(api, "s1", "E3", "warning")
    position = last.headers["partnerfleet-position"]

    first = read(api, "/partners/LOC-2/service-events", position, limit=2).json()
    second = read(
        api, "/partners/LOC-2/service-events", position, limit=2, cursor=first["next_cursor"]
    ).json()
    of_s2 = read(api, "/partners/LOC-2/service-events", position, serial="S2").json()

    assert last.status_code == 201
    assert last.json() == {"serial": "S1", "event_id": "E3", "severity": "warning"}
    assert [e["event_id"] for e in first["items"] + second["items"]] == ["E3", "E2", "E1"]
    assert second["next_cursor"] is None
    assert [(e["serial"], e["customer_id"]) for e in of_s2["items"]] == [("S2", "C1")]


def test_r_svc_2_the_summary_counts_critical_events_apart(api: TestClient) -> None:
    """R-SVC-2: per customer, events and critical ones."""
    report(api, "S1", "E1", "critical")
    last = report(api, "S2", "E2", "info")

    summary = read(api, "/partners/LOC-2/service-summary", last.headers["partnerfleet-position"])

    assert summary.json() == {
        "items": [{"customer_id": "C1", "events": 2, "critical": 1}],
        "next_cursor": None,
    }


@pytest.mark.parametrize(
    "path",
    [
        "/partners/LOC-1/service-events",
        "/partners/LOC-1/service-summary",
        "/partners/LOC-1/devices/S1/service-levels",
    ],
)
def test_r_svc_1_a_reseller_reads_no_service_data(api: TestClient, path: str) -> None:
    """R-SVC-1: LOC-1, linked as reseller, gets 403 naming the rule."""
    last = report(api, "S1", "E1", "critical")

    answer = read(api, path, last.headers["partnerfleet-position"], who="anna")

    body = problem_of(answer)
    assert (answer.status_code, body["type"], body["rule"]) == (
        403,
        "/problems/forbidden",
        "R-SVC-1",
    )


def test_r_svc_1_another_partners_ids_and_unserviced_devices_are_404(api: TestClient) -> None:
    """R-SVC-1, R-LNK-1: Otto naming LOC-1, or S3 (not serviced by LOC-2): not found."""
    last = report(api, "S1", "E1", "critical")
    position = last.headers["partnerfleet-position"]

    answers = [
        read(api, "/partners/LOC-1/service-events", position),
        read(api, "/partners/LOC-2/service-events", position, serial="S3"),
        read(api, "/partners/LOC-2/devices/S3/service-levels", position),
    ]

    assert [(a.status_code, problem_of(a)["type"]) for a in answers] == [
        (404, "/problems/not-found")
    ] * 3


def test_r_svc_1_only_remote_support_reports_service_events(
    fleet: PartnerFleet, api: TestClient
) -> None:
    """R-SVC-1: a partner or a customer reporting an event is 403; nothing is stored. An
    unknown device is 404; a duplicate event 409."""
    report(api, "S1", "E1", "critical")
    stored = event_count(fleet)

    answers = [report(api, "S1", "E2", "info", who=who) for who in ("otto", "acme")]
    unknown = report(api, "NOPE1", "E3", "info")
    twice = report(api, "S1", "E1", "critical")

    assert [a.status_code for a in answers] == [403, 403]
    assert (unknown.status_code, twice.status_code) == (404, 409)
    assert problem_of(twice)["detail"] == "Service event E1 is already recorded."
    assert event_count(fleet) == stored


def test_r_svc_3_the_highest_active_level_or_all_active_ones(api: TestClient) -> None:
    """R-SVC-3: warranty and Care Pack active on 2026-03-01: the Care Pack is highest; with
    all=true both; on 2026-09-01 the Care Pack has expired."""
    api.post("/devices/S1/service-levels", json=LEVEL, headers=bearer("feed"))
    added = api.post("/devices/S1/service-levels", json=CARE_PACK, headers=bearer("ops"))
    position = added.headers["partnerfleet-position"]
    path = "/partners/LOC-2/devices/S1/service-levels"

    highest = read(api, path, position, as_of="2026-03-01").json()
    both = read(api, path, position, as_of="2026-03-01", all="true").json()
    later = read(api, path, position, as_of="2026-09-01", all="true").json()

    assert (added.status_code, added.json()) == (201, {"serial": "S1", **CARE_PACK})
    assert [v["name"] for v in highest["levels"]] == ["CP 4h"]
    assert [v["name"] for v in both["levels"]] == ["CP 4h", "Base warranty"]
    assert [v["name"] for v in later["levels"]] == ["Base warranty"]
    assert highest["as_of"] == "2026-03-01"


def test_r_svc_3_a_level_ending_before_it_starts_is_422_naming_ends(
    fleet: PartnerFleet, api: TestClient
) -> None:
    """R-SVC-3: `ends` before `starts`: 422 on `ends`, nothing stored."""
    stored = event_count(fleet)

    answer = api.post(
        "/devices/S1/service-levels", json={**LEVEL, "ends": "2024-01-01"}, headers=bearer("feed")
    )

    [error] = problem_of(answer)["errors"]
    assert (answer.status_code, error["field"]) == (422, "ends")
    assert event_count(fleet) == stored


CONFIG = {"data": {"firmware": "2.91", "disks": [{"slot": 1, "gb": 960}]}}


def test_r_con_2_configuration_is_read_by_the_linked_partner_while_consent_holds(
    fleet: PartnerFleet, api: TestClient
) -> None:
    """R-CON-2, R-CON-3: no consent: the feed's report is refused (409); with consent it is
    kept and LOC-1 reads it; after withdrawal LOC-1 gets 403 naming R-CON-2."""
    refused = api.put("/devices/S3/configuration", json=CONFIG, headers=bearer("feed"))
    fleet.grant_consent(ACME, "C1", ["S3"])

    kept = api.put("/devices/S3/configuration", json=CONFIG, headers=bearer("feed"))
    readable = read(
        api,
        "/partners/LOC-1/devices/S3/configuration",
        kept.headers["partnerfleet-position"],
        who="anna",
    )
    withdrawn = api.post(
        "/customers/C1/consent-withdrawals", json={"serials": ["S3"]}, headers=bearer("acme")
    )
    after = read(
        api,
        "/partners/LOC-1/devices/S3/configuration",
        withdrawn.headers["partnerfleet-position"],
        who="anna",
    )

    assert (refused.status_code, problem_of(refused)["type"]) == (409, "/problems/rule-refused")
    assert (kept.status_code, kept.json()) == (200, {"serial": "S3"})
    assert readable.json() == {"serial": "S3", **CONFIG}
    assert (after.status_code, problem_of(after)["rule"]) == (403, "R-CON-2")


def test_r_lnk_6_configuration_of_a_device_not_linked_to_the_partner_is_404(
    fleet: PartnerFleet, api: TestClient
) -> None:
    """R-CON-2, R-LNK-6: S3 is not linked to LOC-2 (404); unlinked from LOC-1, 404 too."""
    fleet.grant_consent(ACME, "C1", ["S3"])
    api.put("/devices/S3/configuration", json=CONFIG, headers=bearer("feed"))
    unlinked = api.post(
        "/customers/C1/link-removals", json={"serials": ["S3"]}, headers=bearer("acme")
    )
    position = unlinked.headers["partnerfleet-position"]

    answers = [
        read(api, "/partners/LOC-2/devices/S3/configuration", position, who="otto"),
        read(api, "/partners/LOC-1/devices/S3/configuration", position, who="anna"),
    ]

    assert [(a.status_code, problem_of(a)["detail"]) for a in answers] == [
        (404, "No device with serial number 'S3'.")
    ] * 2


def test_r_con_2_a_customer_may_not_report_configuration_data(api: TestClient) -> None:
    """R-CON-2: configuration data comes from remote support, not from the customer: 403."""
    answer = api.put("/devices/S1/configuration", json=CONFIG, headers=bearer("acme"))

    assert (answer.status_code, problem_of(answer)["type"]) == (403, "/problems/forbidden")


def test_r_con_2_empty_configuration_data_is_422(api: TestClient) -> None:
    """R-CON-2: an empty object is refused before the command: 422 on `data`."""
    answer = api.put("/devices/S1/configuration", json={"data": {}}, headers=bearer("feed"))

    [error] = problem_of(answer)["errors"]
    assert (answer.status_code, error["field"]) == (422, "data")


def test_r_con_3_access_ends_at_once_even_when_the_partner_sends_no_wait_for(
    fleet: PartnerFleet, api: TestClient
) -> None:
    """R-CON-3, R-CON-2: a withdrawal ends access at once: LOC-1's next read of S3's
    configuration data is 403 though it names no Partnerfleet-Wait-For and the views have not
    applied the withdrawal yet (README's "Anna now gets 403", issue 9 attack)."""
    fleet.grant_consent(ACME, "C1", ["S3"])
    kept = api.put("/devices/S3/configuration", json=CONFIG, headers=bearer("feed"))
    readable = read(
        api,
        "/partners/LOC-1/devices/S3/configuration",
        kept.headers["partnerfleet-position"],
        who="anna",
    )
    fleet.withdraw_consent(ACME, "C1", ["S3"])  # stored; the views have not applied it

    after = api.get("/partners/LOC-1/devices/S3/configuration", headers=bearer("anna"))

    assert readable.status_code == 200
    assert (after.status_code, problem_of(after)["rule"]) == (403, "R-CON-2")
