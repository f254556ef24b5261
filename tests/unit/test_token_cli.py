"""`partnerfleet token issue` and `serve`'s refusal to start without trusted keys (issue 9)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from infra.bootstrap import build_verifier
from infra.cli.app import cli
from infra.demo import DEMO_PRINCIPALS
from infra.settings import DEMO_SIGNING_KEY_PATH, Settings
from infra.tokens import load_signing_key
from tests.auth_keys import private_pem

AUTH_VARIABLES = ("JWKS_PATH", "JWKS_URL", "JWT_ISSUER", "JWT_AUDIENCE", "JWT_SIGNING_KEY_PATH")


@pytest.fixture(autouse=True)
def in_a_fresh_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test in its own working folder (var/ and the demo key land there), without
    storage or authentication variables from the machine."""
    monkeypatch.chdir(tmp_path)
    for name in (*AUTH_VARIABLES, "DATABASE_URL", "POSTGRES_HOST", "POSTGRES_DBNAME"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def run(*args: str, **env: str) -> Result:
    """`partnerfleet ARGS` in-process."""
    return CliRunner().invoke(cli, list(args), env=env or None)


def test_token_issue_prints_a_token_serve_demo_accepts() -> None:
    """Signed with the demo key under var/ (made once); `serve --demo` trusts that key."""
    done = run(
        "token",
        "issue",
        "--role",
        "end_user",
        "--subject",
        "u@c.example",
        "--tenant",
        "C1",
        "--pcs",
        "PC1",
        "--pcs",
        "PC2",
        "--ttl",
        "120",
    )

    assert done.exit_code == 0, done.output
    claims = build_verifier(Settings(), demo=True).claims(done.stdout.strip())
    assert (claims.subject, claims.role, claims.tenant, claims.pcs) == (
        "u@c.example",
        "end_user",
        "C1",
        ("PC1", "PC2"),
    )
    assert DEMO_SIGNING_KEY_PATH.exists()


def test_token_issue_demo_prints_one_verified_token_per_demo_principal() -> None:
    """--demo: role, subject, tenant and token on a line for each of DEMO_PRINCIPALS."""
    done = run("token", "issue", "--demo")

    assert done.exit_code == 0, done.output
    lines = [line.split("\t") for line in done.stdout.splitlines()]
    verifier = build_verifier(Settings(), demo=True)
    assert [verifier.claims(token) for *_, token in lines] == DEMO_PRINCIPALS
    assert [(role, subject, tenant) for role, subject, tenant, _ in lines] == [
        (c.role, c.subject, c.tenant) for c in DEMO_PRINCIPALS
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "king", "--subject", "x"], "--role must be one of"),
        (["--role", "policy", "--subject", "x"], "--role must be one of"),
        (["--subject", "x"], "--role must be one of"),
        (["--role", "operator"], "--subject is required"),
        (["--role", "partner_user", "--subject", "x"], "--tenant is required for partner_user"),
        (["--role", "operator", "--subject", "x", "--tenant", "T"], "--tenant is not for"),
        (["--role", "auditor", "--subject", "x", "--pcs", "P"], "--pcs is only for end_user"),
        (["--role", "operator", "--subject", "x", "--ttl", "0"], "--ttl"),
        (["--demo", "--role", "operator"], "leave out --role"),
    ],
    ids=[
        "unknown-role",
        "policy",
        "no-role",
        "no-subject",
        "no-tenant",
        "tenant-for-operator",
        "pcs",
        "ttl-0",
        "demo-and-role",
    ],
)
def test_token_issue_refuses_bad_arguments_with_exit_2(args: list[str], message: str) -> None:
    """A clear message and exit code 2; no token printed."""
    done = run("token", "issue", *args)

    assert done.exit_code == 2
    assert message in done.output
    assert "eyJ" not in done.stdout


def test_token_issue_with_a_bad_key_file_exits_2_without_showing_it(tmp_path: Path) -> None:
    """JWT_SIGNING_KEY_PATH that holds no private key: exit 2, the content not shown."""
    (tmp_path / "key.pem").write_text("s3cr3t-not-a-key", encoding="utf-8")

    done = run(
        "token",
        "issue",
        "--role",
        "operator",
        "--subject",
        "ops",
        JWT_SIGNING_KEY_PATH=str(tmp_path / "key.pem"),
    )

    assert done.exit_code == 2
    assert "not an unencrypted private key" in done.output
    assert "s3cr3t" not in done.output


def test_token_issue_logs_neither_the_token_nor_the_key() -> None:
    """With debug JSON logs: one `token_issued` line per token, without token or key."""
    done = run("token", "issue", "--demo", LOG_LEVEL="debug", LOG_FORMAT="json")

    logged = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    tokens = [line.split("\t")[3] for line in done.stdout.splitlines()]
    assert [entry["event"] for entry in logged] == ["token_issued"] * len(DEMO_PRINCIPALS)
    shown = json.dumps(logged)
    assert len(tokens) == len(DEMO_PRINCIPALS)
    assert not any(token in shown or token.split(".")[2] in shown for token in tokens)
    pem_lines = private_pem(load_signing_key(DEMO_SIGNING_KEY_PATH)).splitlines()[1:-1]
    assert not any(line in shown for line in pem_lines)


def test_serve_refuses_to_start_without_trusted_keys(tmp_path: Path) -> None:
    """Outside demo mode, no JWKS: exit 2 naming JWKS_URL/JWKS_PATH, nothing created."""
    done = run("serve", JWT_ISSUER="https://idp.example")

    assert done.exit_code == 2
    assert "No trusted keys: set JWKS_URL" in done.output
    assert not (tmp_path / "var").exists()


def test_serve_refuses_an_untrusted_jwks_file(tmp_path: Path) -> None:
    """A JWKS file with an HMAC key: exit 2 saying which key and why."""
    hmac_key = {"kty": "oct", "k": "c2VjcmV0", "kid": "shared", "alg": "HS256"}
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [hmac_key]}), encoding="utf-8")

    done = run("serve", JWKS_PATH=str(tmp_path / "jwks.json"), JWT_ISSUER="https://idp.example")

    assert done.exit_code == 2
    assert "(kid 'shared') is an HMAC key" in done.output
