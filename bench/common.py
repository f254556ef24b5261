"""What the benchmarks share: the PostgreSQL server, fresh schemas, logging, progress lines."""

from __future__ import annotations

import argparse
import json
import logging
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import structlog
from psycopg import sql
from rich.console import Console

from handlers import PartnerFleet
from infra.bootstrap import storage_ready
from infra.settings import Storage
from infra.storage.pg_recorder import TOPIC as FLEET_RECORDER_TOPIC

PG_CONNINFO = "host=127.0.0.1 port=5432 user=postgres dbname=test"
RESULTS = Path(__file__).parent / "results"

T = TypeVar("T")

console = Console()


def argument_parser(module: str, doc: str | None) -> argparse.ArgumentParser:
    """The options of `python -m bench.MODULE`, with the module's docstring as its help."""
    return argparse.ArgumentParser(
        prog=f"python -m bench.{module}",
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def write_results(name: str, body: dict[str, Any]) -> Path:
    """Write a run's results to bench/results/NAME.json; returns the path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(body, indent=2) + "\n")
    return path


def timed(work: Callable[[], T]) -> tuple[float, T]:
    """Wall-clock seconds `work` takes, and what it returned."""
    start = time.perf_counter()
    result = work()
    return time.perf_counter() - start, result


def quiet_logging() -> None:
    """Drop structlog's per-command info lines so logging does not dominate the timings."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def say(message: str) -> None:
    """One progress line (outside timed work)."""
    console.print(f"[dim]{datetime.now(UTC):%H:%M:%S}[/dim] {message}")


def connect(*, autocommit: bool = False) -> psycopg.Connection[Any]:
    """A connection to the benchmarks' PostgreSQL server (PG_CONNINFO, not configurable).

    Raises SystemExit with one line naming the server and the reason when it cannot be
    reached (instead of psycopg's traceback), so `make bench` on a machine without it
    says what is missing."""
    try:
        return psycopg.connect(PG_CONNINFO, autocommit=autocommit, connect_timeout=10)
    except psycopg.OperationalError as error:
        reason = " ".join(str(error).split())
        raise SystemExit(
            f"bench: cannot connect to PostgreSQL ({PG_CONNINFO}): {reason}. The benchmarks "
            "need that server (user postgres, trust auth, database test) running."
        ) from None


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A new PostgreSQL schema for this run, dropped (CASCADE) afterwards.

    Raises SystemExit (one line) when the server cannot be reached."""
    schema = f"bench_{secrets.token_hex(6)}"
    with connect(autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield schema
    finally:
        with psycopg.connect(PG_CONNINFO, autocommit=True) as conn:
            drop = sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE")
            conn.execute(drop.format(sql.Identifier(schema)))


def postgres_env(schema: str) -> dict[str, str]:
    """PartnerFleet's environment for PostgreSQL in `schema` (never with DB functions)."""
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "PROCESS_RECORDER_TOPIC": FLEET_RECORDER_TOPIC,
        "POSTGRES_DBNAME": "test",
        "POSTGRES_HOST": "127.0.0.1",
        "POSTGRES_PORT": "5432",
        "POSTGRES_USER": "postgres",
        "POSTGRES_PASSWORD": "",
        "POSTGRES_SCHEMA": schema,
        "POSTGRES_ENABLE_DB_FUNCTIONS": "no",
    }


@contextmanager
def open_fleet(env: dict[str, str]) -> Iterator[PartnerFleet]:
    """A PartnerFleet on `env` (tables made under the schema's DDL lock, as build_fleet does),
    closed afterwards; processes of a benchmark open theirs at the same moment."""
    if "POSTGRES_SCHEMA" in env:
        with storage_ready(Storage("postgres", env, PG_CONNINFO, env["POSTGRES_SCHEMA"])):
            fleet = PartnerFleet(env=env)
    else:
        fleet = PartnerFleet(env=env)
    try:
        yield fleet
    finally:
        fleet.close()


def postgres_settings() -> dict[str, str]:
    """Server settings that decide the rates (durability, version, autovacuum).

    Raises SystemExit (one line) when the server cannot be reached."""
    names = ["server_version", "fsync", "synchronous_commit", "wal_sync_method", "autovacuum"]
    with connect() as conn:
        return {name: show(conn, name) for name in names}


def show(conn: psycopg.Connection[Any], name: str) -> str:
    """The value of one server setting."""
    row = conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()
    return "?" if row is None else str(row[0])


def code_version() -> str:
    """The checked-out commit (read-only git; local edits are not flagged)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit.stdout.strip()
