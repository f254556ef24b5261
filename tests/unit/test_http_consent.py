"""R-CON-1, R-CON-3, R-CON-4, R-ALR-2 over HTTP: a customer grants and withdraws consent
per device or on a hosting device, reads its consent history, chooses Insight RS case
routing; retries with an Idempotency-Key and changes under If-Match."""

from __future__ import annotations

from fastapi.testclient import TestClient

from handlers import PartnerFleet
from tests.scenarios import event_count
from tests.unit.devices_http import api, fleet, post, read, registered
from tests.unit.http_client import bearer, problem_of

__all__ = ["api", "fleet"]  # fixtures


def test_r_con_3_grants_and_withdrawals_are_the_devices_consent_history(api: TestClient) -> None:
    """R-CON-1, R-CON-3, R-CON-4: grant on the old wording, withdraw, grant again: the
    history lists link, grant, withdrawal, grant in store order; consent is on now."""
    registered(api)
    post(api, "/customers/C1/consent-grants", {"serials": ["D1"], "text_version": "2024-01"})
    post(api, "/customers/C1/consent-withdrawals", {"serials": ["D1"]})
    last = post(api, "/customers/C1/consent-grants", {"serials": ["D1"]})

    history = read(
        api, "/customers/C1/devices/D1/consent-history", last.headers["partnerfleet-position"]
    )
    device = read(api, "/customers/C1/devices/D1", last.headers["partnerfleet-position"])

    records = [(r["kind"], r["action"], r["text_version"]) for r in history["items"]]
    assert records == [
        ("link", "linked", None),
        ("consent", "granted", "2024-01"),
        ("consent", "withdrawn", "2024-01"),
        ("consent", "granted", "2025-06"),
    ]
    assert [r["position"] for r in history["items"]] == sorted(
        r["position"] for r in history["items"]
    )
    assert history["items"][1]["principal"] == "it@acme.example"
    assert device["consent"]["granted"] is True


def test_r_con_3_a_customers_history_covers_all_its_devices_and_pages(api: TestClient) -> None:
    """R-CON-3: the customer-wide history holds both devices' records, two per page."""
    registered(api)
    last = post(api, "/customers/C1/consent-grants", {"serials": ["D1", "D2"]})
    position = last.headers["partnerfleet-position"]

    first = read(api, "/customers/C1/consent-history", position, limit=2)
    second = read(
        api, "/customers/C1/consent-history", position, limit=2, cursor=first["next_cursor"]
    )

    serials = [r["serial"] for r in first["items"] + second["items"]]
    assert sorted(serials) == ["D1", "D1", "D2", "D2"]
    assert second["next_cursor"] is None


def test_r_con_3_another_customers_device_history_is_404(api: TestClient) -> None:
    """R-CON-3, R-PAR-2: Globex names Acme's device under its own id: not found."""
    position = registered(api)

    answer = api.get(
        "/customers/C2/devices/D1/consent-history",
        headers=bearer("globex", partnerfleet_wait_for=position),
    )

    assert (answer.status_code, problem_of(answer)["detail"]) == (
        404,
        "No device with serial number 'D1'.",
    )


def test_r_con_1_consent_on_a_host_covers_its_devices_and_withdraws_with_204(
    api: TestClient,
) -> None:
    """R-CON-1: PUT consent on the host: its devices show it set there; DELETE: 204, off."""
    registered(api)

    granted = api.put(
        "/customers/C1/hosting-devices/HOST1/consent", json={}, headers=bearer("acme")
    )
    on = read(api, "/customers/C1/devices/CC2", granted.headers["partnerfleet-position"])
    withdrawn = api.delete("/customers/C1/hosting-devices/HOST1/consent", headers=bearer("acme"))
    off = read(api, "/customers/C1/devices/CC2", withdrawn.headers["partnerfleet-position"])

    assert granted.json() == {
        "customer_id": "C1",
        "host_serial": "HOST1",
        "text_version": "2025-06",
    }
    assert on["consent"]["scope"] == "insight_rs_host:HOST1"
    assert (withdrawn.status_code, withdrawn.content) == (204, b"")
    assert off["consent"]["granted"] is False


def test_r_con_1_consent_per_device_on_a_central_connect_device_is_409(
    fleet: PartnerFleet, api: TestClient
) -> None:
    """R-CON-1: a central-connect device follows its host: 409 `rule-refused`, nothing stored."""
    registered(api)
    stored = event_count(fleet)

    answer = post(api, "/customers/C1/consent-grants", {"serials": ["CC1"]})

    assert (answer.status_code, problem_of(answer)["type"]) == (409, "/problems/rule-refused")
    assert "set consent once on its Insight RS hosting device HOST1" in problem_of(answer)["detail"]
    assert event_count(fleet) == stored


def test_r_con_3_an_unknown_wording_is_422_naming_the_field(api: TestClient) -> None:
    """R-CON-3: the wording agreed to must be a known version: 422 on `text_version`."""
    registered(api)

    answer = post(api, "/customers/C1/consent-grants", {"serials": ["D1"], "text_version": "1999"})

    [error] = problem_of(answer)["errors"]
    assert (answer.status_code, error["field"]) == (422, "text_version")


def test_r_alr_2_insight_rs_case_routing_is_chosen_for_the_host_and_its_devices(
    fleet: PartnerFleet, api: TestClient
) -> None:
    """R-ALR-2: routing chosen on the host applies to every device it manages."""
    registered(api)

    answer = api.put(
        "/customers/C1/insight-rs-case-routing",
        json={"serials": ["HOST1"], "to_service_partner": True},
        headers=bearer("acme"),
    )

    assert answer.json()["to_service_partner"] is True
    assert all(fleet.device(s).insight_rs_cases_to_service_partner for s in ("HOST1", "CC1", "CC2"))


def test_r_con_3_a_retried_grant_with_its_key_answers_the_same_and_records_nothing(
    fleet: PartnerFleet, api: TestClient
) -> None:
    """R-CON-3: the same Idempotency-Key and body: the first answer again, no new event."""
    registered(api)
    headers = bearer("acme", idempotency_key='"grant-d1-1"')
    first = api.post("/customers/C1/consent-grants", json={"serials": ["D1"]}, headers=headers)
    stored = event_count(fleet)

    again = api.post("/customers/C1/consent-grants", json={"serials": ["D1"]}, headers=headers)

    assert (
        (again.status_code, again.json())
        == (first.status_code, first.json())
        == (200, first.json())
    )
    assert again.headers["partnerfleet-position"] == first.headers["partnerfleet-position"]
    assert event_count(fleet) == stored


def test_r_con_3_a_grant_if_match_a_stale_device_etag_is_412(
    fleet: PartnerFleet, api: TestClient
) -> None:
    """R-CON-3: the device changed since it was read: 412, consent not granted; the
    current ETag is accepted and answered with the next one."""
    position = registered(api)
    tag = api.get(
        "/customers/C1/devices/D1", headers=bearer("acme", partnerfleet_wait_for=position)
    ).headers["etag"]
    post(api, "/customers/C1/link-removals", {"serials": ["D1"]})
    fresh = api.get("/customers/C1/devices/D1", headers=bearer("acme")).headers["etag"]

    stale = api.post(
        "/customers/C1/consent-grants",
        json={"serials": ["D1"]},
        headers=bearer("acme", if_match=tag),
    )
    current = api.post(
        "/customers/C1/consent-grants",
        json={"serials": ["D1"]},
        headers=bearer("acme", if_match=fresh),
    )

    assert (stale.status_code, problem_of(stale)["type"]) == (412, "/problems/precondition-failed")
    device = fleet.device("D1")
    assert current.status_code == 200
    assert current.headers["etag"] == f'"{device.id}.{device.version}"' != fresh


def test_r_con_3_a_period_without_an_offset_is_422_naming_the_parameter(api: TestClient) -> None:
    """R-CON-3: `since` as a local time has no single meaning: 422 on the query parameter;
    with an offset the history answers."""
    registered(api)

    naive, aware = (
        api.get("/customers/C1/consent-history", params={"since": t}, headers=bearer("acme"))
        for t in ("2026-01-01T00:00:00", "2026-01-01T00:00:00+01:00")
    )

    [error] = problem_of(naive)["errors"]
    assert (naive.status_code, error["field"], error["in"]) == (422, "since", "query")
    assert aware.status_code == 200
