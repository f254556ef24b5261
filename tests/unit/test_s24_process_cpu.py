"""PROCESS_CPU: a serving process keeps its threads on one CPU (infra/cli/processes.py
`one_cpu`; issue 11, session 24). Each pinning runs in a child process: pinning the test
process would slow every test after it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest
from pydantic import ValidationError

from infra.cli.processes import PART_ENV, cli_command, one_cpu, run_children
from infra.settings import Settings
from tests.e2e.test_serve import run_cli, unconfigured
from tests.unit.test_processes import alive, children, wait_until

linux_only = pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity"), reason="CPU affinity is Linux's (one_cpu: None)"
)
ALLOWED = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
two_cpus = pytest.mark.skipif(len(ALLOWED) < 2, reason="needs a process allowed two CPUs")


@pytest.mark.parametrize(
    ("given", "kept"), [("auto", "auto"), (" OFF ", "off"), ("1", "1"), ("007", "7")]
)
def test_process_cpu_is_auto_off_or_a_cpus_number(
    monkeypatch: pytest.MonkeyPatch, given: str, kept: str
) -> None:
    monkeypatch.setenv("PROCESS_CPU", given)
    assert Settings().process_cpu == kept


def test_process_cpu_defaults_to_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROCESS_CPU", raising=False)
    assert Settings().process_cpu == "auto"


@pytest.mark.parametrize("given", ["x", "-1", "1.5", "", "4096", "٣", "0x1", "auto,1"])
def test_any_other_process_cpu_is_named_with_what_it_may_be(
    monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    monkeypatch.setenv("PROCESS_CPU", given)
    with pytest.raises(ValidationError) as refused:
        Settings()
    message = str(refused.value)
    assert f"PROCESS_CPU={given!r} is neither auto, off nor a CPU's number" in message


def test_off_leaves_the_threads_where_they_are() -> None:
    before = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    assert one_cpu("off") is None
    if before is not None:
        assert os.sched_getaffinity(0) == before


@pytest.mark.parametrize("given", ["x", "-1", "٣", ""])
def test_a_choice_that_is_no_cpu_is_refused_before_anything_is_pinned(given: str) -> None:
    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("CPU affinity is Linux's")
    before = os.sched_getaffinity(0)
    with pytest.raises(ValueError, match="is neither auto, off nor a CPU's number"):
        one_cpu(given)
    assert os.sched_getaffinity(0) == before


# A child that starts a thread, pins (one_cpu), starts another, and prints each thread's CPUs.
PINNING_CHILD = textwrap.dedent(
    """
    import json, os, sys, threading
    from infra.cli.processes import one_cpu
    narrow = os.environ.get("NARROW")
    if narrow:
        os.sched_setaffinity(0, {int(narrow)})
    hold = threading.Event()
    before = threading.Thread(target=hold.wait)
    before.start()
    try:
        cpu = one_cpu(sys.argv[1])
    except ValueError as error:
        print(json.dumps({"error": str(error)}))
        hold.set()
        sys.exit(0)
    after = threading.Thread(target=hold.wait)
    after.start()
    seen = {
        name: sorted(os.sched_getaffinity(thread.native_id))
        for name, thread in (("before", before), ("after", after))
    }
    seen["main"] = sorted(os.sched_getaffinity(0))
    hold.set()
    print(json.dumps({"cpu": cpu, **seen}))
    """
)


def pinned_child(choice: str, **env: str) -> dict[str, object]:
    """What PINNING_CHILD printed for `choice`, run with `env` added."""
    done = subprocess.run(
        [sys.executable, "-c", PINNING_CHILD, choice],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, **env},
    )
    return json.loads(done.stdout.splitlines()[-1])  # type: ignore[no-any-return]


@linux_only
@two_cpus
def test_auto_puts_every_thread_on_one_cpu_those_started_before_and_after() -> None:
    seen = pinned_child("auto", **{PART_ENV: "1"})
    cpu = ALLOWED[1 % len(ALLOWED)]
    assert seen == {"cpu": cpu, "before": [cpu], "after": [cpu], "main": [cpu]}


@linux_only
@two_cpus
def test_auto_gives_the_parts_of_a_supervisor_cpus_by_their_index() -> None:
    cpus = [pinned_child("auto", **{PART_ENV: str(i)})["cpu"] for i in range(len(ALLOWED))]
    assert cpus == ALLOWED  # each part its own CPU, while there are enough


@linux_only
@two_cpus
@pytest.mark.parametrize("part", [None, "", "x", "-1", "\u00b2", "\u0661"])
def test_a_process_alone_takes_a_cpu_by_its_pid(part: str | None) -> None:
    """Without a part's index, or with one that is no plain number, the pid decides."""
    env = {k: v for k, v in os.environ.items() if k != PART_ENV}
    if part is not None:
        env[PART_ENV] = part
    done = subprocess.run(
        [sys.executable, "-c", PINNING_CHILD + "\nprint(os.getpid())", "auto"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=env,
    )
    *_, printed, pid = done.stdout.splitlines()  # (after the log's lines, if any)
    assert json.loads(printed)["cpu"] == ALLOWED[int(pid) % len(ALLOWED)]


@linux_only
def test_auto_leaves_a_process_allowed_one_cpu_alone() -> None:
    seen = pinned_child("auto", NARROW=str(ALLOWED[-1]))
    only = [ALLOWED[-1]]
    assert seen == {"cpu": None, "before": only, "after": only, "main": only}


@linux_only
def test_a_number_pins_to_that_cpu() -> None:
    cpu = ALLOWED[-1]
    seen = pinned_child(str(cpu))
    assert seen == {"cpu": cpu, "before": [cpu], "after": [cpu], "main": [cpu]}


@linux_only
def test_a_cpu_the_process_may_not_use_is_refused_naming_those_it_may() -> None:
    seen = pinned_child("4095")
    listed = ", ".join(map(str, ALLOWED))
    assert seen == {"error": f"PROCESS_CPU=4095 is not a CPU this process may use ({listed})."}


def test_the_supervisor_numbers_its_parts(tmp_path: Path) -> None:
    """run_children gives each part its index (PART_ENV) and ends with the first to end."""
    script = (
        "import os, sys, time; "
        f"open(sys.argv[1], 'w').write(os.environ[{PART_ENV!r}]); time.sleep(60)"
    )
    ender = [sys.executable, "-c", "import time, sys; time.sleep(3); sys.exit(4)"]
    parts = [[sys.executable, "-c", script, str(tmp_path / f"part{i}")] for i in range(3)]
    assert run_children([*parts, ender], "test") == 4
    assert [(tmp_path / f"part{i}").read_text() for i in range(3)] == ["0", "1", "2"]


def cpus_of_every_thread(pid: int) -> set[str]:
    """The Cpus_allowed_list of each thread of `pid` (Linux's /proc)."""
    found: set[str] = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        status = Path(f"/proc/{pid}/task/{task}/status").read_text()
        found |= {
            line.split(":", 1)[1].strip()
            for line in status.splitlines()
            if line.startswith("Cpus_allowed_list:")
        }
    return found


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serving(tmp_path: Path, workers: int, process_cpu: str) -> tuple[subprocess.Popen[str], str]:
    """`partnerfleet serve --demo` on SQLite under tmp_path, once /healthz answers."""
    port = free_port()
    env = unconfigured() | {"SQLITE_PATH": str(tmp_path / "fleet.db"), "PROCESS_CPU": process_cpu}
    env |= {"LOG_LEVEL": "warning"}
    command = cli_command("serve", "--demo", "--port", str(port), "--workers", str(workers))
    server = subprocess.Popen(
        [*command, "--no-views", "--no-policies"],
        start_new_session=True,  # a process group of its own, as a terminal's job
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return server.poll() is not None  # ended: stop waiting

    assert wait_until(healthy, timeout=120), "serve did not answer /healthz"
    assert server.poll() is None, server.communicate()

    # Every serving process listens (a part of --workers still starting would take a
    # signal before uvicorn's handlers are in place).
    def all_listen() -> bool:
        pids = children(server.pid) if workers > 1 else [server.pid]
        return len(pids) == workers and all(listens(pid, port) for pid in pids)

    assert wait_until(all_listen, timeout=120), "not every part listens"
    return server, base


def listens(pid: int, port: int) -> bool:
    """Whether process `pid` holds a TCP socket listening on `port` (Linux's /proc)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                    inodes.add(fields[9])
    try:
        links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    except OSError:
        return False
    return any(link == f"socket:[{inode}]" for link in links for inode in inodes)


@linux_only
@two_cpus
def test_serve_keeps_every_thread_on_the_cpu_named(tmp_path: Path) -> None:
    cpu = ALLOWED[-1]
    server, _ = serving(tmp_path, 1, str(cpu))
    try:
        assert cpus_of_every_thread(server.pid) == {str(cpu)}
    finally:
        server.terminate()
        server.communicate(timeout=30)


@linux_only
@two_cpus
def test_serve_workers_each_part_on_a_cpu_of_its_own_the_supervisor_on_all(
    tmp_path: Path,
) -> None:
    server, _ = serving(tmp_path, 2, "auto")
    try:
        assert wait_until(lambda: len(children(server.pid)) == 2)
        parts = children(server.pid)
        assert wait_until(lambda: all(len(os.listdir(f"/proc/{p}/task")) > 1 for p in parts))
        time.sleep(1)  # (each part pins itself as it starts; healthz answered by one)
        assert sorted(cpus_of_every_thread(p).pop() for p in parts) == [str(c) for c in ALLOWED[:2]]
        for part in parts:
            assert len(cpus_of_every_thread(part)) == 1
        supervisor = cpus_of_every_thread(server.pid)
        assert supervisor == {
            Path(f"/proc/{os.getpid()}/status")
            .read_text()
            .split("Cpus_allowed_list:")[1]
            .split()[0]
        }
    finally:
        server.terminate()
        server.communicate(timeout=30)


@linux_only
@pytest.mark.parametrize("workers", [[], ["--workers", "2"]])
def test_serve_refuses_a_cpu_it_may_not_use_in_one_line_before_anything_starts(
    tmp_path: Path, workers: list[str]
) -> None:
    """Also with --workers: the supervisor says it once, before the demo is seeded or any
    part started (the walkthrough's finding: each part said it, after the seeding)."""
    env = unconfigured() | {"SQLITE_PATH": str(tmp_path / "fleet.db"), "PROCESS_CPU": "4095"}
    done = run_cli(tmp_path, env, "serve", "--demo", "--port", str(free_port()), *workers)
    listed = ", ".join(map(str, ALLOWED))
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"partnerfleet: PROCESS_CPU=4095 is not a CPU this process may use ({listed})."
    ]
    assert "process_ended" not in done.stdout
    assert list(tmp_path.iterdir()) == []  # no store, no demo key


@linux_only
@two_cpus
def test_a_part_says_which_cpu_it_took_and_which_part_it_is() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PINNING_CHILD, "auto"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, PART_ENV: "1", "LOG_FORMAT": "json"},
    )
    cpu = ALLOWED[1 % len(ALLOWED)]
    logged = done.stdout + done.stderr
    assert "process_cpu" in logged
    line = next(line for line in logged.splitlines() if "process_cpu" in line)
    assert f"cpu={cpu}" in line or f'"cpu": {cpu}' in line, line
    assert "part=1" in line or '"part": 1' in line, line


@linux_only
@two_cpus
def test_ctrl_c_at_a_terminal_stops_serve_workers_without_a_traceback(tmp_path: Path) -> None:
    """Ctrl-C reaches the supervisor and its parts at once (one process group): the parts
    stop cleanly, asked once (the walkthrough: each part was asked again by the supervisor,
    and uvicorn took the second SIGINT as "force exit", a CancelledError traceback each)."""
    server, _ = serving(tmp_path, 2, "auto")
    try:
        assert wait_until(lambda: len(children(server.pid)) == 2)
        time.sleep(1)
        os.killpg(server.pid, signal.SIGINT)
        out, err = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    assert server.returncode == 0, err
    assert "Traceback" not in out + err, err
    assert "CancelledError" not in out + err, err


def test_a_supervisor_started_in_the_background_stops_on_sigint(tmp_path: Path) -> None:
    """A shell starts a background job with SIGINT ignored; `kill -INT` must still stop the
    supervisor and its parts (the walkthrough: it did nothing)."""
    supervisor = (
        "import signal, sys\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)  # as `&` leaves it\n"
        "from infra.cli.processes import run_children\n"
        "sleeper = [sys.executable, '-c', 'import time; time.sleep(120)']\n"
        "sys.exit(run_children([sleeper, sleeper], 'test'))\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", supervisor],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    try:
        assert wait_until(lambda: len(children(process.pid)) == 2)
        parts = children(process.pid)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        assert wait_until(lambda: not any(map(alive, parts)))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
