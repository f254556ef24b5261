"""The benchmark suite: every metric of issue 11, each in a process of its own.

`make bench` (`python -m bench.suite`) runs every registered metric at full size;
`make bench-quick` (`--quick`) at a tenth of it. Each metric runs in a fresh Python process
(so its peak memory is its own) on PostgreSQL at 127.0.0.1:5432 in a schema of its own, the
Kafka metrics on a local Tansu broker (or KAFKA_BOOTSTRAP_SERVERS). Results:
- bench/results.json: `{"metrics": [...], "machine": {...}, "commit": ..., "scale": ...,
  "group_seconds": {group: s}, "run_seconds": s}` (each metric as bench/metrics.py's
  `Metric.as_json`); a run at any other scale (`--quick`) writes bench/results-quick.json,
  so it never replaces the full run's figures;
- a full run also rewrites the table between the suite markers in docs/benchmarks.md.

`--only PREFIX` runs the metrics whose name starts with a prefix (repeatable); a run of a
subset merges into the existing results.json instead of replacing it.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.metrics import Metric, Scale, peak_rss_mb, positive_float, positive_int

ROOT = Path(__file__).resolve().parent.parent
RESULTS_JSON = ROOT / "bench" / "results.json"
QUICK_JSON = ROOT / "bench" / "results-quick.json"  # any other scale: never over the full run's
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- suite:begin -->", "<!-- suite:end -->"

# Metric group → "module:function"; the function takes a Scale and returns Metric(s) whose
# names start with the group's name. Order: cheap first, so a quick run fails fast.
REGISTRY: dict[str, str] = {}

# name → (goal as text, check over the metric and all metrics by name)
Check = Callable[[Metric, dict[str, Metric]], bool]
GOALS: dict[str, tuple[str, Check]] = {
    "commands.single": ("≥ 2x stock", lambda m, _: (m.ratio or 0) >= 2),
    "commands.concurrent": (
        "≥ 5x stock and ≥ 50 % of insert_limit",
        lambda m, a: (
            (m.ratio or 0) >= 5
            and "commands.insert_limit" in a
            and m.value >= 0.5 * a["commands.insert_limit"].value
        ),
    ),
    "ingest.e2open": ("≥ 50 % of COPY", lambda m, _: (m.ratio or 0) >= 0.5),
    "projection.rebuild": (
        "≥ 50,000/s and ≥ 20x stock",
        lambda m, _: m.value >= 50_000 and (m.ratio or 0) >= 20,
    ),
    "replay.consent": ("≥ 100,000/s", lambda m, _: m.value >= 100_000),
    "kafka.relay": ("≥ 25,000/s", lambda m, _: m.value >= 25_000),
    "kafka.intake": ("≥ 20,000/s (2 workers)", lambda m, _: m.value >= 20_000),
    "query.all_customers_p95_ms": ("< 50 ms", lambda m, _: m.value < 50),
    "http.all_customers_p99_ms": ("< 50 ms", lambda m, _: m.value < 50),
}


def register(group: str, target: str) -> None:
    """Add a metric group ("module:function") to the suite."""
    REGISTRY[group] = target


for _group, _target in (
    ("commands", "bench.commands:metrics"),
    ("ingest", "bench.ingest:metrics"),
    ("projection", "bench.rebuild:metrics"),
    ("replay", "bench.replay:metrics"),
    ("query", "bench.read_path:metrics"),
    ("http", "bench.http_path:metrics"),
    ("kafka.relay", "bench.kafka_path:relay_metrics"),
    ("kafka.intake", "bench.kafka_path:intake_metrics"),
):
    register(_group, _target)


def run_child(group: str, scale: Scale, out: Path) -> None:
    """In the child process: run one group, stamp its peak memory, write its metrics.

    A group that stops with a one-line reason (SystemExit with a message: PostgreSQL or the
    broker unreachable) leaves it beside `out` as `error.txt` for the parent's table."""
    module, function = REGISTRY[group].split(":")
    try:
        produced = getattr(importlib.import_module(module), function)(scale)
    except SystemExit as stop:
        if isinstance(stop.code, str):
            (out.parent / "error.txt").write_text(stop.code)
        raise
    metrics = produced if isinstance(produced, list) else [produced]
    peak = peak_rss_mb()
    for metric in metrics:
        metric.peak_rss_mb = peak
    out.write_text(json.dumps([m.as_json() for m in metrics]))


def run_group(group: str, scale: Scale) -> tuple[list[dict[str, Any]], str | None, float]:
    """Run a group in a fresh process; its metrics, or the error it ended with ("exit
    status N", and the child's one-line reason when it gave one), and the seconds it took
    (process start to exit)."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "metrics.json"
        command = [sys.executable, "-m", "bench.suite", "--child", group]
        command += ["--scale", str(scale.factor), "--repetitions", str(scale.repetitions)]
        command += ["--out", str(out)]
        started = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, check=False)
        seconds = time.perf_counter() - started
        print(f"# {group}: {seconds:.1f} s, exit {done.returncode}", flush=True)
        if done.returncode != 0 or not out.exists():
            reason = Path(folder) / "error.txt"
            said = f": {reason.read_text().strip()}" if reason.exists() else ""
            return [], f"exit status {done.returncode}{said}", seconds
        return list(json.loads(out.read_text())), None, seconds


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    from bench.common import postgres_settings

    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(memory, 1),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "postgres": postgres_settings(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def commit() -> str:
    """The checked-out commit, marked `+local` when the work tree has changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}+local" if dirty else head


def goal_text(metric: dict[str, Any], by_name: dict[str, Metric]) -> str:
    goal = GOALS.get(metric["name"])
    if goal is None:
        return ""
    text, check = goal
    return f"{text}: {'met' if check(by_name[metric['name']], by_name) else '**missed**'}"


def as_metric(body: dict[str, Any]) -> Metric:
    from bench.metrics import Baseline

    fields = {k: v for k, v in body.items() if k != "ratio"}
    baseline = fields.pop("baseline")
    return Metric(**fields, baseline=None if baseline is None else Baseline(**baseline))


def number(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"


def ratio_text(ratio: float | None) -> str:
    return "" if ratio is None else f"{ratio:.2f}x"


def markdown(results: dict[str, Any]) -> str:
    """The results as the Markdown table docs/benchmarks.md shows (a run at another scale
    says that its goals' met/missed only hint at the full run's)."""
    by_name = {m["name"]: as_metric(m) for m in results["metrics"]}
    box = results["machine"]
    lines = [
        f"Measured {results['date']} at commit `{results['commit']}`, scale {results['scale']}, "
        f"on {box['cpus']} x {box['cpu_model']}, {box['memory_gib']} GiB, {box['system']}, "
        f"Python {box['python']}, PostgreSQL {box['postgres'].get('server_version', '?')} "
        f"(fsync {box['postgres'].get('fsync', '?')}, synchronous_commit "
        f"{box['postgres'].get('synchronous_commit', '?')}); load average at start "
        f"{box['load_average_at_start']}. Median of {results['repetitions']} repetitions, "
        "ours and baseline alternating."
        + (
            ""
            if results["scale"] == 1.0
            else " The goals are set for the full size (`make bench`, scale 1.0): at this "
            "scale their met/missed only hints at the full run's."
        ),
        "",
        "| metric | unit | ours (median) | min to max | baseline | baseline value | ratio "
        "| peak RSS MB | goal |",
        "|---|---|---:|---:|---|---:|---:|---:|---|",
    ]
    for m in results["metrics"]:
        base = m["baseline"] or {}
        lines.append(
            f"| `{m['name']}` | {m['unit']} | {number(m['value'])} | "
            f"{number(m['min'])} to {number(m['max'])} | {base.get('name', '')} | "
            f"{number(base.get('value'))} | {ratio_text(m['ratio'])} | "
            f"{m['peak_rss_mb']:,.0f} | {goal_text(m, by_name)} |"
        )
    failed = results.get("failed") or {}
    for group, error in failed.items():
        lines.append(f"| `{group}` | | failed: {error} | | | | | | |")
    return "\n".join(lines)


def write_doc(table: str) -> None:
    """Replace the suite table in docs/benchmarks.md (markers added at the top if absent)."""
    text = DOC.read_text()
    block = f"{BEGIN}\n{table}\n{END}"
    if BEGIN in text and END in text:
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        head, _, rest = text.partition("\n")
        text = f"{head}\n\n## The suite (`make bench`)\n\n{block}\n{rest}"
    DOC.write_text(text)


def group_of(name: str) -> str | None:
    """The registered group a metric name belongs to (the longest prefix), or None."""
    owners = [g for g in REGISTRY if name == g or name.startswith(f"{g}.")]
    return max(owners, key=len, default=None)


def selected(only: Sequence[str]) -> list[str]:
    if not only:
        return list(REGISTRY)
    chosen = [g for g in REGISTRY if any(g.startswith(p) or p.startswith(g) for p in only)]
    if not chosen:
        raise SystemExit(f"no metric group matches {list(only)}; known: {', '.join(REGISTRY)}")
    return chosen


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.suite", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a tenth of the size")
    parser.add_argument("--scale", type=positive_float, help="size factor (1.0 full, 0.1 quick)")
    parser.add_argument("--only", action="append", default=[], help="metric name prefix")
    parser.add_argument(
        "--repetitions", type=positive_int, default=3, help="at least 3 for results"
    )
    parser.add_argument("--no-doc", action="store_true", help="leave docs/benchmarks.md alone")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    factor = args.scale if args.scale is not None else (0.1 if args.quick else 1.0)
    scale = Scale(factor, args.repetitions)
    if args.child:
        run_child(args.child, scale, args.out)
        return
    groups = selected(args.only)
    started = datetime.now(UTC)
    box = machine()
    metrics: list[dict[str, Any]] = []
    failed: dict[str, str] = {}
    group_seconds: dict[str, float] = {}
    for group in groups:
        produced, error, seconds = run_group(group, scale)
        metrics.extend(produced)
        group_seconds[group] = round(seconds, 1)
        if error:
            failed[group] = error
    target = RESULTS_JSON if factor == 1.0 else QUICK_JSON
    kept_failed: dict[str, str] = {}  # earlier runs' failures of groups not run now
    if args.only and target.exists():  # a subset: keep the other groups' figures
        previous = json.loads(target.read_text())
        if previous.get("scale") == factor:
            # every metric of a group run now is replaced, even if it failed this time
            kept = [m for m in previous["metrics"] if group_of(m["name"]) not in groups]
            metrics = kept + metrics
            group_seconds = previous.get("group_seconds", {}) | group_seconds
            earlier = previous.get("failed") or {}
            kept_failed = {g: e for g, e in earlier.items() if g not in groups}
    order = {group: i for i, group in enumerate(REGISTRY)}
    metrics.sort(key=lambda m: order.get(group_of(m["name"]) or "", len(order)))
    results = {
        "metrics": metrics,
        "machine": box | {"load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
        "commit": commit(),
        "date": f"{started:%Y-%m-%d %H:%M} UTC",
        "scale": factor,
        "repetitions": scale.repetitions,
        "failed": kept_failed | failed,
        "group_seconds": group_seconds,
        "run_seconds": round((datetime.now(UTC) - started).total_seconds(), 1),
    }
    target.write_text(json.dumps(results, indent=2) + "\n")
    print(f"# {target.relative_to(ROOT)}: {results['run_seconds']:.0f} s in all", flush=True)
    table = markdown(results)
    print(table)
    if factor == 1.0 and not args.no_doc:
        write_doc(table)
    if failed:  # this run's groups only: the exit status is about what was run
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
