"""Both seed stories end to end over HTTP (issue 9), on PostgreSQL (a schema of its own) and
on a SQLite file: the real app, real signed tokens, the read models of the storage, the
policies run as `serve` runs them. Each step is checked through the API itself.

- HP Premium (seeds/hp-wxp-partner-holding-tenant.de.txt): certify the partner, its
  holding tenant (R-PAR-4) ...
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


@pytest.fixture
def story(stored_settings: Settings, tmp_path: Path) -> Iterator[Story]:
    """A story's API on PostgreSQL or SQLite (the views in this test's own file or schema)."""
    settings = stored_settings.model_copy(update={"views_sqlite_path": tmp_path / "views.db"})
    running = Story(settings)
    yield running
    running.close()


def test_r_par_4_hp_premium_story_over_http(story: Story) -> None:
    """R-PAR-1, R-PAR-4: HP Premium, end to end over HTTP, each step read back."""
    story.do(OPS, "POST", "/partners", {"location_id": "HP-R1", "name": "Reseller"}, 201)
    story.do(OPS, "POST", "/partners/HP-R1/users", {"passport_id": "rita@hp-r1"}, 201)
    rita = token("rita@hp-r1", "partner_user", "HP-R1")

    certified = story.do(
        OPS, "POST", "/partners/HP-R1/certifications", {"programme": "resell_view_monitor"}, 201
    ).json()

    partner = story.read(rita, "/partners/HP-R1")
    assert partner["certifications"] == ["resell_view_monitor"]
    assert partner["holding_tenant_id"] == certified["holding_tenant_id"]
    story.do(OPS, "POST", "/partners/HP-R1/accreditation", {"csdp_account": "CSDP-R1"})
    again = story.do(
        OPS, "POST", "/partners/HP-R1/certifications", {"programme": "service_delivery"}, 201
    )
    assert again.json()["holding_tenant_id"] == certified["holding_tenant_id"]  # once (R-PAR-4)
    assert story.read(rita, "/partners/HP-R1")["partner_type"] == "service_partner"
