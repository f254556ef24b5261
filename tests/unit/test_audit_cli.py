"""`partnerfleet audit consent` (R-CON-3, R-CON-4): exports as a principal, on a SQLite file.

The CLI runs in-process (typer's CliRunner) against a SQLite event store and view file of
the test's own; the world is made with the command side first.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from handlers.devices import PartnerChoice
from infra.bootstrap import build_fleet
from infra.cli.app import cli as app
from infra.settings import Settings
from projections.consent import HISTORY_COLUMNS
from tests.auth_keys import ISSUER, claims_body, jwks_file, signed, signing_key
from tests.scenarios import CUSTOMER, partner, servers

AS_AUDITOR = ["--as", "auditor:dpo@hp.example"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A SQLite store with C1's S1 and S2 linked to LOC-1; S1 granted, withdrawn, granted."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'events.sqlite3'}")
    fleet = build_fleet(settings)
    partner(fleet, "LOC-1")
    choice = PartnerChoice(location_id="LOC-1")
    fleet.register_devices(CUSTOMER, "C1", servers("S1", "S2"), choice)
    fleet.grant_consent(CUSTOMER, "C1", ["S1"], text_version="2024-01")
    fleet.withdraw_consent(CUSTOMER, "C1", ["S1"])
    fleet.grant_consent(CUSTOMER, "C1", ["S1"], text_version="2025-06")
    fleet.close()
    return {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'events.sqlite3'}",
        "VIEWS_SQLITE_PATH": str(tmp_path / "views.sqlite3"),
    }


def audit(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """Run `partnerfleet audit consent ARGS`: exit code, stdout, stderr."""
    result = CliRunner().invoke(app, ["audit", "consent", *args], env=env)
    return result.exit_code, result.stdout, result.stderr


def test_r_con_4_an_auditor_exports_a_devices_history_as_json_lines_in_store_order(
    env: dict[str, str],
) -> None:
    code, out, _ = audit(env, *AS_AUDITOR, "--device", "S1")

    records = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert [r["action"] for r in records] == ["linked", "granted", "withdrawn", "granted"]
    positions = [r["position"] for r in records]
    assert positions == sorted(positions)
    assert set(records[0]) == set(HISTORY_COLUMNS)


def test_r_con_4_the_csv_export_has_a_header_and_one_line_a_record(
    env: dict[str, str],
) -> None:
    code, out, _ = audit(env, *AS_AUDITOR, "--customer", "C1", "--format", "csv")

    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0
    assert out.splitlines()[0] == ",".join(HISTORY_COLUMNS)
    assert [(r["serial"], r["action"]) for r in rows] == [
        ("S1", "linked"),
        ("S2", "linked"),
        ("S1", "granted"),
        ("S1", "withdrawn"),
        ("S1", "granted"),
    ]


def test_r_con_4_an_export_resumed_after_a_position_appends_the_rest_to_the_file(
    env: dict[str, str], tmp_path: Path
) -> None:
    """R-CON-4: a broken download resumes `--after` the last position it holds, appending
    (a CSV file keeps its one header)."""
    whole, part = tmp_path / "whole.csv", tmp_path / "part.csv"
    audit(env, *AS_AUDITOR, "--partner", "LOC-1", "--format", "csv", "--output", str(whole))
    kept = whole.read_text().splitlines()[:3]  # the header and two records, then it broke
    part.write_text("\n".join(kept) + "\n")
    last = list(csv.DictReader(io.StringIO("\n".join(kept))))[-1]["position"]

    code, _, _ = audit(
        env, *AS_AUDITOR, "--partner", "LOC-1", "--format", "csv", "--output", str(part),
        "--after", last,
    )  # fmt: skip

    assert code == 0
    assert len(whole.read_text().splitlines()) == 6
    assert part.read_text() == whole.read_text()


def test_r_con_3_at_with_device_and_partner_answers_whether_consent_was_in_effect(
    env: dict[str, str],
) -> None:
    now = datetime.now(UTC).isoformat()

    code, out, _ = audit(env, *AS_AUDITOR, "--device", "S1", "--partner", "LOC-1", "--at", now)

    [answer] = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert (answer["in_effect"], answer["link_role"]) == (True, "reseller")
    assert answer["deciding_positions"].count(";") == 1  # the grant and the link


def test_r_con_4_at_alone_exports_the_history_as_it_stood_then(env: dict[str, str]) -> None:
    code, everything, _ = audit(env, *AS_AUDITOR, "--device", "S1")
    records = [json.loads(line) for line in everything.splitlines()]
    withdrawn_at = records[2]["at"].replace("Z", "+00:00")

    code, then, _ = audit(env, *AS_AUDITOR, "--device", "S1", "--at", withdrawn_at)

    assert code == 0
    assert [json.loads(line)["action"] for line in then.splitlines()] == [
        "linked",
        "granted",
        "withdrawn",
    ]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([], "say who acts: --as ROLE:SUBJECT or --token TOKEN"),
        (["--as", "auditor:dpo", "--token", "t"], "(one of them, not both)"),
        (["--as", "customer_admin:C1"], "sign in with --token instead"),
        (["--as", "auditor:"], "is not ROLE:SUBJECT"),
        (["--as", "feed:e2open", "--device", "S1"], "The role feed may not read consent history"),
        (["--as", "auditor:dpo"], "name what to audit"),
        (["--as", "auditor:dpo", "--device", "S1", "--at", "yesterday"], "not an ISO 8601"),
        (["--as", "auditor:dpo", "--device", "S1", "--at", "2026-01-01T00:00:00"], "no offset"),
        (["--as", "auditor:dpo", "--device", "S404"], "No device with serial number 'S404'"),
        (["--as", "auditor:dpo", "--device", "S1", "--format", "xml"], "xml"),
        (["--as", "auditor:dpo", "--device", "S1", "--after", "-1"], "greater than or equal to 0"),
        (["--token", "eyJ.x.y", "--device", "S1"], "not signed in: JWT_ISSUER is not set"),
    ],
)
def test_r_con_4_a_bad_argument_is_a_clear_message_and_exit_code_2(
    env: dict[str, str], tmp_path: Path, args: list[str], says: str
) -> None:
    """R-CON-4: a bad argument or a refusal before the first row exits 2, writing nothing."""
    output = tmp_path / "out.jsonl"

    code, out, err = audit(env, *args, "--output", str(output))

    assert code == 2
    assert says in err
    assert not output.exists()
    assert out == ""


def test_r_con_4_an_operator_may_export_too(env: dict[str, str]) -> None:
    code, out, _ = audit(env, "--as", "operator:ops@hp.example", "--device", "S2")

    assert code == 0
    assert [json.loads(line)["action"] for line in out.splitlines()] == ["linked"]


def test_the_audit_verbs_have_help(env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["audit", "consent", "--help"], env=env)

    assert result.exit_code == 0
    assert "--device" in result.stdout
    assert "--as" in result.stdout


def with_token(env: dict[str, str], tmp_path: Path, **claims: Any) -> dict[str, str]:
    """`env` trusting the test key (JWKS_PATH, JWT_ISSUER), with PARTNERFLEET_TOKEN signed by
    it for `claims` (over a valid partner user's)."""
    keys = jwks_file(tmp_path, signing_key())
    token = signed(claims_body(**claims))
    return {**env, "JWKS_PATH": str(keys), "JWT_ISSUER": ISSUER, "PARTNERFLEET_TOKEN": token}


def test_r_con_4_an_auditors_token_is_verified_and_exports_as_its_subject(
    env: dict[str, str], tmp_path: Path
) -> None:
    """R-CON-4, issue 9: `--token` (here from PARTNERFLEET_TOKEN) is verified with the
    configured keys and issuer and made an actor by the access model; it is never echoed."""
    signed_in = with_token(env, tmp_path, sub="dpo@hp.example", role="auditor", tenant=None)

    code, out, err = audit(signed_in, "--device", "S1")

    assert code == 0, err
    assert [json.loads(line)["action"] for line in out.splitlines()] == [
        "linked",
        "granted",
        "withdrawn",
        "granted",
    ]
    assert signed_in["PARTNERFLEET_TOKEN"] not in out + err


@pytest.mark.parametrize(
    ("claims", "says"),
    [
        ({}, "The role partner_admin may not read consent history"),
        ({"sub": "mallory@LOC-1"}, "not signed in: mallory@LOC-1 is not a user registered"),
        ({"iss": "https://other.example"}, "not signed in: The token comes from an issuer"),
        ({"exp": 1}, "not signed in: The token has expired"),
    ],
    ids=["partner admin", "unknown partner user", "other issuer", "expired"],
)
def test_r_con_4_a_token_not_of_an_auditor_is_refused_with_exit_2_and_nothing_written(
    env: dict[str, str], tmp_path: Path, claims: dict[str, Any], says: str
) -> None:
    """R-CON-4: a partner's token (checked against the store) may not read consent history;
    a token the verifier refuses is not signed in. The token never shows."""
    signed_in = with_token(env, tmp_path, **claims)
    output = tmp_path / "out.jsonl"

    code, out, err = audit(signed_in, "--device", "S1", "--output", str(output))

    assert code == 2
    assert says in err
    assert not output.exists()
    assert signed_in["PARTNERFLEET_TOKEN"] not in out + err
