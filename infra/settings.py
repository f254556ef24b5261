"""One Settings object: storage, HTTP and logging, read from the environment; fails fast."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from infra.pg_recorder import TOPIC as FLEET_RECORDER_TOPIC

DEFAULT_SQLITE_PATH = Path("var/partnerfleet.sqlite3")
DEFAULT_VIEWS_PATH = Path("var/partnerfleet-views.sqlite3")
SCHEMA_NAME = r"^[a-z_][a-z0-9_]{0,62}$"


@dataclass(frozen=True)
class Storage:
    """Where events are stored: the eventsourcing environment and a password-free description."""

    kind: Literal["sqlite", "postgres"]
    env: dict[str, str]
    location: str
    schema: str = "public"


class Settings(BaseSettings):
    """Configuration. No storage variables set means SQLite under var/."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    database_url: str | None = None
    postgres_host: str | None = None
    postgres_port: int = Field(default=5432, ge=1, le=65535)
    postgres_user: str = "postgres"
    postgres_password: str = ""
    postgres_dbname: str | None = None
    postgres_schema: str = Field(default="public", pattern=SCHEMA_NAME)
    sqlite_path: Path = DEFAULT_SQLITE_PATH
    views_sqlite_path: Path = DEFAULT_VIEWS_PATH  # read models beside a SQLite event store
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    kafka_bootstrap_servers: str | None = None  # no broker: no relay, no feeds
    kafka_topic_prefix: str = Field(default="partnerfleet", pattern=r"^[A-Za-z0-9._-]{1,100}$")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["console", "json"] = "console"

    @model_validator(mode="after")
    def _storage_is_understood(self) -> Settings:
        self.storage  # noqa: B018 - parse now, so bad configuration fails at start-up
        return self

    @property
    def storage(self) -> Storage:
        """The storage these settings name."""
        if self.database_url:
            return self._from_url(self.database_url)
        if self.postgres_host or self.postgres_dbname:
            return self._postgres(
                self.postgres_host or "127.0.0.1",
                self.postgres_port,
                self.postgres_user,
                self.postgres_password,
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
        if not re.match(SCHEMA_NAME, schema):
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
        env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)}
        return Storage("sqlite", env, str(path))
