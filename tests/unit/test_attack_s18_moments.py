"""Attack on session 18's dates (issue 11): moments whose UTC instant falls outside years
1-9999, and offsets written with digits other than ASCII ones, through every input that
takes a moment (HTTP query parameters, the CLI's --at, the portal's audit form) and the
relay's --shard. Each is refused with a message naming the field, never a crash."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter, ValidationError

from domain.iso import IsoAwareDatetime, IsoDatetime
from handlers import PartnerFleet
from handlers.devices import PartnerChoice
from infra.bootstrap import build_fleet
from infra.kafka.shards import Shard
from infra.settings import Settings
from tests.scenarios import CUSTOMER, partner, servers
from tests.unit.audit_http import CLAIMS, api_of, read, world
from tests.unit.http_client import problem_of
from tests.unit.portal_world import Portal, open_portal
from tests.unit.test_audit_cli import AS_AUDITOR, audit

BEYOND_UTC = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]


@pytest.fixture
def portal() -> Iterator[Portal]:
    opened = open_portal(world(), CLAIMS)
    yield opened
    opened.close()


@pytest.mark.parametrize("kind", [IsoDatetime, IsoAwareDatetime])
@pytest.mark.parametrize("text", BEYOND_UTC)
def test_a_moment_beyond_years_1_9999_in_utc_is_refused_where_it_is_read(
    kind: Any, text: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        TypeAdapter(kind).validate_python(text)

    assert refused.value.errors()[0]["type"] == "datetime_out_of_range"
    assert "years 1-9999 in UTC" in refused.value.errors()[0]["msg"]


@pytest.mark.parametrize(
    "text", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59"]
)
def test_moments_at_the_edges_of_utc_and_naive_ones_still_pass(text: str) -> None:
    assert TypeAdapter(IsoDatetime).validate_python(text).year in (1, 9999)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A SQLite store with C1's S1 linked to LOC-1 and granted (the CLI's world)."""
    url = f"sqlite:///{tmp_path / 'events.sqlite3'}"
    fleet = build_fleet(Settings(database_url=url))
    partner(fleet, "LOC-1")
    fleet.register_devices(CUSTOMER, "C1", servers("S1"), PartnerChoice(location_id="LOC-1"))
    fleet.grant_consent(CUSTOMER, "C1", ["S1"], text_version="2024-01")
    fleet.close()
    return {"DATABASE_URL": url, "VIEWS_SQLITE_PATH": str(tmp_path / "views.sqlite3")}


@pytest.fixture
def fleet() -> PartnerFleet:
    return world()


@pytest.mark.parametrize(
    ("path", "name", "field", "params"),
    [
        ("/audit/consent-history", "auditor", "since", {"serial": "S1"}),
        ("/audit/consent-history", "auditor", "until", {"serial": "S1"}),
        ("/audit/consent-history/export", "auditor", "since", {"serial": "S1"}),
        ("/audit/consent-in-effect", "auditor", "at", {"serial": "S1", "partner": "LOC-1"}),
        ("/customers/C1/consent-history", "acme", "since", {}),
        ("/customers/C1/devices/S1/consent-history", "acme", "until", {}),
    ],
)
@pytest.mark.parametrize("moment", BEYOND_UTC)
def test_http_a_moment_beyond_utc_is_422_naming_the_parameter(
    fleet: PartnerFleet, path: str, name: str, field: str, params: dict[str, str], moment: str
) -> None:
    api: TestClient = api_of(fleet)

    answer = read(api, fleet, path, name, **params, **{field: moment})

    problem = problem_of(answer)
    assert (answer.status_code, problem["type"]) == (422, "/problems/invalid-fields")
    assert [e["field"] for e in problem["errors"]] == [field]
    assert "years 1-9999 in UTC" in json.dumps(problem["errors"])


def test_cli_at_the_last_microsecond_is_the_whole_history(env: dict[str, str]) -> None:
    code, out, err = audit(
        env, *AS_AUDITOR, "--device", "S1", "--at", "9999-12-31T23:59:59.999999Z"
    )
    whole = audit(env, *AS_AUDITOR, "--device", "S1")[1]

    assert (code, err) == (0, "")
    assert out == whole
    assert out


@pytest.mark.parametrize("moment", BEYOND_UTC)
def test_cli_at_beyond_utc_exits_2_naming_at(env: dict[str, str], moment: str) -> None:
    code, out, err = audit(env, *AS_AUDITOR, "--device", "S1", "--at", moment)

    assert (code, out) == (2, "")
    assert f"--at {moment!r}" in err
    assert "years 1-9999 in UTC" in err


@pytest.mark.parametrize(
    ("at", "zone"),
    [
        ("9999-12-31T23:59:00Z", "+14:00"),  # in UTC, but not as the zone field's time
        ("0001-01-01T00:00:00Z", "-05:00"),
        ("0001-01-01T00:00:00+01:00", "UTC"),
        ("9999-12-31T23:59", "-05:00"),  # the zone's time beyond UTC
    ],
)
def test_portal_a_moment_that_cannot_be_shown_or_asked_is_422_not_500(
    portal: Portal, at: str, zone: str
) -> None:
    portal.browser.sign_in("auditor")

    page = portal.browser.get(
        "/portal/audit", params={"serial": "S1", "partner": "LOC-1", "at": at, "zone": zone}
    )

    assert page.status_code in (200, 422)
    assert 'id="serial" name="serial"' in page.text
    if page.status_code == 422:
        assert "is outside years 1-9999 in UTC" in page.text


@pytest.mark.parametrize("zone", ["+\u00b2\u00b2", "+\u0662\u0660", "+\uff10\uff12:00", "-\u0665"])
def test_portal_an_offset_of_other_digits_is_refused(portal: Portal, zone: str) -> None:
    portal.browser.sign_in("auditor")

    page = portal.browser.get(
        "/portal/audit",
        params={"serial": "S1", "partner": "LOC-1", "at": "2026-01-01T00:00", "zone": zone},
    )

    assert page.status_code == 422
    assert "is not one like +02:00" in page.text


@pytest.mark.parametrize("text", ["\u00b2/3", "\u0662/\u0663", "\uff12/\uff13", "1/\u00b3"])
def test_relay_shard_of_other_digits_is_not_i_n(text: str) -> None:
    with pytest.raises(ValueError, match="is not I/N"):
        Shard.parse(text)


def test_the_portal_question_at_year_one_in_utc_is_answered(portal: Portal) -> None:
    portal.browser.sign_in("auditor")
    at = datetime(1, 1, 1, tzinfo=UTC).isoformat()

    page = portal.browser.get(
        "/portal/audit", params={"serial": "S1", "partner": "LOC-1", "at": at}
    )

    assert page.status_code == 200
