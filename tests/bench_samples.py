"""Sample inputs of the benchmark suite's writers (bench/suite.py), shared by its tests."""

from __future__ import annotations

from typing import Any


def a_machine() -> dict[str, Any]:
    """A `machine` entry of bench/results.json, as `bench.suite` records it (made-up values)."""
    return {
        "cpus": 2,
        "cpu_model": "x",
        "memory_gib": 1,
        "system": "s",
        "python": "3",
        "postgres": {},
        "load_average_at_start": [0.0],
    }
