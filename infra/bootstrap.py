"""The one place that wires storage, logging and applications together."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

from handlers import PartnerFleet
from infra.follow.view_runner import ViewRunner
from infra.http.auth import FileKeys, KeySource, TokenVerifier, UrlKeys
from infra.settings import DEMO_SIGNING_KEY_PATH, Settings, Storage
from infra.storage import pg_conn
from infra.storage.viewdb import PostgresViewDB, SQLiteViewDB, ViewDB, ddl_lock_key
from infra.tokens import (
    LOCAL_ISSUER,
    AuthConfigurationError,
    SigningKey,
    demo_signing_key,
    load_signing_key,
    read_jwks_file,
)
from projections import all_views


@contextmanager
def storage_ready(storage: Storage) -> Iterator[None]:
    """Make what the event store needs (var/, or the schema), and hold PostgreSQL's DDL lock
    of the schema while the caller creates its tables (see `ddl_lock_key`)."""
    if storage.kind == "sqlite":
        path = storage.env["SQLITE_DBNAME"]
        if path != ":memory:" and not path.startswith("file:"):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        yield
        return
    with psycopg.connect(pg_conn.conninfo(storage.env, pg_conn.SETUP), autocommit=True) as conn:
        key = ddl_lock_key(storage.schema)
        conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (key,))
        try:
            conn.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(storage.schema))
            )
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))


def build_view_db(settings: Settings) -> ViewDB:
    """The read-model database: the event store's PostgreSQL schema, or a SQLite file."""
    storage = settings.storage
    if storage.kind == "sqlite":
        return SQLiteViewDB(str(settings.views_sqlite_path))
    return PostgresViewDB(pg_conn.conninfo(storage.env, pg_conn.VIEWS), storage.schema)


def build_positions_db(settings: Settings) -> ViewDB:
    """Where the relay keeps its positions: the event store's own database (the SQLite
    store file, or the store's PostgreSQL schema), so deleting the views never makes the
    relay publish the history again (issue 9)."""
    storage = settings.storage
    if storage.kind == "sqlite":
        return SQLiteViewDB(storage.env["SQLITE_DBNAME"])
    return PostgresViewDB(pg_conn.conninfo(storage.env, pg_conn.VIEWS), storage.schema)


def build_view_runner(settings: Settings, fleet: PartnerFleet) -> ViewRunner:
    """Every read model over `fleet`'s events, tables created on start."""
    return ViewRunner(fleet, build_view_db(settings), all_views())


def build_fleet(settings: Settings) -> PartnerFleet:
    """The command application on the configured storage, tables created on start."""
    storage = settings.storage
    with storage_ready(storage):
        return PartnerFleet(env=storage.env, cpin_key=settings.cpin_secret())


def build_verifier(settings: Settings, demo: bool) -> TokenVerifier:
    """The bearer-token verifier (issue 9): keys from JWKS_URL or JWKS_PATH; in demo mode
    without either, the local signing key's public half.

    Raises `AuthConfigurationError` (the CLI exits 2) outside demo mode without a JWKS or
    without JWT_ISSUER, and for a JWKS file that cannot be read or holds an untrusted key.
    """
    issuer = settings.jwt_issuer or (LOCAL_ISSUER if demo else None)
    if issuer is None:
        raise AuthConfigurationError(
            "JWT_ISSUER is not set: name the identity provider whose tokens this service "
            "accepts (its `iss`), or run `serve --demo`."
        )
    return TokenVerifier(
        _trusted_keys(settings, demo),
        audience=settings.jwt_audience,
        issuer=issuer,
        leeway=settings.jwt_leeway_seconds,
    )


def _trusted_keys(settings: Settings, demo: bool) -> KeySource:
    if settings.jwks_url is not None:
        return UrlKeys(settings.jwks_url)
    if settings.jwks_path is not None:
        return FileKeys(read_jwks_file(settings.jwks_path), f"JWKS_PATH {settings.jwks_path}")
    if demo:
        return FileKeys(build_signing_key(settings).public_jwks(), "the local signing key")
    raise AuthConfigurationError(
        "No trusted keys: set JWKS_URL (the identity provider's JWK Set) or JWKS_PATH (a "
        "JWK Set file). Only `serve --demo` trusts the local demo key without one."
    )


def build_signing_key(settings: Settings) -> SigningKey:
    """The local key that `token issue` signs with: JWT_SIGNING_KEY_PATH, or the demo key
    under var/, generated on first use. Raises `AuthConfigurationError` for a bad key file."""
    if settings.jwt_signing_key_path is not None:
        return load_signing_key(settings.jwt_signing_key_path)
    return demo_signing_key(DEMO_SIGNING_KEY_PATH)
