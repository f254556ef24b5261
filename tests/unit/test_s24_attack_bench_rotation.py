"""Session 24's attack on bench.commands' rotation (ours, limit, stock, spread) and `_spread`:
`metrics` run on fakes (no database, nothing pinned), each side's samples told apart by
their values; `_spread` on a fake kernel."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from bench import commands
from bench.metrics import Scale


@dataclass
class FakeSides:
    """`sides()`'s object: ours 100 + i, stock 10 + i, spread 400 + i commands/s (i: the
    run's number within its side), each ours or spread run committing 1 group of 2 units."""

    committer: Any = field(default_factory=lambda: SimpleNamespace(groups=0, units=0))
    calls: list[str] = field(default_factory=list)
    cpu_ms: dict[str, list[float]] = field(default_factory=dict)

    @property
    def fleet(self) -> Any:
        return SimpleNamespace(recorder=SimpleNamespace(committer=self.committer))

    def ours(self, batch: commands.Batch, side: str = "ours") -> float:
        self.calls.append(f"{side}:{batch.name}")
        self.committer.groups += 1
        self.committer.units += 2
        self.cpu_ms.setdefault(side, []).append(1.0 if side == "ours" else 2.0)
        base = 400.0 if side == "spread" else 100.0
        return base + sum(c.startswith(f"{side}:") for c in self.calls)

    def theirs(self, batch: commands.Batch) -> float:
        self.calls.append(f"stock:{batch.name}")
        self.cpu_ms.setdefault("stock", []).append(3.0)
        return 10.0 + sum(c.startswith("stock:") for c in self.calls)

    def cpu_medians(self) -> dict[str, float]:
        medians = {f"client_cpu_ms_per_command_{k}": v[0] for k, v in self.cpu_ms.items()}
        self.cpu_ms = {}
        return medians


def run_metrics(monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, Any], FakeSides]:
    fake = FakeSides()
    limits = iter([1000.0, 2000.0, 3000.0])

    @contextlib.contextmanager
    def sides(_batches: Any) -> Iterator[FakeSides]:
        yield fake

    @contextlib.contextmanager
    def nothing(*_: Any) -> Iterator[str]:
        yield "schema"

    def limit(*_: Any) -> float:
        fake.calls.append("limit")
        return next(limits)

    monkeypatch.setattr(commands, "sides", sides)
    monkeypatch.setattr(commands, "fresh_schema", nothing)
    monkeypatch.setattr(commands, "commit_free", nothing)
    monkeypatch.setattr(commands, "insert_limit", limit)
    monkeypatch.setattr(commands, "one_cpu", lambda choice: None)  # nothing pinned here
    monkeypatch.setattr(commands, "say", lambda *_: None)
    found = commands.metrics(Scale(0.01, repetitions=3))
    return {m.name: m for m in found}, fake


def test_s24_attack_held_each_side_gets_its_own_samples_in_the_rotation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    by_name, fake = run_metrics(monkeypatch)
    concurrent = by_name["commands.concurrent"]
    limit = by_name["commands.insert_limit"]
    assert all(100 < s < 200 for s in concurrent.samples), concurrent.samples
    assert all(10 < s < 20 for s in concurrent.baseline_samples)
    assert limit.samples == [1000.0, 2000.0, 3000.0]
    assert concurrent.detail["spread_commands_per_s"] > 400
    # The limit next to ours each repetition (O L B U, U B L O, O L B U), each side on
    # batches of its own (c: ours, u: spread), then the commit-free runs (f).
    assert fake.calls == [
        *["ours:s0", "stock:s0", "stock:s1", "ours:s1", "ours:s2", "stock:s2"],
        *["ours:c0", "limit", "stock:c0", "spread:u0"],
        *["spread:u1", "stock:c1", "limit", "ours:c1"],
        *["ours:c2", "limit", "stock:c2", "spread:u2"],
        *["ours:f0", "ours:f1", "ours:f2"],
    ]
    pairs = concurrent.detail["share_by_repetition"]
    assert pairs == [
        round(rate / ceiling, 3)
        for rate, ceiling in zip(concurrent.samples, limit.samples, strict=True)
    ]


def test_s24_attack_the_concurrent_group_commits_are_ours_not_the_spread_runs_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """commands.concurrent's `group_commits` (groups, units, units per group) counted every
    commit of the fleet during the rotation: ours (one CPU) and the spread runs (threads
    unpinned, a figure of their own) together, twice ours' units. Three repetitions of ours
    commit 3 groups of 2 units here."""
    by_name, _ = run_metrics(monkeypatch)
    assert by_name["commands.concurrent"].detail["group_commits"] == {
        "groups": 3,
        "units": 6,
        "units_per_group": 2.0,
    }


def test_s24_attack_held_spread_puts_the_pinned_cpus_back_when_the_run_raises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mask = {0: {1}}

    def get(task: int) -> set[int]:
        return set(mask[task])

    def put(task: int, cpus: set[int]) -> None:
        mask[task] = set(cpus)

    monkeypatch.setattr(os, "sched_getaffinity", get, raising=False)
    monkeypatch.setattr(os, "sched_setaffinity", put, raising=False)
    monkeypatch.setattr(commands, "ALLOWED_CPUS", {0, 1})
    seen: list[set[int]] = []

    def failing() -> float:
        seen.append(set(mask[0]))
        raise RuntimeError("the run failed")

    with pytest.raises(RuntimeError):
        commands._spread(failing)
    assert seen == [{0, 1}]  # spread while it ran
    assert mask == {0: {1}}  # pinned again after
