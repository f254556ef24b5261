"""R-PAR-2, R-PAR-3, R-LNK-1…6 over HTTP: a customer registers and links its devices and
sees them in My IT Environment (infra/http/routes/devices.py); only its admin may."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from handlers import PartnerFleet
from tests.scenarios import event_count, in_memory_fleet
from tests.unit.devices_http import LOC_1, api, fleet, post, read, registered
from tests.unit.http_client import bearer, client, problem_of

__all__ = ["api", "fleet"]  # fixtures


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


def test_r_con_1_one_device_read_without_wait_for_shows_the_version_its_etag_names(
    fleet: PartnerFleet, api: TestClient
) -> None:
    """R-CON-1, R-PAR-2: consent granted after the views last caught up is shown by the
    device's read without Partnerfleet-Wait-For, under the ETag of that version (a stale body
    under a fresh ETag would let If-Match pass a change decided on the old state)."""
    position = registered(api)
    read(api, "/customers/C1/devices", position)
    api.post("/customers/C1/consent-grants", json={"serials": ["D1"]}, headers=bearer("acme"))

    answer = api.get("/customers/C1/devices/D1", headers=bearer("acme"))

    device = fleet.device("D1")
    assert answer.headers["etag"] == f'"{device.id}.{device.version}"'
    assert answer.json()["consent"]["granted"] is True


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


TAGS = ("devices, links and consent", "configuration", "service events and levels")


def test_r_par_3_every_device_route_is_documented_with_its_rule_ids_and_problems() -> None:
    """R-PAR-3: each operation of this group (13 for devices, 2 for configuration, 5 for
    service) names its rule IDs first and answers errors as problem+json."""
    paths = client(in_memory_fleet()).get("/openapi.json").json()["paths"]

    operations = [
        op for ops in paths.values() for op in ops.values() if set(op.get("tags", [])) & set(TAGS)
    ]

    assert [sum(op["tags"] == [tag] for op in operations) for tag in TAGS] == [
        12,
        2,
        5,
    ]  # the customers' consent history is the audit router's
    assert all(re.match(r"^R-[A-Z]{3}-\d+", op["description"]) for op in operations)
    assert all("application/problem+json" in op["responses"]["404"]["content"] for op in operations)
