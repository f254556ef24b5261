"""One CLI command run as several supervised processes: relay shards, feed consumers.

The relay and the intake are Python-bound on one core each; more cores need more
processes. The parent starts one `partnerfleet …` child per part, and when any child ends,
or the parent is told to stop (Ctrl-C, SIGTERM), it stops them all: a part never runs
unnoticed on its own, and the orchestrator (compose, systemd) sees one process to restart.

A parent that is killed outright (SIGKILL, the OOM killer) cannot stop its parts, so each
part watches its parent: on Linux the kernel sends it SIGTERM when the parent dies
(PR_SET_PDEATHSIG), elsewhere a thread notices the parent is gone; the part then stops as
on Ctrl-C, and exits hard if that takes longer than STOP_SECONDS.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from types import FrameType

import structlog

log = structlog.get_logger("partnerfleet.processes")

STOP_SECONDS = 15.0
SUPERVISOR_ENV = "PARTNERFLEET_SUPERVISOR_PID"  # set in each part: its parent's pid
PART_ENV = "PARTNERFLEET_PART"  # set in each part: its index among its supervisor's (0, 1, ...)
WATCH_SECONDS = 0.5
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
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


def one_cpu(choice: str) -> int | None:
    """Keep every thread of this process on one CPU (threads started later inherit it), as
    PROCESS_CPU says (infra/settings.py; the CPU as `cpu_for` chooses it). Returns the CPU,
    or None when the threads are left where the kernel puts them: `off`, a process allowed
    one CPU only (`auto`), a system without CPU affinity (not Linux), or one that refused
    it (logged).

    Why (issue 11, session 24; docs/decisions.md): a serving process's Python threads take
    turns on one interpreter lock, handing it over a few times per command. Spread over
    CPUs, each hand-over wakes a thread on another CPU; on one CPU it does not. On a 2-CPU
    virtual machine, 8 threads' commands ran 1.30x as fast (median of 10 alternating
    pairs) with about three quarters of the CPU each.

    Raises ValueError (one line, for the operator) as `cpu_for`.
    """
    set_affinity = getattr(os, "sched_setaffinity", None)
    if set_affinity is None:
        return None
    cpu = cpu_for(choice)
    if cpu is None or not _pin_threads(set_affinity, cpu):
        return None
    part = _part_index()
    log.info("process_cpu", cpu=cpu, **({} if part is None else {"part": part}))
    return cpu


def cpu_for(choice: str) -> int | None:
    """The CPU `one_cpu` takes for PROCESS_CPU `choice`, pinning nothing (a supervisor checks
    its parts' setting with it before starting them): `auto` takes one of the CPUs the
    process may use, a part of a supervisor (`serve --workers N`) by its index (PART_ENV),
    a process alone by its pid; a number takes that CPU. None: `off`, `auto` with one CPU
    allowed, or no CPU affinity here (not Linux, or the kernel refused to say: logged).

    Raises ValueError (one line) when `choice` is none of those, or the number is not a CPU
    this process may use.
    """
    if choice == "off" or not hasattr(os, "sched_getaffinity"):
        return None
    if choice != "auto" and not (choice.isascii() and choice.isdigit()):
        raise ValueError(f"PROCESS_CPU={choice[:40]!r} is neither auto, off nor a CPU's number.")
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except OSError as error:  # (refused: the threads stay where they are)
        log.warning("process_cpu_not_set", reason=f"{type(error).__name__}: {error}")
        return None
    if choice == "auto":
        if len(allowed) < 2:
            return None
        index = _part_index()
        return allowed[(os.getpid() if index is None else index) % len(allowed)]
    digits = choice.lstrip("0") or "0"  # (int() refuses more than 4,300 digits)
    cpu = int(digits) if len(digits) <= 9 else -1
    if cpu not in allowed:
        listed = ", ".join(map(str, allowed))
        named = choice[:40] if cpu < 0 else cpu
        raise ValueError(f"PROCESS_CPU={named} is not a CPU this process may use ({listed}).")
    return cpu


def _part_index() -> int | None:
    """This part's index among its supervisor's (PART_ENV), or None: only an index as
    run_children writes it (ASCII digits, not "²" nor 5,000 of them: int() refuses those);
    anything else in the environment is no index."""
    part = os.environ.get(PART_ENV, "")
    return int(part) if part.isascii() and part.isdigit() and len(part) <= 9 else None


PIN_ROUNDS = 10  # listings of the threads at most (`_pin_threads`)


def _pin_threads(set_affinity: Callable[[int, set[int]], None], cpu: int) -> bool:
    """Put every thread of this process on `cpu`; False (logged) when one was refused, the
    threads pinned before it put back on their CPUs (none is left half-way).

    The threads are listed again until a listing shows none new: a thread started while
    the others were pinned, by one not yet pinned, inherits its creator's old CPUs and is
    in no earlier listing."""
    get_affinity = os.sched_getaffinity
    before: dict[int, set[int] | None] = {}  # each thread seen: its CPUs before (None: ended)
    try:
        for _ in range(PIN_ROUNDS):
            tasks = [task for task in _threads() if task not in before]
            if not tasks:
                break
            for task in tasks:
                try:
                    cpus = get_affinity(task)
                    set_affinity(task, {cpu})  # (sched_setaffinity sets one thread: each)
                except ProcessLookupError:  # a thread that ended meanwhile
                    cpus = None
                before[task] = cpus
    except OSError as error:
        for task, cpus in before.items():
            if cpus is not None:
                with contextlib.suppress(OSError):
                    set_affinity(task, cpus)
        log.warning("process_cpu_not_set", cpu=cpu, reason=f"{type(error).__name__}: {error}")
        return False
    return True


def _threads() -> list[int]:
    """This process's thread ids (Linux's /proc), or [0] (the calling thread) without it."""
    try:
        return [int(task) for task in os.listdir("/proc/self/task")]
    except OSError:
        return [0]


def cli_command(*arguments: str) -> list[str]:
    """The command line of `partnerfleet ARGUMENTS…` in this environment, run as a part
    that ends with its supervisor (`supervised_main`)."""
    return [
        sys.executable,
        "-c",
        "from infra.cli.processes import supervised_main as m; m()",
        *arguments,
    ]


def supervised_main() -> None:
    """A part's entry point: follow the supervisor named in the environment, then the CLI."""
    supervisor = int(os.environ.pop(SUPERVISOR_ENV, "0") or 0)
    if supervisor:
        end_with(supervisor)
    importlib.import_module("infra.cli.app").main()  # not at the top: infra.cli.app imports us


def end_with(supervisor: int, *, kernel: bool = True) -> None:
    """Stop this process as on Ctrl-C when `supervisor`, its parent, ends: by the kernel's
    PR_SET_PDEATHSIG on Linux (unless `kernel` is False), and by a watching thread."""
    # A part started in the background inherits SIGINT ignored: take it back, and let
    # SIGTERM (the parent-death signal) stop the part the same clean way.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    signalled = kernel and _parent_death_signal(signal.SIGTERM)
    if os.getppid() != supervisor:  # it ended before the kernel was told: no signal comes
        log.warning("supervisor_gone", supervisor=supervisor)
        os._exit(1)
    watch = threading.Thread(
        target=watch_supervisor, args=(supervisor, signalled), name="supervisor-watch", daemon=True
    )
    watch.start()


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _parent_death_signal(signum: int) -> bool:
    """Ask Linux to send `signum` when the parent ends; False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    with contextlib.suppress(OSError, AttributeError):
        done: int = ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)
        return done == 0
    return False


def watch_supervisor(supervisor: int, signalled: bool) -> None:
    """Return never: when the parent `supervisor` is gone, send this process SIGTERM (unless
    the kernel `signalled` it already) and exit hard STOP_SECONDS later if still running.
    The portable fallback of PR_SET_PDEATHSIG, and the deadline for a hanging clean stop."""
    while os.getppid() == supervisor:
        time.sleep(WATCH_SECONDS)
    log.warning("supervisor_gone", supervisor=supervisor)
    if not signalled:
        os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(STOP_SECONDS)
    os._exit(1)


def run_children(
    commands: Sequence[Sequence[str]], what: str, env: Mapping[str, str] | None = None
) -> int:
    """Run every command until one ends or we are told to stop; returns the exit code.
    `env`: variables set for every child besides this process's own (none logged)."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("processes_stopping", what=what, signal=signal.Signals(signum).name)
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    # SIGINT too, as SIGTERM: a supervisor started in the background (`&`) inherits SIGINT
    # ignored, and `kill -INT` did nothing (session 24's walkthrough).
    previous_interrupt = signal.signal(signal.SIGINT, on_signal)
    child_env = {**os.environ, **(env or {}), SUPERVISOR_ENV: str(os.getpid())}
    children = [
        subprocess.Popen(list(command), env={**child_env, PART_ENV: str(index)})
        for index, command in enumerate(commands)
    ]
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
        signal.signal(signal.SIGINT, previous_interrupt)
        _stop_all(children)
    return code


def _stop_all(children: Sequence[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            # SIGTERM, which every part takes as Ctrl-C (`end_with`; uvicorn alike), not
            # SIGINT: after a terminal's Ctrl-C, which reached the parts too (one process
            # group), a second SIGINT is uvicorn's "force exit" (a traceback per part;
            # session 24's walkthrough), a SIGTERM only the same request again.
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
