"""Session 19 walkthrough: an operator's misconfiguration stops `partnerfleet` with one clear
line on stderr and exit code 2, never a traceback (README, "Demo data and the command line")."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from infra.cli.app import main

KEY = "k" * 40  # a CPIN_KEY long enough for a PostgreSQL store


def run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], env: dict[str, str]
) -> tuple[int, str]:
    """`partnerfleet projections lag` under `env`: its exit code and its stderr."""
    for name in ("DATABASE_URL", "CREATE_TABLE", "CPIN_KEY", "POSTGRES_HOST", "SQLITE_PATH"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "argv", ["partnerfleet", "projections", "lag"])
    with pytest.raises(SystemExit) as exited:
        main()
    return int(exited.value.code or 0), capsys.readouterr().err


def one_clear_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err, err
    assert "╭" not in err, err
    assert lines[0].startswith("partnerfleet: "), err
    return lines[0]


def test_a_stopped_postgresql_port_is_one_line_naming_the_store(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "postgresql://postgres:s3cret@127.0.0.1:1/test?schema=walk_nowhere"
    code, err = run(monkeypatch, capsys, {"DATABASE_URL": url, "CPIN_KEY": KEY})
    line = one_clear_line(err)
    assert code == 2
    assert "cannot open the postgres store postgresql://postgres@127.0.0.1:1/test" in line
    assert "schema walk_nowhere" in line
    assert "port 1 failed" in line
    assert "s3cret" not in line  # the password is never shown


def test_a_sqlite_store_that_cannot_be_opened_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, err = run(monkeypatch, capsys, {"DATABASE_URL": f"sqlite:///{tmp_path}"})
    line = one_clear_line(err)
    assert code == 2
    assert f"cannot open the sqlite store {tmp_path}: unable to open database file" in line


def test_a_sqlite_store_under_a_file_is_one_line_naming_the_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "afile").write_text("")
    url = f"sqlite:///{tmp_path}/afile/store.sqlite3"
    code, err = run(monkeypatch, capsys, {"DATABASE_URL": url})
    assert code == 2
    assert str(tmp_path / "afile") in one_clear_line(err)


@pytest.mark.parametrize("value", ["maybe", "", "nein"])
def test_create_table_that_is_not_yes_or_no_is_named_with_what_it_may_be(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    code, err = run(monkeypatch, capsys, {"CREATE_TABLE": value})
    line = one_clear_line(err)
    assert code == 2
    assert f"CREATE_TABLE={value!r} is neither yes nor no" in line
    assert "Value error" not in line
    assert "create_table" not in line


def test_a_bad_setting_is_named_as_the_environment_spells_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run(monkeypatch, capsys, {"AGGREGATE_CACHE_SIZE": "-1"})
    assert code == 2
    assert one_clear_line(err).startswith("partnerfleet: bad configuration: AGGREGATE_CACHE_SIZE:")


def test_a_token_without_keys_to_check_it_says_how_the_cli_checks_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The README's `audit consent` with PARTNERFLEET_TOKEN but no JWKS_URL/JWT_ISSUER said
    only "or run `serve --demo`", which a CLI verb cannot do."""
    for name in ("JWKS_URL", "JWKS_PATH", "JWT_ISSUER", "PARTNERFLEET_TOKEN", "CREATE_TABLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'events.sqlite3'}")
    monkeypatch.setenv("PARTNERFLEET_TOKEN", "not-a-token")
    monkeypatch.setattr(sys, "argv", ["partnerfleet", "audit", "consent", "--device", "X1"])
    with pytest.raises(SystemExit) as exited:
        main()
    line = one_clear_line(capsys.readouterr().err)
    assert exited.value.code == 2
    assert line.startswith("partnerfleet: not signed in: JWT_ISSUER is not set")
    assert "JWKS_URL=http://HOST:PORT/.well-known/jwks.json JWT_ISSUER=partnerfleet-local" in line
    assert "not-a-token" not in line


def test_demo_prints_every_principal_whole_at_80_columns(tmp_path: Path) -> None:
    """`partnerfleet demo` on an 80-column terminal cut "user-5cg00001@acme.example" to
    "user-5cg00001@acme.examp…": a principal that cannot be copied to sign in."""
    from typer.testing import CliRunner

    from infra.cli.app import cli

    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'events.sqlite3'}", "COLUMNS": "80"}
    done = CliRunner().invoke(cli, ["demo", "--customers", "2"], env=env)
    assert done.exit_code == 0, done.output
    assert "user-5cg00001@acme.example " in done.output
    assert "DEMO-CUSTOMER-GLOBEX " in done.output
    assert "…" not in done.output
    assert max(len(line) for line in done.output.splitlines()) <= 80


def test_config_names_the_views_file_of_sqlite_and_whether_tables_are_made(
    tmp_path: Path,
) -> None:
    """`partnerfleet config` said `schema=public` for SQLite (no schemas there) and nothing of
    CREATE_TABLE, the setting an operator with a read/write role checks first."""
    from typer.testing import CliRunner

    from infra.cli.app import cli

    store = tmp_path / "events.sqlite3"
    env = {"DATABASE_URL": f"sqlite:///{store}", "CREATE_TABLE": "no"}
    done = CliRunner().invoke(cli, ["config"], env=env)
    assert done.exit_code == 0, done.output
    assert f"storage: sqlite {store} views={tmp_path / 'events-views.sqlite3'}" in done.output
    assert "schema=public" not in done.output
    assert "create tables at start: no" in done.output


def test_the_verb_list_flows_each_summary_as_one_paragraph() -> None:
    """`partnerfleet --help` kept the docstrings' line breaks: "print what the store" on one
    line and "holds and the demo principals" alone on the next, at 80 columns."""
    from typer.testing import CliRunner

    from infra.cli.app import cli

    done = CliRunner().invoke(cli, ["--help"], env={"COLUMNS": "80"})
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    assert any("print what the store holds" in line for line in lines), done.output
    assert any("intake, as the Kafka feed does" in line for line in lines), done.output
