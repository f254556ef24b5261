"""One benchmark figure, measured beside its baseline: the record every suite metric returns.

A metric function (registered in bench/suite.py) takes a `Scale` and returns one `Metric`
or a list of them. It runs ours and the baseline in the same process, alternately
(`alternate`), and reports the median of the repetitions with their min and max. The
suite runs each metric in a process of its own and sets `peak_rss_mb` from that process.

Shapes:
- `value`, `min`, `max`: in `unit` (events/s, commands/s, ms, ...), median/min/max over the
  repetitions of ours; `baseline.value` is the baseline's median.
- `ratio`: `value / baseline.value` (None without a baseline); with `higher_is_better`
  False (latencies) a ratio below 1 means ours is ahead.
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

SEED = 20261130  # every generated data set starts from this seed
REPETITIONS = 3


@dataclass(frozen=True)
class Scale:
    """How big a run is: `factor` 1.0 for `make bench`, 0.1 for `make bench-quick`."""

    factor: float = 1.0
    repetitions: int = REPETITIONS

    def of(self, full: int, floor: int = 1) -> int:
        """`full` scaled, never below `floor`."""
        return max(floor, round(full * self.factor))

    @property
    def quick(self) -> bool:
        return self.factor < 1.0


def rng(salt: str = "") -> random.Random:
    """A generator seeded from SEED (and a salt per data set), the same on every run."""
    return random.Random(f"{SEED}:{salt}")


@dataclass(frozen=True)
class Baseline:
    """What ours is compared with, by name, and its median in the metric's unit."""

    name: str
    value: float


@dataclass
class Metric:
    """One figure of the suite (the shape bench/results.json holds)."""

    name: str
    unit: str
    value: float
    min: float
    max: float
    baseline: Baseline | None
    higher_is_better: bool
    peak_rss_mb: float = 0.0
    samples: list[float] = field(default_factory=list)
    baseline_samples: list[float] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)  # sizes, variants, what was run

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or not self.baseline.value:
            return None
        return self.value / self.baseline.value

    def as_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["ratio"] = None if self.ratio is None else round(self.ratio, 3)
        return body


def from_samples(
    name: str,
    unit: str,
    samples: list[float],
    *,
    baseline: tuple[str, list[float]] | None = None,
    higher_is_better: bool = True,
    detail: dict[str, Any] | None = None,
) -> Metric:
    """A Metric from the repetitions of ours (and of the baseline, by name)."""
    return Metric(
        name=name,
        unit=unit,
        value=statistics.median(samples),
        min=min(samples),
        max=max(samples),
        baseline=None
        if baseline is None
        else Baseline(baseline[0], statistics.median(baseline[1])),
        higher_is_better=higher_is_better,
        samples=list(samples),
        baseline_samples=[] if baseline is None else list(baseline[1]),
        detail=dict(detail or {}),
    )


def alternate(
    ours: Callable[[int], float],
    baseline: Callable[[int], float],
    repetitions: int = REPETITIONS,
) -> tuple[list[float], list[float]]:
    """Run ours and the baseline `repetitions` times each, alternating who goes first
    (O B, B O, O B, ...), so drift on the machine touches both alike.

    Each callable gets the repetition index (0, 1, ...) to pick fresh data with, and
    returns one sample in the metric's unit. Returns (ours, baseline) samples.
    """
    mine, theirs = interleave([ours, baseline], repetitions)
    return mine, theirs


def interleave(
    runs: Sequence[Callable[[int], float]], repetitions: int = REPETITIONS
) -> list[list[float]]:
    """Run every callable of `runs` once per repetition, in their order on even repetitions
    and reversed on odd ones (A B C, C B A, A B C, ...): `alternate` for more than two, so a
    figure and the ceiling it is a share of see the same drift on the machine.

    Each callable gets the repetition index; returns each one's samples, in `runs`' order.
    """
    samples: list[list[float]] = [[] for _ in runs]
    for index in range(repetitions):
        order = list(zip(runs, samples, strict=True))
        for run, into in order if index % 2 == 0 else reversed(order):
            into.append(run(index))
    return samples


def peak_rss_mb() -> float:
    """Peak resident memory of this process and of its waited-for children, in MB (10^6 B)."""
    kib = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    per_unit = 1 if sys.platform == "darwin" else 1024  # macOS reports bytes, Linux KiB
    return round(kib * per_unit / 1e6, 1)


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (repetitions, sizes)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a number above 0 (a scale factor)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
    return value
