"""Settings: SQLite by default, PostgreSQL by URL or POSTGRES_*, bad values refused at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import structlog
from pydantic import ValidationError
from typer.testing import CliRunner

from domain.cpin import DEMO_KEY
from infra.cli.app import cli
from infra.logging import configure_logging
from infra.settings import Settings
from infra.storage.read_versions import SQLITE_TOPIC


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No storage variables leak in from the machine running the tests."""
    for name in (
        "DATABASE_URL",
        "POSTGRES_HOST",
        "POSTGRES_DBNAME",
        "POSTGRES_SCHEMA",
        "POSTGRES_PORT",
        "POSTGRES_USER",
        "POSTGRES_PASSWORD",
        "SQLITE_PATH",
        "VIEWS_SQLITE_PATH",
        "PORT",
        "CREATE_TABLE",
    ):
        monkeypatch.delenv(name, raising=False)


def test_no_configuration_means_sqlite_under_var() -> None:
    """The embedded default: SQLite at var/partnerfleet.sqlite3."""
    storage = Settings().storage
    assert storage.kind == "sqlite"
    assert storage.env == {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "PROCESS_RECORDER_TOPIC": SQLITE_TOPIC,
        "SQLITE_DBNAME": str(Path("var/partnerfleet.sqlite3")),
        "CREATE_TABLE": "yes",
    }


def test_database_url_selects_postgresql_with_schema_and_hides_the_password() -> None:
    """DATABASE_URL=postgresql://… fills the event store's POSTGRES_* settings."""
    storage = Settings(database_url="postgresql://app:s%40cret@db:5433/fleet?schema=pf").storage
    assert storage.kind == "postgres"
    assert storage.env["POSTGRES_PASSWORD"] == "s@cret"
    assert storage.env["POSTGRES_PORT"] == "5433"
    assert storage.env["POSTGRES_SCHEMA"] == "pf"
    assert "s@cret" not in storage.location


def test_postgres_variables_select_postgresql(monkeypatch: pytest.MonkeyPatch) -> None:
    """POSTGRES_HOST / POSTGRES_DBNAME in the environment select PostgreSQL."""
    monkeypatch.setenv("POSTGRES_HOST", "127.0.0.1")
    monkeypatch.setenv("POSTGRES_DBNAME", "test")
    storage = Settings().storage
    assert storage.kind == "postgres"
    assert storage.env["POSTGRES_DBNAME"] == "test"


def test_port_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """PORT overrides the default 8000."""
    monkeypatch.setenv("PORT", "9123")
    assert Settings().port == 9123


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://db/x", "scheme 'mysql' is not supported"),
        ("sqlite://", "needs a file path"),
        ("postgresql://db/x?schema=Bad-Name", "must match"),
        # A trailing newline (percent-encoded): re.match's "$" matched before it (s18 attack).
        ("postgresql://db/x?schema=pf%0A", "must match"),
        ("postgresql://db/x?schema=pf%0D%0A", "must match"),
    ],
)
def test_bad_storage_configuration_is_refused_with_a_specific_message(
    url: str, message: str
) -> None:
    """A DATABASE_URL the service cannot use fails when settings are read, saying why."""
    with pytest.raises(ValidationError, match=message):
        Settings(database_url=url)


def test_a_port_out_of_range_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """PORT must be 1…65535."""
    monkeypatch.setenv("PORT", "70000")
    with pytest.raises(ValidationError, match="port"):
        Settings()


def test_r_hld_3_postgresql_without_a_cpin_key_is_refused_at_start_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Kind 9: the demo key is in the source code; only the SQLite demo store may use it."""
    monkeypatch.delenv("CPIN_KEY", raising=False)

    with pytest.raises(ValidationError, match="CPIN_KEY is not set"):
        Settings(database_url="postgresql://app@db/fleet")
    with pytest.raises(ValidationError, match="at least 32"):
        Settings(database_url="postgresql://app@db/fleet", cpin_key="too-short")
    assert Settings().cpin_secret() == DEMO_KEY
    key = "k" * 40
    assert Settings(database_url="postgresql://app@db/fleet", cpin_key=key).cpin_secret() == (
        key.encode()
    )


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (" " * 40, "CPIN_KEY has 0 characters"),
        ("\t" * 10 + "x" * 30, "CPIN_KEY has 30 characters"),
        ("k" * 40 + "\n", "begins or ends with a blank"),
        ("  " + "k" * 40, "begins or ends with a blank"),
        ("too-short", "CPIN_KEY has 9 characters"),
    ],
)
def test_r_hld_3_a_blank_or_padded_cpin_key_is_refused_at_start_up(key: str, message: str) -> None:
    """Kind 9: blanks are no key material, and a newline kept from a key file in one process
    but not another makes two keys: refused, naming the variable and the rule."""
    with pytest.raises(ValidationError, match=message) as refused:
        Settings(database_url="postgresql://app@db/fleet", cpin_key=key)
    assert key.strip() not in str(refused.value) or not key.strip()


@pytest.mark.parametrize(
    "given",
    [
        {"database_url": "mysql://app:pg-pass-123@db/fleet"},
        {"database_url": "postgresql://app:pg-pass-123@db:99999/fleet"},
        {"database_url": "postgresql://app:pg-pass-123@db/fleet?schema=Bad-"},
        {"database_url": "postgresql://app:pg-pass-123@db/fleet", "cpin_key": "short-key-789"},
    ],
)
def test_a_configuration_error_never_shows_the_password_or_the_key(given: dict[str, str]) -> None:
    """Kind 9: a ValidationError prints its input wherever it is shown (a traceback, a log)."""
    with pytest.raises(ValidationError) as refused:
        Settings(**given)  # type: ignore[arg-type]
    shown = f"{refused.value}{refused.value!r}"  # what a traceback or a log line prints
    assert "pg-pass-123" not in shown
    assert "short-key-789" not in shown


def test_secrets_never_show_in_the_settings_or_storage_representation() -> None:
    """Kind 9: a logged or printed Settings or Storage holds no password and no cPIN key."""
    settings = Settings(
        database_url="postgresql://app:pg-pass-123@db/fleet",
        postgres_password="other-pass-456",
        cpin_key="cpin-key-" + "x" * 40,
    )

    shown = f"{settings!r} {settings} {settings.storage!r} {settings.model_dump()}"

    for secret in ("pg-pass-123", "other-pass-456", "cpin-key-"):
        assert secret not in shown
    assert settings.storage.env["POSTGRES_PASSWORD"] == "pg-pass-123"


def test_a_logged_exception_shows_no_local_variables(capsys: pytest.CaptureFixture[str]) -> None:
    """Kind 9: a traceback in the logs never prints a frame's locals (a DSN, a cPIN)."""
    configure_logging(Settings())
    log = structlog.get_logger("test")

    def connect(password: str) -> None:
        conninfo = f"host=db password={password}"  # only in a local variable at runtime
        raise RuntimeError(f"cannot connect to {conninfo.split(maxsplit=1)[0]}")

    try:
        connect("-".join(["pg", "pass", "123"]))
    except RuntimeError:
        log.exception("connect_failed")

    shown = capsys.readouterr().err
    assert "connect_failed" in shown
    assert "RuntimeError: cannot connect to host=db" in shown
    assert "pg-pass-123" not in shown


def test_log_lines_go_to_standard_error_never_to_a_verbs_output(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`audit consent > file` and `token issue | awk` read standard output: a log line there
    would corrupt the export or the token list."""
    configure_logging(Settings())
    structlog.get_logger("test").info("export_started", rows=3)

    captured = capsys.readouterr()
    assert "export_started" in captured.err
    assert captured.out == ""


def test_a_crashing_command_shows_no_local_variables() -> None:
    """Kind 9: typer prints a crash's locals by default (a Settings, a DSN): not ours."""
    assert cli.pretty_exceptions_show_locals is False


# --- eventsourcing's own variables (session 18) ----------------------------------------------
# eventsourcing reads its settings from the process environment too, a variable prefixed
# with the application's name first (PARTNERFLEET_X before X): those the service cannot
# honour are refused when settings are read, naming the variable, its value and what works.

PG_URL = "postgresql://app@db:5432/fleet"


def refusal(monkeypatch: pytest.MonkeyPatch, environment: dict[str, str]) -> Any:
    """The one error of reading settings in `environment` (added to the process's)."""
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as refused:
        Settings()
    [error] = refused.value.errors()
    return error


REFUSED_ENVIRONMENT = {
    "ids as text": ({"ORIGINATOR_ID_TYPE": "text"}, "ORIGINATOR_ID_TYPE='text'", "'uuid'"),
    "ids as TEXT": (
        {"ORIGINATOR_ID_TYPE": "TEXT"},
        "ORIGINATOR_ID_TYPE='TEXT'",
        "'uuid'",
    ),
    "ids as text, the application's own": (
        {"PARTNERFLEET_ORIGINATOR_ID_TYPE": "text"},
        "PARTNERFLEET_ORIGINATOR_ID_TYPE='text'",
        "'uuid'",
    ),
    "an unknown id type": ({"ORIGINATOR_ID_TYPE": "int"}, "ORIGINATOR_ID_TYPE='int'", "'uuid'"),
    "tracking in many rows": ({"SINGLE_ROW_TRACKING": "no"}, "SINGLE_ROW_TRACKING='no'", "true"),
    "another persistence module": (
        {"PERSISTENCE_MODULE": "eventsourcing.popo"},
        "PERSISTENCE_MODULE='eventsourcing.popo'",
        "DATABASE_URL",
    ),
    "PostgreSQL named by module alone": (
        {"PERSISTENCE_MODULE": "eventsourcing.postgres"},
        "PERSISTENCE_MODULE='eventsourcing.postgres'",
        "'eventsourcing.sqlite'",
    ),
    "the application's own module": (
        {"PARTNERFLEET_PERSISTENCE_MODULE": "eventsourcing.popo"},
        "PARTNERFLEET_PERSISTENCE_MODULE='eventsourcing.popo'",
        "one store for all",
    ),
    "a policy's own store": (
        {"PARTNERFLEET.POLICY.ALERTS_POSTGRES_HOST": "elsewhere"},
        "PARTNERFLEET.POLICY.ALERTS_POSTGRES_HOST='elsewhere'",
        "one store for all",
    ),
    "another process recorder": (
        {"PROCESS_RECORDER_TOPIC": "eventsourcing.sqlite:SQLiteProcessRecorder"},
        "PROCESS_RECORDER_TOPIC='eventsourcing.sqlite:SQLiteProcessRecorder'",
        "unset",
    ),
    "an application recorder": (
        {"APPLICATION_RECORDER_TOPIC": "x:Y"},
        "APPLICATION_RECORDER_TOPIC='x:Y'",
        "unset",
    ),
    "a tracking recorder": ({"TRACKING_RECORDER_TOPIC": "x:Y"}, "TRACKING_RECORDER_TOPIC", "unset"),
    "a transcoder": ({"TRANSCODER_TOPIC": "x:Y"}, "TRANSCODER_TOPIC='x:Y'", "unset"),
    "a mapper": ({"MAPPER_TOPIC": "x:Y"}, "MAPPER_TOPIC='x:Y'", "unset"),
    "a password function": (
        {"POSTGRES_GET_PASSWORD_TOPIC": "x:y", "DATABASE_URL": PG_URL},
        "POSTGRES_GET_PASSWORD_TOPIC='x:y'",
        "unset",
    ),
    "a SQLite file by eventsourcing's name": (
        {"SQLITE_DBNAME": "/tmp/other.sqlite3"},
        "SQLITE_DBNAME='/tmp/other.sqlite3'",
        "SQLITE_PATH",
    ),
    "another host than the URL's": (
        {"POSTGRES_HOST": "elsewhere", "DATABASE_URL": PG_URL},
        "POSTGRES_HOST='elsewhere'",
        "'db'",
    ),
    "another database than the URL's": (
        {"POSTGRES_DBNAME": "other", "DATABASE_URL": PG_URL},
        "POSTGRES_DBNAME='other'",
        "'fleet'",
    ),
}


@pytest.mark.parametrize(
    ("environment", "named", "supported"),
    REFUSED_ENVIRONMENT.values(),
    ids=REFUSED_ENVIRONMENT.keys(),
)
def test_an_eventsourcing_variable_the_service_cannot_honour_is_refused_at_start_up(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], named: str, supported: str
) -> None:
    """The setting, its value and what is supported, when settings are read."""
    error = refusal(monkeypatch, environment)

    assert named in error["msg"]
    assert supported in error["msg"]


def test_a_password_that_is_not_the_urls_is_refused_without_showing_either(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """POSTGRES_PASSWORD beside DATABASE_URL: refused, and neither password is shown."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:url-secret@db/fleet")
    monkeypatch.setenv("POSTGRES_PASSWORD", "env-secret")

    with pytest.raises(ValidationError) as refused:
        Settings()

    [error] = refused.value.errors()
    assert "POSTGRES_PASSWORD=(hidden)" in error["msg"]
    assert "secret" not in str(refused.value)
    assert "secret" not in error["msg"]


ACCEPTED_ENVIRONMENT = {
    "uuid ids": {"ORIGINATOR_ID_TYPE": "uuid"},
    "UUID ids": {"PARTNERFLEET_ORIGINATOR_ID_TYPE": "UUID"},
    "single-row tracking": {"SINGLE_ROW_TRACKING": "yes"},
    "the module chosen": {"PERSISTENCE_MODULE": "eventsourcing.sqlite"},
    "the URL's host again": {"DATABASE_URL": PG_URL, "POSTGRES_HOST": "db"},
    "the URL's password again": {
        "DATABASE_URL": "postgresql://app:pw@db/fleet",
        "POSTGRES_PASSWORD": "pw",
    },
    "eventsourcing's honoured pool": {"DATABASE_URL": PG_URL, "POSTGRES_POOL_SIZE": "10"},
    "an unrelated variable": {"PARTNERFLEET_TOKEN": "x"},
}


@pytest.mark.parametrize("environment", ACCEPTED_ENVIRONMENT.values(), ids=ACCEPTED_ENVIRONMENT)
def test_eventsourcing_variables_the_service_honours_pass(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str]
) -> None:
    """What agrees with the configured store, or the store honours, starts."""
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    assert Settings().storage.kind in ("sqlite", "postgres")


def test_the_cli_refuses_an_unhonoured_variable_with_exit_code_2() -> None:
    """`partnerfleet config` (any command that reads settings) exits 2 saying why."""
    result = CliRunner().invoke(cli, ["config"], env={"ORIGINATOR_ID_TYPE": "text"})

    assert result.exit_code == 2
    assert "ORIGINATOR_ID_TYPE='text'" in result.stderr
    assert "'uuid'" in result.stderr


IGNORED_SETTINGS = {
    "a PostgreSQL user without a PostgreSQL store": (
        {"POSTGRES_USER": "app"},
        "POSTGRES_USER is set but the store is SQLite",
    ),
    "a PostgreSQL password without a PostgreSQL store": (
        {"POSTGRES_PASSWORD": "pw"},
        "POSTGRES_PASSWORD is set but the store is SQLite",
    ),
    "a SQLite file beside a PostgreSQL store": (
        {"SQLITE_PATH": "var/other.sqlite3", "DATABASE_URL": PG_URL},
        "SQLITE_PATH is set but the store is PostgreSQL",
    ),
    "views in SQLite beside a PostgreSQL store": (
        {"VIEWS_SQLITE_PATH": "var/views.sqlite3", "POSTGRES_HOST": "db"},
        "VIEWS_SQLITE_PATH is set but the store is PostgreSQL",
    ),
    "another SQLite file than the URL's": (
        {"SQLITE_PATH": "var/other.sqlite3", "DATABASE_URL": "sqlite:///var/x.sqlite3"},
        "SQLITE_PATH='var/other.sqlite3' differs from DATABASE_URL's 'var/x.sqlite3'",
    ),
}


@pytest.mark.parametrize(
    ("environment", "says"), IGNORED_SETTINGS.values(), ids=IGNORED_SETTINGS.keys()
)
def test_a_setting_the_chosen_store_would_ignore_is_refused_at_start_up(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], says: str
) -> None:
    """A setting of the other kind of store, or a second name of the store, is not silently
    dropped: a forgotten POSTGRES_HOST would otherwise run the service on SQLite."""
    error = refusal(monkeypatch, environment)

    assert says in error["msg"]
    assert "pw" not in error["msg"]


def test_postgres_variables_beside_a_sqlite_url_leave_the_named_store_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DATABASE_URL=sqlite:///PATH names the store outright: a shell's POSTGRES_USER and
    POSTGRES_PASSWORD (kept for other tools) neither refuse the start nor reach it, and the
    refusal without such a URL says how to keep SQLite."""
    for name, value in {"POSTGRES_USER": "app", "POSTGRES_PASSWORD": "pw"}.items():
        monkeypatch.setenv(name, value)
    said = refusal(monkeypatch, {})["msg"]
    assert "name the SQLite store in DATABASE_URL to keep it" in said
    assert "pw" not in said

    monkeypatch.setenv("DATABASE_URL", "sqlite:///var/x.sqlite3")
    storage = Settings().storage
    assert (storage.kind, storage.location) == ("sqlite", "var/x.sqlite3")
    assert not {key for key in storage.env if key.startswith("POSTGRES")}


def test_settings_of_the_chosen_store_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same SQLite file twice, or PostgreSQL with all of its settings, start."""
    monkeypatch.setenv("SQLITE_PATH", "var/x.sqlite3")
    monkeypatch.setenv("DATABASE_URL", "sqlite:///var/x.sqlite3")
    assert Settings().storage.kind == "sqlite"
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.delenv("SQLITE_PATH")
    for name, value in {
        "POSTGRES_HOST": "db",
        "POSTGRES_USER": "app",
        "POSTGRES_PORT": "5433",
    }.items():
        monkeypatch.setenv(name, value)
    assert Settings().storage.location == "postgresql://app@db:5433/postgres"


# Session 18 attack: Settings read their variables in any case (pydantic-settings), so
# postgres_user=other beside DATABASE_URL was silently dropped where POSTGRES_USER=other
# was refused.
OTHER_CASE = {
    "a user in lower case": ({"postgres_user": "other"}, "postgres_user='other'", "'app'"),
    "a port in mixed case": ({"Postgres_Port": "5433"}, "Postgres_Port='5433'", "'5432'"),
    "a host in lower case": ({"postgres_host": "elsewhere"}, "postgres_host='elsewhere'", "'db'"),
    "a database in lower case": ({"postgres_dbname": "prod"}, "postgres_dbname='prod'", "'fleet'"),
    "a schema in lower case": (
        {"postgres_schema": "other", "DATABASE_URL": PG_URL + "?schema=pf"},
        "postgres_schema='other'",
        "'pf'",
    ),
    "a password in lower case": (
        {"postgres_password": "env-secret", "DATABASE_URL": "postgresql://app:url-secret@db/fleet"},
        "postgres_password=(hidden)",
        "password",
    ),
}


@pytest.mark.parametrize(
    ("environment", "named", "supported"), OTHER_CASE.values(), ids=OTHER_CASE.keys()
)
def test_a_storage_setting_in_another_case_that_differs_from_the_url_is_refused(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], named: str, supported: str
) -> None:
    """As its upper-case name would be, named as it was given; secrets hidden."""
    error = refusal(monkeypatch, {"DATABASE_URL": PG_URL, **environment})

    assert named in error["msg"]
    assert supported in error["msg"]
    assert "secret" not in error["msg"]


def test_a_storage_setting_in_another_case_equal_to_the_urls_passes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {
        "DATABASE_URL": PG_URL,
        "postgres_user": "app",
        "Postgres_Port": "5432",
    }.items():
        monkeypatch.setenv(name, value)

    assert Settings().storage.location == "postgresql://app@db:5432/fleet"
