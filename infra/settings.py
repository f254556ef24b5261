"""One Settings object: storage, HTTP and logging, read from the environment; fails fast."""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.cpin import DEMO_KEY, MIN_KEY_BYTES
from infra.storage.es_environment import FALSE, TRUE, refusals
from infra.storage.pg_recorder import TOPIC as FLEET_RECORDER_TOPIC
from infra.storage.read_versions import SQLITE_TOPIC

DEFAULT_SQLITE_PATH = Path("var/partnerfleet.sqlite3")
DEFAULT_VIEWS_PATH = Path("var/partnerfleet-views.sqlite3")
DEMO_SIGNING_KEY_PATH = Path("var/partnerfleet-demo-signing-key.pem")  # made once, for the demo
SCHEMA_NAME = r"^[a-z_][a-z0-9_]{0,62}$"
CREATE_TABLE_WORDS = TRUE | FALSE
_PROCESS_CURSOR_KEY = secrets.token_bytes(32)
# Settings only one kind of store reads (a PostgreSQL one is named by DATABASE_URL,
# POSTGRES_HOST or POSTGRES_DBNAME, so those two are never ignored).
_POSTGRES_ONLY = frozenset(
    {"postgres_port", "postgres_user", "postgres_password", "postgres_schema"}
)
_SQLITE_ONLY = frozenset({"sqlite_path", "views_sqlite_path"})
_POSTGRES_SETTINGS = _POSTGRES_ONLY | {"postgres_host", "postgres_dbname"}
_KINDS = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
_OTHER = {"sqlite": "postgres", "postgres": "sqlite"}


@dataclass(frozen=True)
class Storage:
    """Where events are stored: the eventsourcing environment and a password-free description."""

    kind: Literal["sqlite", "postgres"]
    env: dict[str, str] = field(repr=False)  # holds the password
    location: str
    schema: str = "public"
    # CREATE_TABLE (eventsourcing's name): whether a start makes the tables it needs. Off,
    # a start only checks they are there (infra/storage/viewdb.py, `start_ddl`).
    create_tables: bool = True


class Settings(BaseSettings):
    """Configuration. No storage variables set means SQLite under var/."""

    # hide_input_in_errors: a ValidationError shows what it was given, here DATABASE_URL with
    # its password and CPIN_KEY, wherever it is printed or logged.
    model_config = SettingsConfigDict(extra="ignore", frozen=True, hide_input_in_errors=True)

    database_url: SecretStr | None = None  # may hold a password: never shown or logged
    postgres_host: str | None = None
    postgres_port: int = Field(default=5432, ge=1, le=65535)
    postgres_user: str = "postgres"
    postgres_password: SecretStr = SecretStr("")
    postgres_dbname: str | None = None
    postgres_schema: str = Field(default="public", pattern=SCHEMA_NAME)
    # Seconds a PostgreSQL pool (the store's and the views') waits for a connection before
    # the request fails (HTTP 503). eventsourcing's default is 30 s, which kept a page
    # waiting half a minute for its 503 while PostgreSQL was down (session 19).
    postgres_connect_timeout: int = Field(default=5, ge=1, le=3600)
    sqlite_path: Path = DEFAULT_SQLITE_PATH
    # Read models of a SQLite event store; by default beside it (`views_location`).
    views_sqlite_path: Path | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    kafka_bootstrap_servers: str | None = None  # no broker: no relay, no feeds
    kafka_topic_prefix: str = Field(default="partnerfleet", pattern=r"^[A-Za-z0-9._-]{1,100}$")
    kafka_max_message_bytes: int = Field(default=1_000_000, ge=10_000, le=100 * 1024 * 1024)
    # Keys the customers' cPIN verifiers (domain/cpin.py); required unless the store is the
    # SQLite demo store. Changing it makes every dashboard's cPIN unusable.
    cpin_key: SecretStr | None = None
    # Bearer tokens (issue 9, infra/http/auth.py). Outside `serve --demo` one of JWKS_PATH or
    # JWKS_URL and JWT_ISSUER are required: there is no default key.
    jwks_path: Path | None = None  # a JWK Set file of the trusted public keys
    jwks_url: str | None = Field(default=None, pattern=r"^https?://\S+$", max_length=2000)
    jwt_audience: str = Field(default="partnerfleet", min_length=1, max_length=200)
    jwt_issuer: str | None = Field(default=None, min_length=1, max_length=2000)
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=300)  # clock skew on exp/iat/nbf
    # The local private key (PEM or JWK) that `token issue` signs with; unset: the demo key
    # under var/ (DEMO_SIGNING_KEY_PATH), which only `serve --demo` trusts by itself.
    jwt_signing_key_path: Path | None = None

    # Signs the HTTP API's page cursors (infra/http/paging.py). Unset: a random key per
    # process, so cursors do not survive a restart or pass between processes; set it (the
    # same for every process) when several serve one API.
    cursor_key: SecretStr | None = None
    # Aggregates each process keeps in memory for commands (handlers/aggregate_cache.py,
    # issue 11); 0 turns the cache off. A cached device or group is 0.5-2 KB.
    aggregate_cache_size: int = Field(default=10_000, ge=0, le=10_000_000)
    # List page bodies each process keeps while the read models stand still
    # (infra/http/page_cache.py, issue 11); 0 turns it off. A 50-tile page is about 15 KB.
    page_cache_size: int = Field(default=1_024, ge=0, le=1_000_000)
    # The CPU a serving process keeps its threads on (infra/cli/processes.py `one_cpu`):
    # `auto` (one of those it may use, a part of `--workers N` its own), `off` (wherever
    # the kernel puts them), or a CPU's number. Python threads share one interpreter lock;
    # on one CPU they hand it over without waking another CPU (issue 11, session 24).
    process_cpu: str = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["console", "json"] = "console"
    # CREATE_TABLE, as eventsourcing names it (yes/no, true/false, on/off, 1/0): off, no
    # process start creates a schema, table or index, for a role without those rights; the
    # start checks that each table is there and names what is missing (session 19).
    create_table: bool = True

    @field_validator("create_table", mode="before")
    @classmethod
    def _create_table_is_yes_or_no(cls, value: object) -> object:
        """CREATE_TABLE as eventsourcing reads it; anything else is named, with what it may be."""
        if isinstance(value, str) and value.strip().lower() not in CREATE_TABLE_WORDS:
            raise ValueError(
                f"CREATE_TABLE={value!r} is neither yes nor no (true/false, on/off, 1/0 "
                "also do); unset, it is yes."
            )
        return value

    @field_validator("process_cpu", mode="before")
    @classmethod
    def _process_cpu_is_auto_off_or_a_cpu(cls, value: object) -> object:
        """PROCESS_CPU: `auto`, `off` or a CPU's number (0-4095), any case, blanks around
        it ignored; anything else is named, with what it may be. Whether the process may
        use that CPU is known where it is applied (`one_cpu`)."""
        text = str(value).strip().lower()
        # (at most 4 digits after the zeros: int() refuses a string of more than 4,300)
        digits = (text.lstrip("0") or "0") if text.isascii() and text.isdigit() else ""
        if text in ("auto", "off") or (0 < len(digits) <= 4 and int(digits) < 4096):
            return digits or text
        raise ValueError(
            f"PROCESS_CPU={str(value)[:40]!r} is neither auto, off nor a CPU's number "
            "(0, 1, ...); unset, it is auto."
        )

    @field_validator("cpin_key")
    @classmethod
    def _cpin_key_is_key_material(cls, key: SecretStr | None) -> SecretStr | None:
        """At least 32 characters besides blanks, none around them: a newline kept from a key
        file by one process and not another would make two keys (never shows the key)."""
        if key is None:
            return None
        text = key.get_secret_value()
        if len(text.strip()) < MIN_KEY_BYTES:
            raise ValueError(
                f"CPIN_KEY has {len(text.strip())} characters besides blanks; it needs at "
                f"least {MIN_KEY_BYTES} (e.g. `python -c 'import secrets; "
                "print(secrets.token_urlsafe(48))'`)."
            )
        if text != text.strip():
            raise ValueError(
                "CPIN_KEY begins or ends with a blank (a newline from a key file?): remove "
                "it, so that every process has the same key."
            )
        return key

    @model_validator(mode="after")
    def _storage_is_understood(self) -> Settings:
        # Parse now, so bad configuration fails at start-up; eventsourcing reads the process
        # environment too, so what it would take from there is checked as well.
        problems = [*self._ignored(), *refusals(os.environ, self.storage.env)]
        if problems:
            raise ValueError("; ".join(problems))
        self.cpin_secret()
        if self.jwks_path is not None and self.jwks_url is not None:
            raise ValueError(
                "Set JWKS_PATH or JWKS_URL, not both: the trusted keys have one source."
            )
        return self

    def _ignored(self) -> list[str]:
        """Settings given that the chosen store would ignore (session 18): those of the other
        kind of store (a forgotten POSTGRES_HOST would run the service on SQLite), or a
        second name of the SQLite file."""
        given, storage = self.model_fields_set, self.storage
        other = _POSTGRES_ONLY if storage.kind == "sqlite" else _SQLITE_ONLY
        if storage.kind == "sqlite" and "database_url" in given:
            # DATABASE_URL=sqlite:///PATH names the store outright: PostgreSQL variables a
            # shell keeps for other tools (the postgres image's own names) are not a
            # forgotten POSTGRES_HOST, and leave that store alone.
            other = frozenset()
        problems = [
            f"{name.upper()} is set but the store is {_KINDS[storage.kind]} ({storage.location}):"
            f" name a {_KINDS[_OTHER[storage.kind]]} store, unset it, or name the"
            f" {_KINDS[storage.kind]} store in DATABASE_URL to keep it"
            for name in sorted(given & other)
        ]
        problems += self._read_in_another_case(storage)
        chosen = storage.env.get("SQLITE_DBNAME")
        if "sqlite_path" in given and chosen is not None and Path(chosen) != self.sqlite_path:
            problems.append(
                f"SQLITE_PATH={str(self.sqlite_path)!r} differs from DATABASE_URL's {chosen!r}:"
                " set one of them"
            )
        return problems

    def _read_in_another_case(self, storage: Storage) -> list[str]:
        """PostgreSQL settings in the environment beside DATABASE_URL, under a name other than
        their upper-case one (postgres_user, Postgres_Port), that differ from the URL: Settings
        read every case, `refusals` (like eventsourcing) only the upper one, so they were
        dropped in silence. Worded as `refusals` words them, secrets hidden."""
        if storage.kind != "postgres" or "database_url" not in self.model_fields_set:
            return []
        return [
            name + problem[len(name) :]
            for name, value in sorted(os.environ.items())
            if name != name.upper() and name.lower() in _POSTGRES_SETTINGS
            for problem in refusals({name.upper(): value}, storage.env)
        ]

    def cpin_secret(self) -> bytes:
        """The key of the cPIN verifiers: CPIN_KEY, or the demo key on a SQLite store.

        Raises ValueError on PostgreSQL without CPIN_KEY: a deployment must not verify
        customers' cPINs with a key that is in the source code.
        """
        if self.cpin_key is not None:
            return self.cpin_key.get_secret_value().encode()
        if self.storage.kind == "sqlite":
            return DEMO_KEY
        raise ValueError(
            f"CPIN_KEY is not set: with PostgreSQL storage set it to a random secret of at "
            f"least {MIN_KEY_BYTES} characters (e.g. `python -c 'import secrets; "
            "print(secrets.token_urlsafe(48))'`), the same for every process, kept like a password."
        )

    def cursor_secret(self) -> bytes:
        """The key of the page cursors: CURSOR_KEY, else a random one for this process."""
        if self.cursor_key is not None and self.cursor_key.get_secret_value().strip():
            return self.cursor_key.get_secret_value().encode()
        return _PROCESS_CURSOR_KEY

    def views_location(self) -> Path:
        """The SQLite file of the read models beside a SQLite event store: VIEWS_SQLITE_PATH,
        else `<store>-views<suffix>` next to the store (var/partnerfleet-views.sqlite3 for
        the default one). Each store has views of its own: views shared by two stores show
        the first one's rows to the second (session 17)."""
        if self.views_sqlite_path is not None:
            return self.views_sqlite_path
        storage = self.storage
        if storage.kind != "sqlite":
            return DEFAULT_VIEWS_PATH
        store = Path(storage.env["SQLITE_DBNAME"])
        return store.with_name(f"{store.stem}-views{store.suffix}")

    @property
    def storage(self) -> Storage:
        """The storage these settings name, with CREATE_TABLE in its environment."""
        storage = self._named_storage()
        env = {**storage.env, "CREATE_TABLE": "yes" if self.create_table else "no"}
        if storage.kind == "postgres":
            env["POSTGRES_CONNECT_TIMEOUT"] = str(self.postgres_connect_timeout)
        return replace(storage, env=env, create_tables=self.create_table)

    def _named_storage(self) -> Storage:
        if self.database_url is not None and self.database_url.get_secret_value():
            return self._from_url(self.database_url.get_secret_value())
        if self.postgres_host or self.postgres_dbname:
            return self._postgres(
                self.postgres_host or "127.0.0.1",
                self.postgres_port,
                self.postgres_user,
                self.postgres_password.get_secret_value(),
                self.postgres_dbname or "postgres",
                self.postgres_schema,
            )
        return self._sqlite(self.sqlite_path)

    def _from_url(self, url: str) -> Storage:
        parts = urlsplit(url)
        if parts.scheme in ("postgresql", "postgres"):
            schema = parse_qs(parts.query).get("schema", [self.postgres_schema])[0]
            return self._postgres(
                parts.hostname or "127.0.0.1",
                parts.port or 5432,
                unquote(parts.username or "postgres"),
                unquote(parts.password or ""),
                parts.path.lstrip("/") or "postgres",
                schema,
            )
        if parts.scheme == "sqlite":
            path = parts.path[1:] if parts.path.startswith("//") else parts.path.lstrip("/")
            if not path:
                raise ValueError("DATABASE_URL sqlite:///PATH needs a file path.")
            return self._sqlite(Path(path))
        raise ValueError(
            f"DATABASE_URL scheme {parts.scheme!r} is not supported; use "
            "postgresql://USER:PASSWORD@HOST:PORT/DBNAME[?schema=NAME] or sqlite:///PATH."
        )

    @staticmethod
    def _postgres(
        host: str, port: int, user: str, password: str, dbname: str, schema: str
    ) -> Storage:
        if not re.fullmatch(SCHEMA_NAME, schema):  # "$" alone accepts a final "\n"
            raise ValueError(f"PostgreSQL schema {schema!r} must match {SCHEMA_NAME}.")
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "PROCESS_RECORDER_TOPIC": FLEET_RECORDER_TOPIC,  # binary array inserts
            "POSTGRES_HOST": host,
            "POSTGRES_PORT": str(port),
            "POSTGRES_USER": user,
            "POSTGRES_PASSWORD": password,
            "POSTGRES_DBNAME": dbname,
            "POSTGRES_SCHEMA": schema,
        }
        return Storage("postgres", env, f"postgresql://{user}@{host}:{port}/{dbname}", schema)

    @staticmethod
    def _sqlite(path: Path) -> Storage:
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "PROCESS_RECORDER_TOPIC": SQLITE_TOPIC,  # checks read versions (issue 11)
            "SQLITE_DBNAME": str(path),
        }
        return Storage("sqlite", env, str(path))
