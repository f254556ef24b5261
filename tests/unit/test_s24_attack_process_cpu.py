"""Session 24's attack on PROCESS_CPU (infra/cli/processes.py `one_cpu`, infra/settings.py):
hostile values of PROCESS_CPU and PARTNERFLEET_PART, the kernel refusing, threads that end
or start while the others are pinned. Whatever pins threads runs in a child process (or
on fakes): pinning the test process would slow every test after it."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
from functools import partial
from pathlib import Path

import pytest
from pydantic import ValidationError

from infra.cli import processes
from infra.cli.processes import PART_ENV, cli_command, one_cpu
from infra.settings import Settings
from tests.unit.test_processes import children, wait_until
from tests.unit.test_s24_process_cpu import (
    ALLOWED,
    cpus_of_every_thread,
    free_port,
    linux_only,
    pinned_child,
    serving,
    two_cpus,
)

HUGE = "9" * 5000  # more digits than int() converts (4,300)


class FakeKernel:
    """os.sched_getaffinity / sched_setaffinity on made-up threads (nothing really pinned):
    each thread's CPUs, and the thread ids whose setting is refused with `refusal`."""

    def __init__(self, tasks: dict[int, set[int]], refuse: dict[int, OSError]) -> None:
        self.cpus = {task: set(cpus) for task, cpus in tasks.items()}
        self.refuse = refuse

    def get(self, task: int) -> set[int]:
        if task == 0 and 0 not in self.cpus:  # the process's own (one_cpu's `allowed`)
            return {0, 1}
        if task not in self.cpus:
            raise ProcessLookupError(errno.ESRCH, "No such process")
        return set(self.cpus[task])

    def set(self, task: int, cpus: set[int]) -> None:
        if task in self.refuse:
            raise self.refuse[task]
        if task not in self.cpus:
            raise ProcessLookupError(errno.ESRCH, "No such process")
        self.cpus[task] = set(cpus)


def fake_kernel(
    monkeypatch: pytest.MonkeyPatch,
    listed: list[int],
    tasks: dict[int, set[int]],
    refuse: dict[int, OSError] | None = None,
) -> FakeKernel:
    kernel = FakeKernel(tasks, refuse or {})
    monkeypatch.setattr(os, "sched_getaffinity", kernel.get, raising=False)
    monkeypatch.setattr(os, "sched_setaffinity", kernel.set, raising=False)
    monkeypatch.setattr(
        processes, "_threads", lambda: [0 if t == os.getpid() else t for t in listed]
    )
    monkeypatch.delenv(PART_ENV, raising=False)
    return kernel


# --- faults found (each failed before its fix) ------------------------------------------------


@linux_only
@two_cpus
@pytest.mark.parametrize("part", ["²", HUGE])
def test_s24_attack_a_part_index_int_refuses_is_no_reason_to_refuse_to_serve(part: str) -> None:
    """PARTNERFLEET_PART="²" passes str.isdigit but int() refuses it (and 5,000 digits too):
    one_cpu("auto") raised int()'s ValueError, which `serve` printed as its reason to exit 2
    ("partnerfleet: invalid literal for int() with base 10: '²'"). Not an index as
    run_children writes one: the process takes a CPU by its pid, as without the variable."""
    seen = pinned_child("auto", **{PART_ENV: part})
    assert "error" not in seen, seen
    assert seen["cpu"] in ALLOWED


@linux_only
@two_cpus
def test_s24_attack_serve_with_a_stray_part_index_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same through `partnerfleet serve` (one process): it exited 2 with "partnerfleet:
    invalid literal for int() with base 10: '²'"; it serves, every thread on one CPU."""
    monkeypatch.setenv(PART_ENV, "²")
    server, _ = serving(tmp_path, 1, "auto")
    try:
        cpus = cpus_of_every_thread(server.pid)
        assert len(cpus) == 1
        assert cpus.pop() in {str(cpu) for cpu in ALLOWED}
    finally:
        server.terminate()
        server.communicate(timeout=30)


def test_s24_attack_a_huge_process_cpu_is_named_as_any_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PROCESS_CPU of 5,000 digits: the validator's int() raised Python's own "Exceeds the
    limit (4300 digits) for integer string conversion ... use sys.set_int_max_str_digits()",
    not the setting's message naming what it may be."""
    monkeypatch.setenv("PROCESS_CPU", HUGE)
    with pytest.raises(ValidationError) as refused:
        Settings()
    message = str(refused.value)
    assert f"PROCESS_CPU={HUGE[:40]!r} is neither auto, off nor a CPU's number" in message
    assert "set_int_max_str_digits" not in message


def test_s24_attack_a_cpu_behind_5000_zeros_is_that_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Leading zeros stay allowed ("007" is 7), however many: int() refused 5,000 of them."""
    monkeypatch.setenv("PROCESS_CPU", "0" * 5000 + "1")
    assert Settings().process_cpu == "1"


@linux_only
def test_s24_attack_one_cpu_given_a_huge_number_names_it_not_int() -> None:
    """bench.commands passes PROCESS_CPU to one_cpu unvalidated: 5,000 digits raised int()'s
    message."""
    with pytest.raises(ValueError, match="is not a CPU this process may use"):
        one_cpu(HUGE)


def test_s24_attack_a_kernel_refusing_to_tell_the_cpus_is_logged_not_raised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """sched_getaffinity refused (EPERM under a seccomp profile): the docstring promises None
    ("a system ... that refused it (logged)"); an OSError escaped, a traceback from serve."""

    def refused(_task: int) -> set[int]:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    kernel = fake_kernel(monkeypatch, [os.getpid()], {os.getpid(): {0, 1}})
    monkeypatch.setattr(os, "sched_getaffinity", refused)
    assert one_cpu("auto") is None
    assert one_cpu("0") is None
    assert kernel.cpus == {os.getpid(): {0, 1}}
    with pytest.raises(ValueError, match="is neither auto"):  # still named before the kernel
        one_cpu("x")


def test_s24_attack_a_refusal_half_way_leaves_no_thread_pinned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The second of three threads refused (EINVAL: a thread in a cpuset of its own): one_cpu
    returned None ("left where the kernel puts them") with the first thread pinned."""
    tasks = {101: {0, 1}, 102: {0, 1}, 103: {0, 1}}
    kernel = fake_kernel(
        monkeypatch, [101, 102, 103], tasks, {102: OSError(errno.EINVAL, "Invalid argument")}
    )
    monkeypatch.setenv(PART_ENV, "1")
    assert one_cpu("auto") is None
    assert kernel.cpus == tasks


# A child: thread A, not pinned yet, starts thread B while one_cpu pins (after it listed the
# threads); B inherits A's CPUs of before.
RACING_CHILD = textwrap.dedent(
    """
    import json, os, sys, threading
    from infra.cli import processes
    go, started, hold = threading.Event(), threading.Event(), threading.Event()
    late = []

    def starter():
        go.wait()
        thread = threading.Thread(target=hold.wait)
        thread.start()
        late.append(thread)
        started.set()
        hold.wait()

    first = threading.Thread(target=starter)
    first.start()
    listing = processes._threads

    def listed():
        tasks = listing()
        if not go.is_set():  # after the first listing, before any thread is pinned
            go.set()
            started.wait(10)
        return tasks

    processes._threads = listed
    cpu = processes.one_cpu(sys.argv[1])
    seen = {
        "cpu": cpu,
        "starter": sorted(os.sched_getaffinity(first.native_id)),
        "late": sorted(os.sched_getaffinity(late[0].native_id)),
    }
    hold.set()
    print(json.dumps(seen))
    """
)


@linux_only
@two_cpus
def test_s24_attack_a_thread_started_while_the_others_are_pinned_is_pinned_too() -> None:
    """A thread started, by a thread not yet pinned, between the listing of /proc/self/task
    and the pinning was in no listing: it stayed on every CPU."""
    cpu = ALLOWED[-1]
    done = subprocess.run(
        [sys.executable, "-c", RACING_CHILD, str(cpu)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen == {"cpu": cpu, "starter": [cpu], "late": [cpu]}


# --- claims that held (passing before the fixes too) ------------------------------------------


@pytest.mark.parametrize(("given", "kept"), [("00000", "0"), (" 0001 ", "1"), ("4095", "4095")])
def test_s24_attack_held_zeros_and_blanks_around_a_cpu(
    monkeypatch: pytest.MonkeyPatch, given: str, kept: str
) -> None:
    monkeypatch.setenv("PROCESS_CPU", given)
    assert Settings().process_cpu == kept


@linux_only
@two_cpus
@pytest.mark.parametrize("part", ["-1", "abc", "", " 1", "٣", "1" + "0" * 30])
def test_s24_attack_held_a_part_index_that_is_no_number_takes_a_cpu_by_pid(part: str) -> None:
    seen = pinned_child("auto", **{PART_ENV: part})
    assert seen["cpu"] in ALLOWED
    assert seen["before"] == seen["after"] == seen["main"] == [seen["cpu"]]


def test_s24_attack_held_a_thread_that_ended_meanwhile_is_skipped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Thread 102 listed but gone when pinned (ESRCH): the others are pinned, CPU returned."""
    tasks = {101: {0, 1}, 103: {0, 1}}
    kernel = fake_kernel(monkeypatch, [101, 102, 103], tasks)
    assert one_cpu("1") == 1
    assert kernel.cpus == {101: {1}, 103: {1}}


def test_s24_attack_held_without_proc_the_calling_thread_is_pinned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kernel = fake_kernel(monkeypatch, [], {0: {0, 1}})
    monkeypatch.setattr(processes, "_threads", lambda: [0])
    assert one_cpu("0") == 0
    assert kernel.cpus == {0: {0}}


@linux_only
def test_s24_attack_held_taskset_narrower_than_the_cpu_named_is_one_line_exit_2(
    tmp_path: Path,
) -> None:
    """`taskset -c 0 partnerfleet serve` with PROCESS_CPU=1: refused, one line, exit 2."""
    if len(ALLOWED) < 2:
        pytest.skip("needs two CPUs")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "DATABASE_URL"))}
    env |= {"SQLITE_PATH": str(tmp_path / "fleet.db"), "PROCESS_CPU": str(ALLOWED[1])}
    env |= {"PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run(
        [
            "taskset",
            "-c",
            str(ALLOWED[0]),
            *cli_command("serve", "--demo", "--port", str(free_port())),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"partnerfleet: PROCESS_CPU={ALLOWED[1]} is not a CPU this process may use ({ALLOWED[0]})."
    ]


@linux_only
@two_cpus
def test_s24_attack_held_a_part_killed_stops_the_layout_and_it_starts_again_pinned(
    tmp_path: Path,
) -> None:
    """serve --workers 2: a part SIGKILLed, the supervisor stops the other and exits non-zero
    (as before the pinning); started again on the same store, each part on a CPU of its own."""
    import signal

    for attempt in range(2):
        server, _ = serving(tmp_path, 2, "auto")
        try:
            assert wait_until(partial(_has_parts, server.pid, 2))
            parts = children(server.pid)
            assert wait_until(partial(_each_on_one_cpu, parts), timeout=60)
            cpus = sorted(cpus_of_every_thread(p).pop() for p in parts)
            assert cpus == [str(c) for c in ALLOWED[:2]], (attempt, cpus)
            os.kill(parts[attempt], signal.SIGKILL)
            _, stderr = server.communicate(timeout=60)
            assert server.returncode not in (0, None), stderr
            assert "Traceback" not in stderr, stderr
            assert not any(Path(f"/proc/{p}").exists() and _alive(p) for p in parts)
        finally:
            if server.poll() is None:
                server.terminate()
                server.communicate(timeout=30)


def _has_parts(pid: int, count: int) -> bool:
    return len(children(pid)) == count


def _each_on_one_cpu(parts: list[int]) -> bool:
    return all(len(cpus_of_every_thread(p)) == 1 for p in parts)


def _alive(pid: int) -> bool:
    """Whether `pid` runs (not a zombie awaiting its parent's wait)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status
