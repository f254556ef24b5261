"""Supervised child processes: when one part ends, the whole command ends."""

from __future__ import annotations

import subprocess
import sys
import time

from infra.processes import cli_command, run_children


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
