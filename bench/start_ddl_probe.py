"""Probe (issue 11, session 18): fleet starts beside a policy-saving loop.

One process saves in a loop (a tracking record and an event per save, each holding the
events table's EXCLUSIVE lock 0.2 s, as a long COPY does); this one starts the fleet
`starts` times meanwhile and prints the median and longest start (wall seconds). `old`
runs eventsourcing's own start DDL (CREATE INDEX IF NOT EXISTS of the existing
notification index), `new` FleetProcessRecorder's. Needs CPIN_KEY and a fresh schema:

    python -m bench.start_ddl_probe old|new SCHEMA STARTS [DSN]
"""

from __future__ import annotations

import multiprocessing as mp
import sys
import time
import uuid
from multiprocessing.synchronize import Event

from eventsourcing.persistence import StoredEvent, Tracking
from eventsourcing.postgres import PostgresProcessRecorder
from psycopg.sql import SQL

from infra.bootstrap import build_fleet
from infra.settings import Settings
from infra.storage.pg_recorder import FleetProcessRecorder

DSN = "postgresql://postgres@127.0.0.1:5432/test"


def _saver(url: str, stop: Event) -> None:
    fleet = build_fleet(Settings(database_url=url))
    recorder = fleet.recorder
    assert isinstance(recorder, FleetProcessRecorder)
    recorder.closing_statements = [SQL("SELECT pg_sleep(0.2)")]
    saves = 0
    while not stop.is_set():
        saves += 1
        event = StoredEvent(uuid.uuid4(), 1, "probe", b"x")
        recorder.insert_events([event], tracking=Tracking("probe_policy", saves))
    fleet.close()
    print("saves", saves, flush=True)


def main(mode: str, schema: str, starts: int, dsn: str = DSN) -> None:
    url = f"{dsn}?schema={schema}"
    build_fleet(Settings(database_url=url)).close()
    if mode == "old":
        FleetProcessRecorder._create_table = PostgresProcessRecorder._create_table  # type: ignore[method-assign]
    stop = mp.Event()
    saving = mp.Process(target=_saver, args=(url, stop))
    saving.start()
    time.sleep(1.0)
    times: list[float] = []
    for _ in range(starts):
        began = time.monotonic()
        build_fleet(Settings(database_url=url)).close()
        times.append(time.monotonic() - began)
    stop.set()
    saving.join()
    times.sort()
    print(f"{mode} starts {starts} median {times[starts // 2]:.3f} s max {times[-1]:.3f} s")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), *sys.argv[4:])
