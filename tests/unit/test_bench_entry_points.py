"""Bad input to the benchmarks' entry points stops them with one specific line, not a
traceback, before any data is generated (issue 11, session 22)."""

from __future__ import annotations

import functools
import json
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bench import common, suite
from bench.metrics import Scale, from_samples
from tests.bench_samples import a_machine


def closed_port() -> int:
    """A loopback port nothing listens on (bound once, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_an_unreachable_postgres_stops_the_suite_with_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    conninfo = f"host=127.0.0.1 port={closed_port()} user=postgres dbname=test"
    monkeypatch.setattr(common, "PG_CONNINFO", conninfo)
    monkeypatch.setattr(suite, "run_group", lambda *_: pytest.fail("a group ran"))
    with pytest.raises(SystemExit) as stopped:
        suite.main(["--quick", "--no-doc"])
    message = stopped.value.code
    assert isinstance(message, str)
    assert message.startswith(f"bench: cannot connect to PostgreSQL ({conninfo}): ")
    assert "\n" not in message
    with pytest.raises(SystemExit, match="cannot connect to PostgreSQL"), common.fresh_schema():
        pytest.fail("a schema was made")


@pytest.mark.parametrize(
    ("module", "entry", "argv", "says"),
    [
        ("bench.rebuild", "metrics", ["--repetitions", "0"], "must be at least 1, not 0"),
        ("bench.replay", "metrics", ["--repetitions", "-2"], "must be at least 1, not -2"),
        ("bench.ingest", "measure", ["--repetitions", "0"], "must be at least 1, not 0"),
        ("bench.ingest", "measure", ["--scale", "0"], "must be above 0, not 0"),
        ("bench.ingest", "measure", ["--scale", "x"], "'x' is not a number"),
    ],
)
def test_a_module_run_alone_refuses_sizes_it_cannot_measure(
    module: str,
    entry: str,
    argv: list[str],
    says: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Before: `--repetitions 0` generated the whole history, then ended in a traceback
    (statistics of no samples, or a missing export file)."""
    loaded = __import__(module, fromlist=["main"])
    monkeypatch.setattr(loaded, entry, lambda *_a, **_k: pytest.fail("the benchmark ran"))
    with pytest.raises(SystemExit) as stopped:
        loaded.main(argv)
    assert stopped.value.code == 2
    assert says in capsys.readouterr().err


def test_a_kafka_bootstrap_that_points_nowhere_stops_with_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bench import kafka_path

    address = f"127.0.0.1:{closed_port()}"
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", address)
    waited = functools.partialmethod(kafka_path.LocalBroker.wait_listening, 0.3)
    monkeypatch.setattr(kafka_path.LocalBroker, "wait_listening", waited)
    with pytest.raises(SystemExit) as stopped, kafka_path.running_broker():
        pytest.fail("a broker was found")
    message = stopped.value.code
    assert isinstance(message, str)
    assert message.startswith(
        f"bench: no Kafka broker accepts connections at {address} "
        "(external (KAFKA_BOOTSTRAP_SERVERS))"
    )


def test_a_group_that_stops_with_a_reason_shows_it_in_the_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def gives_up(scale: Scale) -> None:
        raise SystemExit("bench: no Kafka broker accepts connections at 127.0.0.1:1")

    monkeypatch.setitem(suite.REGISTRY, "x", f"{__name__}:_gives_up")
    monkeypatch.setattr(__import__(__name__, fromlist=["_"]), "_gives_up", gives_up, raising=False)

    def child(command: list[str], **_: Any) -> subprocess.CompletedProcess[bytes]:
        out = Path(command[command.index("--out") + 1])
        with pytest.raises(SystemExit):
            suite.run_child("x", Scale(0.1), out)
        return subprocess.CompletedProcess(command, 1)

    monkeypatch.setattr(subprocess, "run", child)
    metrics, error, _ = suite.run_group("x", Scale(0.1))
    assert metrics == []
    assert error == "exit status 1: bench: no Kafka broker accepts connections at 127.0.0.1:1"


def test_a_subset_that_fails_drops_the_groups_earlier_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--only kafka.relay` failing must not leave the previous run's kafka.relay figures
    in the results beside "failed" (they would read as this run's)."""
    quick = tmp_path / "results-quick.json"
    old = [
        from_samples(name, "1/s", [1.0]).as_json()
        for name in ("kafka.relay", "kafka.relay.sharded", "kafka.intake")
    ]
    quick.write_text(json.dumps({"scale": 0.1, "metrics": old, "failed": {}}))
    monkeypatch.setattr(suite, "QUICK_JSON", quick)
    monkeypatch.setattr(suite, "ROOT", tmp_path)
    monkeypatch.setattr(suite, "machine", lambda: {"cpus": 2})
    monkeypatch.setattr(suite, "markdown", lambda results: "table")
    monkeypatch.setattr(suite, "run_group", lambda *_: ([], "exit status 1: why", 1.0))
    with pytest.raises(SystemExit, match=r"failed: kafka\.relay"):
        suite.main(["--quick", "--only", "kafka.relay"])
    written = json.loads(quick.read_text())
    assert [m["name"] for m in written["metrics"]] == ["kafka.intake"]
    assert written["failed"] == {"kafka.relay": "exit status 1: why"}


def test_a_quick_table_says_its_goals_are_the_full_sizes() -> None:
    """`make bench-quick` prints "≥ 2x stock: **missed**" at a tenth of the data; the
    operator is told that the goals are judged for the full run."""
    machine = a_machine()
    results: dict[str, Any] = {
        "metrics": [],
        "machine": machine,
        "commit": "abc",
        "date": "d",
        "scale": 0.1,
        "repetitions": 3,
    }
    note = "The goals are set for the full size (`make bench`, scale 1.0)"
    assert note in suite.markdown(results)
    assert note not in suite.markdown(results | {"scale": 1.0})


def test_a_subset_that_passes_exits_0_and_keeps_the_other_groups_failures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    quick = tmp_path / "results-quick.json"
    earlier = {"scale": 0.1, "metrics": [], "failed": {"kafka.relay": "exit status 1: why"}}
    quick.write_text(json.dumps(earlier))
    monkeypatch.setattr(suite, "QUICK_JSON", quick)
    monkeypatch.setattr(suite, "ROOT", tmp_path)
    monkeypatch.setattr(suite, "machine", lambda: {"cpus": 2})
    monkeypatch.setattr(suite, "markdown", lambda results: "table")
    produced = [from_samples("commands.single", "commands/s", [1.0]).as_json()]
    monkeypatch.setattr(suite, "run_group", lambda *_: (produced, None, 1.0))
    suite.main(["--quick", "--only", "commands"])  # no SystemExit: commands passed
    written = json.loads(quick.read_text())
    assert [m["name"] for m in written["metrics"]] == ["commands.single"]
    assert written["failed"] == {"kafka.relay": "exit status 1: why"}
