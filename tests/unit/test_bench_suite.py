"""The benchmark suite's own arithmetic (bench/metrics.py, bench/suite.py; issue 11)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from bench import suite
from bench.metrics import Metric, Scale, alternate, from_samples, interleave
from tests.bench_samples import a_machine


def test_alternate_swaps_who_goes_first_each_repetition() -> None:
    calls: list[str] = []

    def ours(index: int) -> float:
        calls.append(f"o{index}")
        return float(index)

    def baseline(index: int) -> float:
        calls.append(f"b{index}")
        return 10.0 + index

    mine, theirs = alternate(ours, baseline, 3)
    assert calls == ["o0", "b0", "b1", "o1", "o2", "b2"]
    assert (mine, theirs) == ([0.0, 1.0, 2.0], [10.0, 11.0, 12.0])


def test_interleave_reverses_the_rotation_of_three_each_repetition() -> None:
    calls: list[str] = []

    def run(name: str, offset: float) -> Callable[[int], float]:
        def sample(index: int) -> float:
            calls.append(f"{name}{index}")
            return offset + index

        return sample

    ours, limit, stock = interleave([run("o", 0.0), run("l", 10.0), run("b", 20.0)], 3)
    # The ceiling sits next to ours in every repetition, whichever end goes first.
    assert calls == ["o0", "l0", "b0", "b1", "l1", "o1", "o2", "l2", "b2"]
    assert (ours, limit, stock) == ([0.0, 1.0, 2.0], [10.0, 11.0, 12.0], [20.0, 21.0, 22.0])
    assert interleave([run("x", 0.0)], 0) == [[]]


def test_a_metric_reports_the_median_its_range_and_the_ratio_to_the_baseline() -> None:
    metric = from_samples(
        "commands.single", "commands/s", [30.0, 10.0, 20.0], baseline=("stock", [4.0, 5.0, 100.0])
    )
    body = metric.as_json()
    assert (body["value"], body["min"], body["max"]) == (20.0, 10.0, 30.0)
    assert body["baseline"] == {"name": "stock", "value": 5.0}
    assert body["ratio"] == 4.0
    assert from_samples("query.x_ms", "ms", [1.0]).as_json()["ratio"] is None


def test_goals_are_judged_on_the_table(tmp_path: Path) -> None:
    single = from_samples("commands.single", "commands/s", [300.0], baseline=("stock", [200.0]))
    concurrent = from_samples(
        "commands.concurrent", "commands/s", [3000.0], baseline=("stock", [500.0])
    )
    limit = from_samples("commands.insert_limit", "transactions/s", [5000.0])
    results = {
        "metrics": [m.as_json() for m in (single, concurrent, limit)],
        "machine": a_machine(),
        "commit": "abc",
        "date": "d",
        "scale": 1.0,
        "repetitions": 3,
        "failed": {"kafka.relay": "exit status 1"},
    }
    table = suite.markdown(results)
    assert "| `commands.single` |" in table
    assert "≥ 2x stock: **missed**" in table
    assert "≥ 5x stock and ≥ 50 % of insert_limit: met" in table
    assert "| `kafka.relay` | | failed: exit status 1" in table


def test_a_child_stamps_its_peak_memory_on_every_metric(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def produce(scale: Scale) -> list[Metric]:
        return [from_samples("x.a", "1/s", [scale.factor]), from_samples("x.b", "1/s", [2.0])]

    monkeypatch.setitem(suite.REGISTRY, "x", f"{__name__}:_produce")
    monkeypatch.setattr(__import__(__name__, fromlist=["_"]), "_produce", produce, raising=False)
    out = tmp_path / "m.json"
    suite.run_child("x", Scale(0.5), out)
    written = json.loads(out.read_text())
    assert [m["name"] for m in written] == ["x.a", "x.b"]
    assert written[0]["value"] == 0.5
    assert all(m["peak_rss_mb"] > 1 for m in written)


def test_intake_rate_leaves_out_what_an_early_worker_stored_before_the_last_join() -> None:
    """kafka.intake with 2 workers: devices the first worker stored while the second was
    still joining count neither in the devices nor in the time of `after_join`."""
    from bench.kafka_path import IntakeRate, stored_by

    counts = [(0.0, 0), (1.0, 300), (2.0, 600), (3.0, 1_000)]
    assert stored_by(counts, 1.0) == 300
    assert stored_by(counts, 1.5) == 600  # the next sample: never fewer than were stored
    assert stored_by(counts, 9.0) == 1_000
    assert stored_by([], 1.0) == 0
    rate = IntakeRate("2", {}, 1_000, 1_000, 0, 3.0, 1.0, None, 0.0, stored_before_join=300)  # type: ignore[arg-type]
    assert rate.after_join == 350.0  # (1,000 - 300) / (3.0 - 1.0)
    assert rate.per_second == 1_000 / 3.0


def test_a_quick_run_writes_its_own_file_with_each_groups_seconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make bench-quick` never replaces the full run's bench/results.json, and both files
    say how long each group and the whole run took (the quick run's < 3 min)."""
    full, quick = tmp_path / "results.json", tmp_path / "results-quick.json"
    full.write_text('{"keep": "the full run"}')
    monkeypatch.setattr(suite, "RESULTS_JSON", full)
    monkeypatch.setattr(suite, "QUICK_JSON", quick)
    monkeypatch.setattr(suite, "ROOT", tmp_path)
    monkeypatch.setattr(suite, "machine", lambda: {"cpus": 2})
    monkeypatch.setattr(suite, "markdown", lambda results: "table")
    monkeypatch.setitem(suite.REGISTRY, "x", "unused:unused")

    def run_group(group: str, scale: Scale) -> tuple[list[dict[str, object]], None, float]:
        assert scale.factor == 0.1
        return [from_samples("x.a", "1/s", [1.0]).as_json()], None, 12.34

    monkeypatch.setattr(suite, "run_group", run_group)
    suite.main(["--quick", "--only", "x"])
    assert json.loads(full.read_text()) == {"keep": "the full run"}
    written = json.loads(quick.read_text())
    assert written["scale"] == 0.1
    assert written["group_seconds"] == {"x": 12.3}
    assert written["run_seconds"] >= 0
    assert [m["name"] for m in written["metrics"]] == ["x.a"]
