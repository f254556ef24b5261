"""One CLI command run as several supervised processes: relay shards, feed consumers.

The relay and the intake are Python-bound on one core each; more cores need more
processes. The parent starts one `partnerfleet …` child per part, and when any child ends,
or the parent is told to stop (Ctrl-C, SIGTERM), it stops them all: a part never runs
unnoticed on its own, and the orchestrator (compose, systemd) sees one process to restart.
"""

from __future__ import annotations

import gc
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from types import FrameType

import structlog

log = structlog.get_logger("partnerfleet.processes")

STOP_SECONDS = 15.0
GC_THRESHOLDS = (50_000, 50, 100)  # Python's defaults: (700, 10, 10)


def tune_gc() -> None:
    """Collect garbage less often in a throughput process (a relay shard, a feed consumer).

    Each relay batch makes some 60,000 short-lived objects (records, headers, futures); with
    the default thresholds the collector runs every 700 allocations and rescans the
    long-lived ones (modules, classes, caches) each time. Freezing what exists after start-up
    and raising the thresholds made the relay about a fifth faster (bench/kafka_path.py).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def cli_command(*arguments: str) -> list[str]:
    """The command line of `partnerfleet ARGUMENTS…` in this environment."""
    return [sys.executable, "-c", "from infra.cli import main; main()", *arguments]


def run_children(commands: Sequence[Sequence[str]], what: str) -> int:
    """Run every command until one ends or we are told to stop; returns the exit code."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("processes_stopping", what=what, signal=signal.Signals(signum).name)
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    children = [subprocess.Popen(list(command)) for command in commands]
    log.info("processes_started", what=what, pids=[c.pid for c in children])
    code = 0
    try:
        while not stop.is_set():
            ended = [c for c in children if c.poll() is not None]
            if ended:
                code = ended[0].returncode or 1  # a part must never stop on its own
                log.error("process_ended", what=what, pid=ended[0].pid, code=code)
                break
            stop.wait(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        _stop_all(children)
    return code


def _stop_all(children: Sequence[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGINT)  # the CLI commands stop cleanly on Ctrl-C
    for child in children:
        try:
            child.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
