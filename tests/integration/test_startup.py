"""Processes that start together on an empty PostgreSQL schema all come up (compose, --workers)."""

from __future__ import annotations

import multiprocessing
from typing import Any

from infra.bootstrap import build_fleet, build_view_db, build_view_runner
from infra.kafka.relay import Relay
from infra.settings import Settings

STARTERS = 4


def start_everything(settings: Settings, ready: Any, results: Any) -> None:
    """What the api, relay and consumers do on start: event tables, views, relay position."""
    try:
        ready.wait(timeout=60)
        fleet = build_fleet(settings)
        runner = build_view_runner(settings, fleet)
        Relay(fleet, build_view_db(settings), "unused:9092")
        results.put("ok")
        runner.db.close()
        fleet.close()
    except Exception as error:  # reported to the test, which names it
        results.put(f"{type(error).__name__}: {error}")


def test_processes_starting_together_on_an_empty_schema_all_start(
    postgres_settings: Settings,
) -> None:
    """Concurrent CREATE … IF NOT EXISTS fails in PostgreSQL; the DDL lock makes them take turns."""
    context = multiprocessing.get_context("spawn")
    ready, results = context.Barrier(STARTERS), context.Queue()
    starters = [
        context.Process(target=start_everything, args=(postgres_settings, ready, results))
        for _ in range(STARTERS)
    ]
    for starter in starters:
        starter.start()
    outcomes = [results.get(timeout=120) for _ in starters]
    for starter in starters:
        starter.join(timeout=30)
    assert outcomes == ["ok"] * STARTERS
