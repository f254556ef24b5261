"""R-PAR-2, R-PAR-3, R-LNK-*, R-CON-*, R-ALR-2 over HTTP: a customer's devices, links and
consent, My IT Environment and consent history (infra/http/routes/devices.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from handlers import PartnerFleet
from handlers.access import Claims
from tests.scenarios import event_count, in_memory_fleet
from tests.unit.http_client import OPS, TOKENS, bearer, client, problem_of, two_partners
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


def test_r_par_2_my_it_environment_groups_devices_and_shows_links(api: TestClient) -> None:
    """R-PAR-2, R-PAR-3, R-LNK-3: standalone devices first, then the host and its devices;
    the partner linked at registration is shown per role."""
    position = registered(api)

    page = read(api, "/customers/C1/devices", position)

    assert [(g["host"], [d["serial"] for d in g["devices"]]) for g in page["groups"]] == [
        (None, ["D1", "D2"]),
        ("HOST1", ["HOST1", "CC1", "CC2"]),
    ]
    assert page["groups"][0]["devices"][0]["links"] == {"reseller": "LOC-1"}
    assert page["groups"][1]["devices"][0]["is_hosting_device"] is True
    assert page["next_cursor"] is None


def test_r_par_2_my_it_environment_pages_with_a_cursor(api: TestClient) -> None:
    """R-PAR-2: five devices by two: three pages, each device once, in order."""
    position = registered(api)
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}

    for _ in range(3):
        page = read(api, "/customers/C1/devices", position, **params)
        seen += [d["serial"] for g in page["groups"] for d in g["devices"]]
        params["cursor"] = page["next_cursor"]

    assert params["cursor"] is None
    assert seen == ["D1", "D2", "HOST1", "CC1", "CC2"]


def test_r_par_2_one_device_carries_its_version_as_etag(
    fleet: PartnerFleet, api: TestClient
) -> None:
    """R-PAR-2: GET one device: its consent and links, and an ETag naming its version."""
    position = registered(api)

    answer = api.get(
        "/customers/C1/devices/d1", headers=bearer("acme", partnerfleet_wait_for=position)
    )

    device = fleet.device("D1")
    assert answer.headers["etag"] == f'"{device.id}.{device.version}"'
    assert answer.json()["consent"] == {
        "granted": False,
        "text_version": None,
        "scope": None,
        "since": None,
    }


@pytest.mark.parametrize(
    ("who", "status", "kind"),
    [("globex", 404, "not-found"), ("anna", 403, "forbidden"), ("auditor", 403, "forbidden")],
)
def test_r_par_2_only_the_customer_reads_its_environment(
    api: TestClient, who: str, status: int, kind: str
) -> None:
    """R-PAR-2: another customer gets 404 (nothing leaks), a partner or auditor 403."""
    position = registered(api)

    answers = [
        api.get(path, headers=bearer(who, partnerfleet_wait_for=position))
        for path in ("/customers/C1/devices", "/customers/C1/devices/D1")
    ]

    assert [(a.status_code, problem_of(a)["type"]) for a in answers] == [
        (status, f"/problems/{kind}")
    ] * 2


def test_r_lnk_6_link_relink_and_unlink_change_the_links_shown(api: TestClient) -> None:
    """R-LNK-1, R-LNK-4, R-LNK-6: link LOC-2 as service partner beside the reseller, then
    remove the reseller: only the service partner stays."""
    registered(api)
    service = {"serials": ["d1"], "partner": {"location_id": "LOC-2", "role": "service_partner"}}

    linked = post(api, "/customers/C1/links", service)
    unlinked = post(api, "/customers/C1/link-removals", {"serials": ["D1"], "role": "reseller"})

    assert linked.json() == {
        "customer_id": "C1",
        "serials": ["D1"],
        "location_id": "LOC-2",
        "role": "service_partner",
    }
    assert unlinked.json() == {"customer_id": "C1", "serials": ["D1"], "role": "reseller"}
    device = read(api, "/customers/C1/devices/D1", unlinked.headers["partnerfleet-position"])
    assert device["links"] == {"service_partner": "LOC-2"}


def test_r_lnk_2_the_hosting_devices_partner_applies_to_every_device_it_manages(
    api: TestClient,
) -> None:
    """R-LNK-2: PUT the host's partner once: the host and both its devices are linked."""
    registered(api)

    answer = api.put(
        "/customers/C1/hosting-devices/host1/partner",
        json={"partner": LOC_1},
        headers=bearer("acme"),
    )

    assert answer.json()["host_serial"] == "HOST1"
    page = read(api, "/customers/C1/devices", answer.headers["partnerfleet-position"])
    hosted = page["groups"][1]["devices"]
    assert [d["links"] for d in hosted] == [{"reseller": "LOC-1"}] * 3


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


COMMANDS = [
    (
        "post",
        "/customers/{c}/devices",
        {"devices": [{"serial": "X1", "connection": "direct_connect"}]},
    ),
    ("post", "/customers/{c}/links", {"serials": ["D1"], "partner": LOC_1}),
    ("post", "/customers/{c}/link-removals", {"serials": ["D1"]}),
    ("put", "/customers/{c}/hosting-devices/HOST1/partner", {"partner": LOC_1}),
    ("post", "/customers/{c}/consent-grants", {"serials": ["D1"]}),
    ("post", "/customers/{c}/consent-withdrawals", {"serials": ["D1"]}),
    ("put", "/customers/{c}/hosting-devices/HOST1/consent", {}),
    ("delete", "/customers/{c}/hosting-devices/HOST1/consent", None),
    (
        "put",
        "/customers/{c}/insight-rs-case-routing",
        {"serials": ["D1"], "to_service_partner": True},
    ),
]


@pytest.mark.parametrize(("method", "path", "body"), COMMANDS, ids=lambda v: str(v)[:40])
def test_r_con_3_only_the_owning_customer_commands_its_devices(
    fleet: PartnerFleet, api: TestClient, method: str, path: str, body: Any
) -> None:
    """R-CON-3, R-LNK-1: a partner user is 403, another customer's admin 404 (its own id
    naming Acme's devices, or Acme's id); nothing is stored."""
    registered(api)
    stored = event_count(fleet)

    def call(who: str, customer: str) -> tuple[int, str]:
        kwargs: dict[str, Any] = {} if body is None else {"json": body}
        answer = api.request(method, path.format(c=customer), headers=bearer(who), **kwargs)
        return answer.status_code, problem_of(answer)["type"]

    assert call("anna", "C1") == (403, "/problems/forbidden")
    assert call("globex", "C1") == (404, "/problems/not-found")
    if "devices" not in path:  # Globex registering under its own id is fine, not refused
        assert call("globex", "C2") == (404, "/problems/not-found")
    assert event_count(fleet) == stored


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


TAGS = ("devices, links and consent", "configuration", "service events and levels")


def test_r_par_3_every_device_route_is_documented_with_its_rule_ids_and_problems() -> None:
    """R-PAR-3: each operation of this group (13 for devices, 2 for configuration, 5 for
    service) names its rule IDs first and answers errors as problem+json."""
    paths = client(in_memory_fleet()).get("/openapi.json").json()["paths"]

    operations = [
        op for ops in paths.values() for op in ops.values() if set(op.get("tags", [])) & set(TAGS)
    ]

    assert [sum(op["tags"] == [tag] for op in operations) for tag in TAGS] == [13, 2, 5]
    assert all(re.match(r"^R-[A-Z]{3}-\d+", op["description"]) for op in operations)
    assert all("application/problem+json" in op["responses"]["404"]["content"] for op in operations)
