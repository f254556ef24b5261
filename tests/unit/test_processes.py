"""Supervised child processes: when one part ends, the whole command ends."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable

from infra.cli.processes import cli_command, run_children


def test_when_one_part_ends_the_others_are_stopped_and_its_code_returned() -> None:
    """A part that exits 3 ends the command with 3; the part still running is stopped."""
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    failing = [sys.executable, "-c", "import time, sys; time.sleep(0.5); sys.exit(3)"]
    started = time.monotonic()
    assert run_children([sleeper, failing], "test") == 3
    assert time.monotonic() - started < 20


def test_a_part_that_ends_cleanly_still_ends_the_command_as_a_failure() -> None:
    """A relay shard or consumer never stops on its own; if one does, that is an error."""
    assert run_children([[sys.executable, "-c", "pass"]], "test") == 1


def test_children_run_the_partnerfleet_command_of_this_environment() -> None:
    """cli_command reaches the same CLI, whatever the PATH."""
    done = subprocess.run(
        cli_command("relay", "--help"), capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0
    assert "--shards" in done.stdout


def alive(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie (`ps` works on Linux and macOS)."""
    state = subprocess.run(
        ["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True, check=False
    ).stdout.strip()
    return bool(state) and not state.startswith("Z")


def children(pid: int) -> list[int]:
    """The pids of `pid`'s children (`pgrep -P`)."""
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return [int(line) for line in found.stdout.split()]


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Poll `condition` until it holds or `timeout` seconds pass; returns whether it held."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


WATCHING_CHILD = (
    "import sys, time\n"
    "from infra.cli.processes import end_with\n"
    "end_with(int(sys.argv[1]), kernel=False)\n"
    "time.sleep(120)\n"
)


def test_a_part_whose_parent_is_killed_ends_without_the_kernels_help() -> None:
    """Kind 9: the portable fallback (no PR_SET_PDEATHSIG): the part sees its parent gone."""
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, subprocess, sys, time\n"
            f"subprocess.Popen([sys.executable, '-c', {WATCHING_CHILD!r}, str(os.getpid())])\n"
            "time.sleep(120)\n",
        ]
    )
    assert wait_until(lambda: len(children(parent.pid)) == 1)
    [part] = children(parent.pid)

    parent.kill()
    parent.wait()

    assert wait_until(lambda: not alive(part), timeout=10)  # before the hard exit at 15 s
