"""The one place that builds adapters: the fleet, the view database and its runner, the
policies, the relay, the feed consumers, the token verifier, and the service that runs them.

The faces (`infra/cli`, `infra/http`) call these functions and never build an adapter
themselves (docs/decisions.md, "The CLI as a face").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from fastapi import FastAPI
from kafka import KafkaConsumer, KafkaProducer
from psycopg import sql

from handlers import PartnerFleet, PolicyRunner
from handlers.aggregate_cache import CACHE_SIZE_ENV
from infra.follow.policy_follower import PolicyFollower
from infra.follow.view_runner import ViewRunner
from infra.http.app import create_api
from infra.http.auth import FileKeys, KeySource, TokenVerifier, UrlKeys
from infra.kafka.feeds import FeedConsumer, consumer_config, consumer_group, feed_for
from infra.kafka.parking import PARKED_DDL, Parked, parked_events
from infra.kafka.relay import Relay, ensure_topics, producer_config
from infra.kafka.shards import SINGLE, Shard, relay_positions
from infra.loops import Follower, no_wait
from infra.settings import DEMO_SIGNING_KEY_PATH, Settings, Storage
from infra.storage import pg_conn
from infra.storage.start_ddl import missing, start_ddl
from infra.storage.tracking import TRACKING_DDL
from infra.storage.viewdb import (
    PostgresViewDB,
    SQLiteViewDB,
    ViewDB,
    ddl_lock_key,
    pool_timeout,
)
from infra.tokens import (
    LOCAL_ISSUER,
    AuthConfigurationError,
    SigningKey,
    demo_signing_key,
    load_signing_key,
    read_jwks_file,
)
from infra.web.app import create_portal
from projections import all_views

T = TypeVar("T")


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
            if storage.create_tables:
                conn.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(storage.schema))
                )
            elif not conn.execute(
                "SELECT 1 FROM pg_namespace WHERE nspname = %s", (storage.schema,)
            ).fetchone():
                raise missing("schema", "PostgreSQL", storage.schema)
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))


def build_view_db(settings: Settings) -> ViewDB:
    """The read-model database: the event store's PostgreSQL schema, or a SQLite file."""
    storage = settings.storage
    if storage.kind == "sqlite":
        return SQLiteViewDB(str(settings.views_location()))
    return PostgresViewDB(
        pg_conn.conninfo(storage.env, pg_conn.VIEWS),
        storage.schema,
        timeout=pool_timeout(storage.env),
    )


def build_positions_db(settings: Settings) -> ViewDB:
    """Where the relay keeps its positions: the event store's own database (the SQLite
    store file, or the store's PostgreSQL schema), so deleting the views never makes the
    relay publish the history again (issue 9)."""
    storage = settings.storage
    if storage.kind == "sqlite":
        return SQLiteViewDB(storage.env["SQLITE_DBNAME"])
    return PostgresViewDB(
        pg_conn.conninfo(storage.env, pg_conn.VIEWS),
        storage.schema,
        timeout=pool_timeout(storage.env),
    )


def build_view_runner(settings: Settings, fleet: PartnerFleet) -> ViewRunner:
    """Every read model over `fleet`'s events, tables created on start."""
    return _owning(build_view_db(settings), lambda db: ViewRunner(fleet, db, all_views()))


def _owning(db: ViewDB, make: Callable[[ViewDB], T]) -> T:
    """`make(db)`, with `db` closed when that raises: a start that failed (a missing table,
    the store down) leaves no pool and no threads behind."""
    try:
        return make(db)
    except BaseException:
        db.close()
        raise


def build_fleet(settings: Settings) -> PartnerFleet:
    """The command application on the configured storage, tables created on start."""
    storage = settings.storage
    env = {**storage.env, CACHE_SIZE_ENV: str(settings.aggregate_cache_size)}
    with storage_ready(storage):
        fleet = PartnerFleet(env=env, cpin_key=settings.cpin_secret())
    if not storage.create_tables:
        try:
            check_store_tables(fleet, storage)
        except BaseException:
            fleet.close()
            raise
    return fleet


def check_store_tables(fleet: PartnerFleet, storage: Storage) -> None:
    """With CREATE_TABLE off, eventsourcing made no table and checks none: the event store's
    events and tracking tables are looked up here, so a missing one stops the start with
    `MissingTablesError` instead of failing the first command (infra/storage/start_ddl.py)."""
    recorder = fleet.recorder
    names = [getattr(recorder, n, None) for n in ("events_table_name", "tracking_table_name")]
    postgres = storage.kind == "postgres"
    look_up = _STORE_TABLE_FOUND[storage.kind]
    with recorder.datastore.transaction(commit=False) as curs:  # type: ignore[attr-defined]
        for name in filter(None, names):
            qualified = ".".join(f'"{part}"' for part in (storage.schema, name))
            curs.execute(look_up, (qualified if postgres else name,))
            if not curs.fetchone()["found"]:
                where = ("PostgreSQL", storage.schema) if postgres else ("SQLite", None)
                raise missing(f"table {name}", *where)


_STORE_TABLE_FOUND = {
    "postgres": "SELECT to_regclass(%s) IS NOT NULL AS found",
    "sqlite": "SELECT count(*) > 0 AS found FROM sqlite_master WHERE name = ?",
}


def build_verifier(settings: Settings, demo: bool = False) -> TokenVerifier:
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
    local = local_jwks(settings, demo)
    if local is not None:
        return FileKeys(local, "the local signing key")
    raise AuthConfigurationError(
        "No trusted keys: set JWKS_URL (the identity provider's JWK Set) or JWKS_PATH (a "
        "JWK Set file). Only `serve --demo` trusts the local demo key without one."
    )


def local_jwks(settings: Settings, demo: bool) -> dict[str, list[dict[str, Any]]] | None:
    """The public JWK Set of the local signing key when the verifier trusts that key (demo
    mode without JWKS_URL or JWKS_PATH), else None. `serve --demo` publishes it at
    GET /.well-known/jwks.json, so a client can check the demo tokens as the service does."""
    if not demo or settings.jwks_url is not None or settings.jwks_path is not None:
        return None
    return build_signing_key(settings).public_jwks()


def build_signing_key(settings: Settings) -> SigningKey:
    """The local key that `token issue` signs with: JWT_SIGNING_KEY_PATH, or the demo key
    under var/, generated on first use. Raises `AuthConfigurationError` for a bad key file."""
    if settings.jwt_signing_key_path is not None:
        return load_signing_key(settings.jwt_signing_key_path)
    return demo_signing_key(DEMO_SIGNING_KEY_PATH)


def build_policy_runner(fleet: PartnerFleet) -> PolicyRunner:
    """Every policy over `fleet`'s notification log (R-ALR-1, R-ALR-2, R-ALR-4)."""
    return PolicyRunner(fleet)


def build_policy_follower(fleet: PartnerFleet) -> PolicyFollower:
    """The policies, to be followed live (`start()`)."""
    return PolicyFollower(build_policy_runner(fleet))


def build_relay(settings: Settings, fleet: PartnerFleet, shard: Shard = SINGLE) -> Relay:
    """The relay of `fleet`'s events to the configured broker (one shard of it).

    Raises ValueError without KAFKA_BOOTSTRAP_SERVERS."""
    broker = _broker(settings)
    return _owning(
        build_positions_db(settings),
        lambda positions: Relay(
            fleet,
            positions,
            broker,
            prefix=settings.kafka_topic_prefix,
            shard=shard,
            max_message_bytes=settings.kafka_max_message_bytes,
        ),
    )


def build_feed_consumer(settings: Settings, fleet: PartnerFleet, feed: str) -> FeedConsumer:
    """A consumer of the inbound `feed` ("e2open" or "alerts") into its intake command,
    its topic and dead-letter topic created if missing.

    Raises KeyError for an unknown feed, ValueError without KAFKA_BOOTSTRAP_SERVERS."""
    broker, prefix = _broker(settings), settings.kafka_topic_prefix
    chosen = feed_for(feed, prefix)
    ensure_topics(broker, [chosen.topic, chosen.dead_letters])
    return FeedConsumer(
        fleet,
        chosen,
        KafkaConsumer(chosen.topic, **consumer_config(broker, consumer_group(feed, prefix))),
        KafkaProducer(**producer_config(broker, settings.kafka_max_message_bytes)),
    )


def _broker(settings: Settings) -> str:
    if not settings.kafka_bootstrap_servers:
        raise ValueError("set KAFKA_BOOTSTRAP_SERVERS (host:port) to use Kafka.")
    return settings.kafka_bootstrap_servers


def relay_records(settings: Settings) -> tuple[dict[str, int], dict[str, list[Parked]]]:
    """Every relay destination's positions, and its parked events (no broker needed)."""
    positions = build_positions_db(settings)
    try:
        with start_ddl(positions, settings.storage.create_tables) as tx:
            tx.execute(TRACKING_DDL)
            tx.execute(PARKED_DDL)
            return relay_positions(tx), parked_events(tx)
    finally:
        positions.close()


@dataclass
class Service:
    """What `serve` runs in one process: the fleet, the views and policies it follows, the
    relay (when a broker is configured), and the HTTP application over them."""

    settings: Settings
    fleet: PartnerFleet
    views: ViewRunner
    policies: PolicyFollower
    relay: Relay | None = None
    loops: dict[str, Follower] = field(default_factory=dict)
    verifier: TokenVerifier | None = None
    jwks: dict[str, list[dict[str, Any]]] | None = None  # the local key's, when trusted

    def api(self) -> FastAPI:
        """The HTTP application over what this service runs, with the portal at /portal
        (demo sign-in with the local key when the service trusts it)."""
        api = create_api(
            self.fleet,
            self.settings,
            self.views,
            self.policies,
            self.loops,
            self.relay,
            verifier=self.verifier,
            jwks=self.jwks,
        )
        create_portal(api, build_signing_key(self.settings) if self.jwks is not None else None)
        return api


def start_service(
    settings: Settings,
    fleet: PartnerFleet,
    *,
    follow_views: bool = True,
    run_policies: bool = True,
    run_relay: bool = True,
    verifier: TokenVerifier | None = None,
    jwks: dict[str, list[dict[str, Any]]] | None = None,
) -> Service:
    """Build the service over `fleet` and start the loops chosen (the relay only with a
    broker configured): each runs in a background thread until the process ends."""
    service = Service(
        settings,
        fleet,
        build_view_runner(settings, fleet),
        build_policy_follower(fleet),
        verifier=verifier,
        jwks=jwks,
    )
    if follow_views:
        service.views.start()
    if run_policies:
        service.policies.start()
    if run_relay and settings.kafka_bootstrap_servers:
        service.relay = build_relay(settings, fleet)
        # The relay retries the broker itself; the follower restarts it after anything else.
        service.loops["relay"] = Follower("relay", service.relay.run, no_wait).start()
    return service
