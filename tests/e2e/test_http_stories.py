"""Both seed stories end to end over HTTP (issue 9), on PostgreSQL (a schema of its own) and
on a SQLite file: the real app, real signed tokens, the read models of the storage, the
policies run as `serve` runs them. Each step is checked through the API itself.

- HP Premium (seeds/hp-wxp-partner-holding-tenant.de.txt): certify the partners (holding
  tenants), e2Open PCs over the intake route, a customer dashboard, transfer and reverse,
  an alert, repair cases routed to HP customer support or the service partner's CSDP queue.
- HPE (seeds/hpe-insight-online-my-customers.de.txt): ...
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.bootstrap import build_fleet, build_policy_runner, build_view_runner
from infra.http.app import create_api
from infra.settings import Settings
from tests.auth_keys import claims_body, signed, verifier
from tests.unit.http_world import Api

pytestmark = pytest.mark.postgres


class Story:
    """The API over a fleet on real storage, and the principals of a story as signed
    tokens; reads wait for the last write (read-your-writes)."""

    def __init__(self, settings: Settings) -> None:
        self.fleet = build_fleet(settings)
        self.views = build_view_runner(settings, self.fleet)
        self.policies = build_policy_runner(self.fleet)
        app = create_api(self.fleet, settings, self.views, verifier=verifier())
        self.api = Api(app)

    def close(self) -> None:
        """Close the client, the views' database and the store."""
        self.api.close()
        self.views.db.close()
        self.fleet.close()

    def do(
        self, who: str, method: str, path: str, body: Any = None, status: int = 200
    ) -> httpx.Response:
        """`method path` with `body` as the principal `who` (a token); asserts `status`."""
        answer = self.api.as_(who, method, path, json=body)
        assert answer.status_code == status, f"{method} {path}: {answer.text}"
        return answer

    def read(self, who: str, path: str, **params: str) -> Any:
        """The JSON of a successful GET `path` as `who`."""
        answer = self.api.as_(who, "GET", path, params=params)
        assert answer.status_code == 200, f"GET {path}: {answer.text}"
        return answer.json()

    def run_policies(self) -> None:
        """The policies catch up (as `serve` runs them), and reads wait for what they did."""
        self.policies.catch_up()
        self.api.position = self.fleet.recorder.max_notification_id() or 0


def token(sub: str, role: str, tenant: str | None = None, pcs: list[str] | None = None) -> str:
    """A signed bearer token for `sub` in `role` (of `tenant`, working on `pcs`)."""
    return signed(claims_body(sub=sub, role=role, tenant=tenant, pcs=pcs))


OPS = token("ops@hp.example", "operator")
FEED = token("feed:e2open", "feed")


@pytest.fixture
def story(stored_settings: Settings, tmp_path: Path) -> Iterator[Story]:
    """A story's API on PostgreSQL or SQLite (the views in this test's own file or schema)."""
    settings = stored_settings.model_copy(update={"views_sqlite_path": tmp_path / "views.db"})
    running = Story(settings)
    yield running
    running.close()


def partner_with_user(story: Story, location_id: str, passport: str) -> str:
    """A registered partner with its first user (its admin); that user's token."""
    story.do(OPS, "POST", "/partners", {"location_id": location_id, "name": location_id}, 201)
    story.do(OPS, "POST", f"/partners/{location_id}/users", {"passport_id": passport}, 201)
    return token(passport, "partner_user", location_id)


def e2open(serial: str, location_id: str) -> dict[str, str]:
    """An e2Open report of a Premium PC resold by `location_id` (R-HLD-1)."""
    return {
        "serial": serial,
        "model": "EliteBook 840",
        "reseller_location_id": location_id,
        "distributor": "Ingram",
        "ship_date": "2026-10-01",
        "care_plan": "premium",
    }


def serials(page: Any, field: str = "items") -> list[str]:
    """The serials of a page's items (or of a list under `field`)."""
    return sorted(item["serial"] for item in page[field])


def test_r_hld_3_hp_premium_story_over_http(story: Story) -> None:
    """R-PAR-4, R-HLD-1, R-HLD-3, R-ALR-1…3: certify a reseller (holding tenant once), its
    e2Open PCs land unassigned, a customer dashboard, transfer and reverse, an alert told to
    the PC's end user, whose repair case goes to HP customer support; a service partner's
    case goes to its CSDP queue. Each step read back over HTTP."""
    rita = partner_with_user(story, "HP-R", "rita@hp-r")
    sam = partner_with_user(story, "HP-S", "sam@hp-s")
    story.do(OPS, "POST", "/partners/HP-S/accreditation", {"csdp_account": "CSDP-S"})
    held = {}
    for location_id, programme in (("HP-R", "resell_view_monitor"), ("HP-S", "service_delivery")):
        path = f"/partners/{location_id}/certifications"
        certified = story.do(OPS, "POST", path, {"programme": programme}, 201).json()
        held[location_id] = certified["holding_tenant_id"]
    assert story.read(rita, "/partners/HP-R")["holding_tenant_id"] == held["HP-R"]

    # R-HLD-1: PCs resold and reported through e2Open land unassigned; a bad one is kept
    batch = [e2open("PCR1", "HP-R"), e2open("PCR2", "HP-R"), e2open("PCS1", "HP-S")]
    outcome = story.do(
        FEED, "POST", "/intake/e2open/batches", {"batch_id": "b1", "reports": [*batch, {}]}
    ).json()
    assert sorted(outcome["accepted"]) == ["PCR1", "PCR2", "PCS1"]
    assert [r["index"] for r in outcome["rejected"]] == [3]
    assert serials(story.read(rita, "/partners/HP-R/holding-tenant/pcs")) == ["PCR1", "PCR2"]
    assert serials(story.read(sam, "/partners/HP-S/holding-tenant/pcs")) == ["PCS1"]

    # R-HLD-3: a customer dashboard; transfer PCs in, reverse one, each read back
    dashboards = {}
    for location_id, who, customer in (("HP-R", rita, "ACME"), ("HP-S", sam, "GLOBEX")):
        body = {"customer_id": customer, "customer_name": customer.title(), "cpin": "7-ACME"}
        made = story.do(who, "POST", f"/partners/{location_id}/dashboards", body, 201).json()
        dashboards[location_id] = made["dashboard_id"]
    acme = dashboards["HP-R"]
    move = {"serials": ["PCR1", "PCR2"], "source_id": held["HP-R"], "target_id": acme}
    story.do(rita, "POST", "/partners/HP-R/transfers", {"transfer_id": "t1", **move}, 201)
    dashboard = story.read(rita, f"/partners/HP-R/dashboards/{acme}")
    assert (dashboard["pcs"], dashboard["premium_pcs"]) == (2, 2)
    assert dashboard["self_service_notifications"] is True  # R-ALR-3: on with the first PC
    group = story.read(rita, f"/partners/HP-R/customer-groups/{acme}")
    assert serials(group, "devices") == ["PCR1", "PCR2"]
    assert story.read(rita, "/partners/HP-R/holding-tenant/pcs")["items"] == []
    back = {"serials": ["PCR2"], "source_id": acme, "target_id": held["HP-R"]}
    story.do(rita, "POST", "/partners/HP-R/transfers", {"transfer_id": "t2", **back}, 201)
    assert serials(story.read(rita, "/partners/HP-R/holding-tenant/pcs")) == ["PCR2"]
    assert serials(story.read(rita, f"/partners/HP-R/customer-groups/{acme}"), "devices") == [
        "PCR1"
    ]
    other = {"serials": ["PCS1"], "source_id": held["HP-S"], "target_id": dashboards["HP-S"]}
    story.do(sam, "POST", "/partners/HP-S/transfers", {"transfer_id": "t1", **other}, 201)

    # R-ALR-1: an alert goes to the PC's end user as a self-service pop-up
    for pc in ("PCR1", "PCS1"):
        alert = {"alert_id": f"A-{pc}", "severity": "critical", "message": "Battery failing"}
        story.do(FEED, "POST", f"/devices/{pc}/alerts", alert, 201)
    story.run_policies()
    told = story.read(OPS, "/operations/alerts", audience="end_user")["items"]
    assert sorted(n["serial"] for n in told) == ["PCR1", "PCS1"]

    # R-ALR-2: the end user's case goes to HP customer support (reseller) or the CSDP queue
    for pc, customer in (("PCR1", "ACME"), ("PCS1", "GLOBEX")):
        user = token(f"user@{pc}", "end_user", customer, [pc])
        case = {"alert_id": f"A-{pc}", "case_id": f"K-{pc}"}
        story.do(user, "POST", f"/devices/{pc}/repair-cases", case, 201)
    story.run_policies()
    hp_queue = story.read(OPS, "/operations/repair-queues/hp_customer_support")["items"]
    assert [c["case_id"] for c in hp_queue] == ["K-PCR1"]
    assert [c["case_id"] for c in story.read(sam, "/partners/HP-S/csdp-queue")["items"]] == [
        "K-PCS1"
    ]
    refused = story.api.as_(rita, "GET", "/partners/HP-R/csdp-queue")
    assert refused.status_code == 403  # R-SVC-1: a reseller has no CSDP queue


def server(serial: str) -> dict[str, str]:
    """A direct-connect server to register (R-LNK-3)."""
    return {"serial": serial, "connection": "direct_connect", "model": "DL380"}


def test_r_fav_2_hpe_story_over_http(story: Story) -> None:
    """R-LNK-1, R-LNK-4, R-CON-2, R-FAV-1…3, R-SVC-1, R-GRP-2: a customer links its servers
    to a reseller and a service partner and consents; All Customers; favourites to the 25
    limit and the 26th refused; service events for the service partner only; deleting the
    customer group refused with its admins, then allowed. Each step read back over HTTP."""
    rosa = partner_with_user(story, "HPE-R", "rosa@hpe-r")
    sven = partner_with_user(story, "HPE-S", "sven@hpe-s")
    story.do(OPS, "POST", "/partners/HPE-S/accreditation", {"csdp_account": "CSDP-HPE"})
    contoso = token("it@contoso", "customer_admin", "CONTOSO")

    # R-LNK-1, R-LNK-3, R-LNK-4: register linked to the reseller, link a service partner
    registration = {
        "devices": [server("SRV1"), server("SRV2")],
        "partner": {"location_id": "HPE-R"},
        "customer_name": "Contoso",
    }
    story.do(contoso, "POST", "/customers/CONTOSO/devices", registration, 201)
    service = {"serials": ["SRV1"], "partner": {"location_id": "HPE-S", "role": "service_partner"}}
    story.do(contoso, "POST", "/customers/CONTOSO/links", service)
    links = story.read(contoso, "/customers/CONTOSO/devices/SRV1")["links"]
    assert links == {"reseller": "HPE-R", "service_partner": "HPE-S"}

    # R-CON-1, R-CON-2: configuration data only with consent
    story.do(contoso, "POST", "/customers/CONTOSO/consent-grants", {"serials": ["SRV1"]})
    assert story.read(contoso, "/customers/CONTOSO/devices/SRV1")["consent"]["granted"] is True
    data = {"data": {"bios": "2.1"}}
    story.do(FEED, "PUT", "/devices/SRV1/configuration", data)
    unconsented = story.api.as_(FEED, "PUT", "/devices/SRV2/configuration", json=data)
    assert (unconsented.status_code, unconsented.json()["rule"]) == (409, "R-CON-2")
    assert story.read(rosa, "/partners/HPE-R/devices/SRV1/configuration")["data"] == {"bios": "2.1"}
    without = story.api.as_(rosa, "GET", "/partners/HPE-R/devices/SRV2/configuration")
    assert (without.status_code, without.json()["rule"]) == (403, "R-CON-2")

    # R-FAV-1: All Customers lists customer objects, not devices
    [tile] = story.read(rosa, "/partners/HPE-R/customer-groups")["items"]
    assert (tile["customer_id"], tile["devices"]["direct_connect"]) == ("CONTOSO", 2)
    group = tile["group_id"]

    # R-FAV-2, R-FAV-3: favourites to the limit of 25; the 26th is refused
    for n in range(25):
        customer = token(f"it@c{n:02d}", "customer_admin", f"C{n:02d}")
        body = {"devices": [server(f"SRVC{n:02d}")], "partner": {"location_id": "HPE-R"}}
        story.do(customer, "POST", f"/customers/C{n:02d}/devices", body, 201)
    tiles = story.read(rosa, "/partners/HPE-R/customer-groups", limit="50")["items"]
    assert len(tiles) == 26
    for tile in tiles[:25]:
        story.do(rosa, "POST", "/partners/HPE-R/me/favourites", {"group_id": tile["group_id"]}, 201)
    refused = story.api.as_(
        rosa, "POST", "/partners/HPE-R/me/favourites", json={"group_id": tiles[25]["group_id"]}
    )
    assert (refused.status_code, refused.json()["rule"]) == (409, "R-FAV-2")
    profile = story.read(rosa, "/partners/HPE-R/me")
    assert (profile["favourites"], profile["favorites_only_available"]) == (25, True)

    # R-SVC-1: service events for the service partner, never for the reseller
    event = {"event_id": "E1", "severity": "critical", "summary": "PSU failed"}
    story.do(FEED, "POST", "/devices/SRV1/service-events", event, 201)
    assert [e["event_id"] for e in story.read(sven, "/partners/HPE-S/service-events")["items"]] == [
        "E1"
    ]
    as_reseller = story.api.as_(rosa, "GET", "/partners/HPE-R/service-events")
    assert (as_reseller.status_code, as_reseller.json()["rule"]) == (403, "R-SVC-1")

    # R-GRP-2: deleting the group is refused while devices and child groups remain, naming
    # its admins; allowed once they are gone
    child = {"child_id": "racks", "name": "Racks"}
    story.do(rosa, "POST", f"/partners/HPE-R/customer-groups/{group}/child-groups", child, 201)
    path = f"/partners/HPE-R/customer-groups/{group}"
    blocked = story.api.as_(rosa, "DELETE", path)
    assert (blocked.status_code, blocked.json()["rule"]) == (409, "R-GRP-2")
    assert "rosa@hpe-r" in blocked.json()["detail"]
    story.do(contoso, "POST", "/customers/CONTOSO/link-removals", {"serials": ["SRV1", "SRV2"]})
    story.do(rosa, "DELETE", f"{path}/child-groups/racks", status=204)
    story.do(rosa, "DELETE", path, status=204)
    assert story.api.as_(rosa, "GET", path).status_code == 404
    listed = story.read(rosa, "/partners/HPE-R/customer-groups", limit="50")["items"]
    assert "CONTOSO" not in {tile["customer_id"] for tile in listed}
