"""Session 18: a date or instant from outside is ISO 8601 text, never a number (domain/iso.py).

pydantic's lax mode read 1700000000, "1700000000" or "20230101" as a Unix time. Every input
that carries a date or datetime refuses them with an error naming the field, and stores
nothing of what it refused: e2Open reports (HTTP, Kafka, the command), service levels,
the audit and consent-history moments (HTTP query parameters), the CLI's --at.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter, ValidationError
from typer.testing import CliRunner

from domain import Device
from domain.intake import E2OpenReport, plain_report
from domain.iso import IsoAwareDatetime, IsoDate, IsoDatetime
from handlers import PartnerFleet
from infra.cli.app import cli
from tests.scenarios import OPS, event_count, partner
from tests.unit.audit_http import api_of, world
from tests.unit.conftest import e2open_report
from tests.unit.feed_fakes import FakeProducer, FakeTopic, feed_consumer
from tests.unit.http_client import bearer, problem_of

# A number, or text of digits, that lax pydantic read as a Unix time (1699920000 is a
# midnight: it was taken as that day even by a plain `date`).
NUMERIC: dict[str, object] = {
    "an integer": 1700000000,
    "a midnight integer": 1699920000,
    "a float": 1699920000.0,
    "digits": "1700000000",
    "midnight digits": "1699920000",
    "ISO basic digits": "20230101",
    "zero": 0,
    "signed digits": "-86400",
}
DATE_REFUSALS = {**NUMERIC, "a time in a date": "2026-10-01T00:00:00Z", "padded": " 2026-10-01"}


def shipped(serial: str, day: object) -> dict[str, object]:
    """A report of `serial` shipped on `day`, whatever `day` is."""
    return {**e2open_report(serial), "ship_date": day}


@pytest.mark.parametrize("value", NUMERIC.values(), ids=NUMERIC.keys())
@pytest.mark.parametrize(
    "kind", [IsoDate, IsoDatetime, IsoAwareDatetime], ids=["date", "datetime", "aware"]
)
def test_a_number_or_digits_are_no_date_or_instant(kind: Any, value: object) -> None:
    with pytest.raises(ValidationError) as refused:
        TypeAdapter(kind).validate_python(value)

    [error] = refused.value.errors()
    assert error["type"] in ("date_not_iso", "datetime_not_iso")
    assert "Unix time" in error["msg"]
    assert "ISO 8601" in error["msg"]


def test_iso_text_and_values_made_by_code_still_pass() -> None:
    assert TypeAdapter(IsoDate).validate_python("2026-10-01") == date(2026, 10, 1)
    assert TypeAdapter(IsoDate).validate_python(date(2026, 10, 1)) == date(2026, 10, 1)
    instant = TypeAdapter(IsoAwareDatetime).validate_python("2026-10-01T08:00:00+02:00")
    assert instant.isoformat() == "2026-10-01T08:00:00+02:00"
    assert TypeAdapter(IsoDate).json_schema() == {"type": "string", "format": "date"}


# --- e2Open reports: the model, the plain path, the command, Kafka, HTTP ----------------------


@pytest.mark.parametrize("value", DATE_REFUSALS.values(), ids=DATE_REFUSALS.keys())
def test_r_hld_1_a_report_with_a_numeric_ship_date_is_refused_by_both_paths(value: object) -> None:
    """R-HLD-1: the model names ship_date; the plain path leaves it to the model."""
    raw = shipped("PC1", value)

    with pytest.raises(ValidationError) as refused:
        E2OpenReport.model_validate(raw)

    assert [e["loc"] for e in refused.value.errors()] == [("ship_date",)]
    assert plain_report(raw) is None


@pytest.mark.parametrize("value", DATE_REFUSALS.values(), ids=DATE_REFUSALS.keys())
def test_r_hld_1_the_intake_rejects_a_numeric_ship_date_and_lands_the_rest(
    app: PartnerFleet, holding_tenant: UUID, value: object
) -> None:
    """R-HLD-1: the report is kept as rejected naming ship_date; nothing of its PC is stored."""
    reports = [e2open_report("PC1"), shipped("PC2", value), e2open_report("PC3")]

    outcome = app.receive_e2open_batch(OPS, "b-iso", reports)

    assert outcome.accepted == ["PC1", "PC3"]
    [rejection] = outcome.rejected
    assert (rejection.index, rejection.serial) == (1, "PC2")
    assert rejection.reason.startswith("malformed report: ship_date: Input should be an ISO")
    assert Device.id_for("PC2") not in app.repository


def test_r_hld_1_kafka_dead_letters_a_numeric_ship_date_and_takes_the_reports_behind() -> None:
    """R-HLD-1: on the feed the rejection is dead-lettered; the offset moves past it."""
    topic, producer = FakeTopic("partnerfleet.e2open.reports.v1"), FakeProducer()
    consumer = feed_consumer("e2open", topic, producer)
    partner(consumer.fleet, "LOC-1")
    topic.append(
        *(
            json.dumps(shipped(serial, day)).encode()
            for serial, day in (("PC1", 1699920000), ("PC2", "1700000000"), ("PC3", "2026-10-01"))
        )
    )

    consumer.poll_once()

    holding = consumer.fleet.partner("LOC-1").holding_tenant_id
    assert consumer.fleet.device("PC3").placement == holding
    assert not any(Device.id_for(s) in consumer.fleet.repository for s in ("PC1", "PC2"))
    assert all("ship_date: Input should be an ISO 8601 date" in r for r in producer.reasons())
    assert (len(producer.sent), topic.committed) == (2, 3)


# --- HTTP: bodies and query parameters --------------------------------------------------------


@pytest.fixture
def audit_fleet() -> PartnerFleet:
    """The audit world, in memory."""
    return world()


@pytest.fixture
def audit_api(audit_fleet: PartnerFleet) -> TestClient:
    """A client of the audit world."""
    return api_of(audit_fleet)


def invalid_field(answer: Any) -> dict[str, str]:
    """The one invalid field of a 422 problem details answer."""
    problem = problem_of(answer)
    assert (answer.status_code, problem["type"]) == (422, "/problems/invalid-fields")
    [error] = problem["errors"]
    return {k: error[k] for k in ("field", "in")}


LEVEL = {"kind": "warranty", "name": "Base warranty", "starts": "2025-01-01", "ends": "2027-12-31"}


@pytest.mark.parametrize("value", [1735689600, "1735689600", "20250101"])
@pytest.mark.parametrize("field", ["starts", "ends"])
def test_r_svc_3_a_service_level_with_a_numeric_day_is_422_naming_it(
    audit_fleet: PartnerFleet, audit_api: TestClient, field: str, value: object
) -> None:
    """R-SVC-3: starts and ends are ISO days; nothing is stored."""
    stored = event_count(audit_fleet)

    answer = audit_api.post(
        "/devices/S1/service-levels", json={**LEVEL, field: value}, headers=bearer("ops")
    )

    assert invalid_field(answer) == {"field": field, "in": "body"}
    assert "Unix time" in problem_of(answer)["errors"][0]["message"]
    assert event_count(audit_fleet) == stored


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/audit/consent-in-effect", {"serial": "S1", "partner": "LOC-1"}, "at"),
        ("/audit/consent-history", {"serial": "S1"}, "since"),
        ("/audit/consent-history", {"serial": "S1"}, "until"),
        ("/audit/consent-history/export", {"serial": "S1"}, "until"),
    ],
)
@pytest.mark.parametrize("value", ["1700000000", "1699920000", "20230101"])
def test_r_con_3_an_audit_moment_of_digits_is_422_naming_the_query_parameter(
    audit_api: TestClient, path: str, params: dict[str, str], field: str, value: str
) -> None:
    """R-CON-3, R-CON-4: a moment is ISO 8601 text with an offset, not a Unix time."""
    answer = audit_api.get(path, params={**params, field: value}, headers=bearer("auditor"))

    assert invalid_field(answer) == {"field": field, "in": "query"}


def test_r_svc_3_as_of_of_digits_is_422_naming_it(audit_api: TestClient) -> None:
    """R-SVC-3: the day asked about is an ISO day."""
    answer = audit_api.get(
        "/partners/LOC-1/devices/S1/service-levels",
        params={"as_of": "1699920000"},
        headers=bearer("anna"),
    )

    assert invalid_field(answer) == {"field": "as_of", "in": "query"}


@pytest.mark.parametrize("field", ["since", "until"])
def test_r_con_3_a_devices_history_since_digits_is_422(audit_api: TestClient, field: str) -> None:
    """R-CON-3: the customer's own device history takes ISO moments only."""
    answer = audit_api.get(
        "/customers/C1/devices/S1/consent-history",
        params={field: "1700000000"},
        headers=bearer("acme"),
    )

    assert invalid_field(answer) == {"field": field, "in": "query"}


# --- the CLI ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["1700000000", "20260601", "1700000000+00:00"])
def test_r_con_4_the_clis_at_of_digits_is_a_usage_error(tmp_path: Path, value: str) -> None:
    """R-CON-4: --at is ISO 8601 text; digits exit 2 naming --at, nothing written."""
    output = tmp_path / "out.jsonl"
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'events.sqlite3'}"}

    args = ["consent", "--as", "auditor:dpo", "--device", "S1", "--at", value]

    result = CliRunner().invoke(cli, ["audit", *args, "--output", str(output)], env=env)

    assert result.exit_code == 2
    assert f"--at {value!r} is not an ISO 8601 instant" in result.stderr
    assert not output.exists()
